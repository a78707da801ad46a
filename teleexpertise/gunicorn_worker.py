"""The gunicorn worker `manage.py serve` runs: gthread, taking a new connection only while one of its threads is free.

gunicorn's gthread worker accepts every connection it can (up to `worker_connections`, 1000) and keeps each
kept-alive connection for itself: the first worker to wake up took all eight connections of the API benchmark
while the other worker idled, so a two-worker server used one core (bench/README.md, `api`). Here a worker whose
threads are all busy stops accepting; the next connection waits in the listen backlog for a worker that can
answer it now. A worker that already holds a connection per thread takes another only while none of its
threads is busy: taking one as soon as a thread freed up let a quick worker gather the benchmark's eight
connections on three of four workers while the fourth idled. Nothing else changes: keep-alive, timeouts and the
connection limit are gthread's.
"""

import threading

from gunicorn.workers.gthread import ThreadWorker


class BalancedThreadWorker(ThreadWorker):
    def __init__(self, *args, **kwargs):
        self._busy = 0  # requests handed to the thread pool and not finished yet
        self._busy_lock = threading.Lock()  # gunicorn < 25 finishes requests in the pool's threads
        super().__init__(*args, **kwargs)

    @property
    def worker_connections(self) -> int:
        """Read by gthread's loop before each wait: it accepts while `nr_conns` is below it."""
        # Every busy request is on a held connection, so fewer connections than threads means a free thread.
        if self._busy == 0 or self.nr_conns < self.cfg.threads:
            return self._limit
        return min(self._limit, self.nr_conns)

    @worker_connections.setter
    def worker_connections(self, value: int) -> None:
        self._limit = value

    def enqueue_req(self, conn):
        with self._busy_lock:
            self._busy += 1
        super().enqueue_req(conn)

    def finish_request(self, *args):  # (conn, future) since gunicorn 25, (future) before
        with self._busy_lock:
            self._busy -= 1
        super().finish_request(*args)
