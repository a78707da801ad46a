"""Work handed to a thread of its own, chunk by chunk, in order: hashing, scanning and writing an upload overlap
with receiving it (hashlib, glibc's memmem through ctypes and os.write all release the GIL)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

DEFAULT_DEPTH = 16  # items a SideThread's queue holds by default (see SideThread)


class SideThread:
    """Calls `consume(item)` on its own thread for each item `put`, in order.

    The queue is bounded, so memory stays at `depth` chunks whatever the file size, and a slow consumer slows the
    producer down instead of piling up. The default, 16 (16 MiB of 1 MiB chunks), lets the threads of an upload
    absorb each other's hiccups on a busy machine: with 4, the request's thread often stood waiting for the hashing
    thread, which then waited for it (bench/documents: ~10-20 % more throughput with 16).

    The first `inline` items are consumed on the producer's thread, in `put`; the thread starts with the next one.
    Most uploads are a photo or a PDF of one chunk: starting threads for them cost more than the work they would
    overlap (at 100 KB, starting an upload's threads took a tenth of the request's CPU under load, bench/api).

    If `consume` raises, the items after are dropped and the error is raised again to the producer by every later
    `put` and by `close`: a dead thread must not leave the producer waiting on a full queue."""

    def __init__(self, consume: Callable, name: str, depth: int = DEFAULT_DEPTH, inline: int = 1) -> None:
        self._consume = consume
        self._name, self._depth, self._inline = name, depth, inline
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._open = True

    def _start(self) -> None:
        self._queue = queue.Queue(maxsize=self._depth)
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as exc:  # handed to the producer, which decides
                    self._error = exc

    def put(self, item) -> None:
        self._raise_error()
        if self._inline > 0:
            self._inline -= 1
            try:
                self._consume(item)
            except BaseException as exc:  # as on the thread: kept, and raised to the producer from now on
                self._error = exc
                raise
            return
        if self._thread is None:
            self._start()
        self._queue.put(item)

    def close(self) -> None:
        """Wait for the items handed so far, stop the thread, then raise the consumer's error if it had one."""
        if self._open:
            self._open = False
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error
