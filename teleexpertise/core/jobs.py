"""The one way to run work in the background: enqueue() after the surrounding transaction commits.

Tasks are huey tasks; the queue is SQLite by default and Redis when REDIS_URL is set. Because enqueue()
waits for the commit, a rolled-back action never sends anything.
"""

from django.db import transaction


def enqueue(task, *args, **kwargs) -> None:
    transaction.on_commit(lambda: task(*args, **kwargs))


def queue_status() -> dict:
    from huey.contrib.djhuey import HUEY

    return {"status": "ok", "backend": type(HUEY).__name__, "pending": HUEY.pending_count()}
