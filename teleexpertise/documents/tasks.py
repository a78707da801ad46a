"""Background work of documents: clear upload spool files left by a worker that died mid-upload."""

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from teleexpertise.documents import spool


@db_periodic_task(crontab(minute="23"))
def purge_stale_spool() -> int:
    # A day is far longer than any upload; the files are unreadable ciphertext whose key died with the worker.
    return spool.purge_stale(max_age_seconds=24 * 3600)
