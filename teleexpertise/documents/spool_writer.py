"""Writing an upload's encrypted spool file without the page cache, on a thread of its own.

A buffered write copies every byte into the page cache, and the fsync that makes the file durable then writes it
all out at once: for a 1 GB upload that was the largest cost on the request's thread plus a pause of a third of a
second at the end (bench/documents), and it filled the cache with a file nobody reads soon. Where the file system
allows it, the spool is opened with O_DIRECT: the ciphertext is encrypted straight into page-aligned staging
buffers (`reserve`, then `commit`), each full buffer is written from there to the disk by a side thread while the
next one fills, and nothing is left to flush at the end. O_DIRECT wants aligned offsets and lengths, so the last,
partial block is written padded with zeros, then the file is cut back to its real length.

File systems without O_DIRECT (tmpfs, some network file systems) get the same staging and thread with ordinary
writes. Either way the file is fsynced before `close` returns.
"""

from __future__ import annotations

import errno
import fcntl
import mmap
import os
import queue

from teleexpertise.documents.side_thread import SideThread

ALIGN = 4096  # O_DIRECT alignment for offsets, lengths and memory: a page, a multiple of any disk's sector
STAGE_SIZE = 8 * 1024 * 1024  # bytes staged before they go to the disk


def _round_up(value: int, unit: int) -> int:
    return -(-value // unit) * unit


class SpoolWriter:
    """Appends to the open file `fd` (taken over: `close` and `abort` close it). `largest` is the longest single
    `reserve` or `write` the caller will make; `direct=False` asks for ordinary writes."""

    def __init__(self, fd: int, largest: int, *, direct: bool = True) -> None:
        self._fd = fd
        self.direct = direct and _enable_direct_io(fd)
        capacity = _round_up(max(STAGE_SIZE, 2 * largest + ALIGN), ALIGN)
        self._threshold = capacity - largest - ALIGN  # past it, the next reserve may not fit: send the buffer
        # Two buffers: one fills while the thread writes the other; taking the free one waits for the disk.
        self._free: queue.Queue = queue.Queue()
        self._free.put(mmap.mmap(-1, capacity))
        self._buffer = mmap.mmap(-1, capacity)
        self._staged = 0
        self._written = 0
        self._error: OSError | None = None  # the thread's; raised to the caller by its next call
        self._thread = SideThread(self._write_out, "document-spool-write", depth=1)
        self._closed = False

    # --- Filling --------------------------------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        view = self.reserve(len(data))
        view[:] = data
        view.release()
        self.commit(len(data))

    def reserve(self, size: int) -> memoryview:
        """A writable view of the next `size` bytes of the file; `commit(size)` once they are filled."""
        self._raise_error()
        if self._staged + size > len(self._buffer):
            raise ValueError(f"{size} bytes do not fit in a staging buffer of {len(self._buffer)}")
        return memoryview(self._buffer)[self._staged : self._staged + size]

    def commit(self, size: int) -> None:
        self._staged += size
        if self._staged >= self._threshold:
            self._send(final=False)

    # --- Writing --------------------------------------------------------------------------------------------------

    def _send(self, *, final: bool) -> None:
        """Hand the staged bytes to the thread: all of them at the end, else the aligned part (the rest starts the
        next buffer)."""
        full = self._buffer
        length = self._staged if final else self._staged - self._staged % ALIGN
        following = None
        if not final:
            following = self._free.get()  # waits while the thread still writes the other buffer
            rest = self._staged - length
            following[:rest] = full[length : self._staged]
            self._staged = rest
        self._thread.put((full, length, final))
        self._buffer = following

    def _write_out(self, item) -> None:
        """On the thread. Never raises: an error is kept for the caller, and the buffer always comes back (the
        caller may be waiting for it)."""
        full, length, final = item
        try:
            if self._error is None:
                self._write_buffer(full, length, final)
        except OSError as exc:
            self._error = exc
        finally:
            self._free.put(full)

    def _write_buffer(self, full: mmap.mmap, length: int, final: bool) -> None:
        padded = _round_up(length, ALIGN) if self.direct and final else length
        if padded > length:
            full[length:padded] = bytes(padded - length)
        view = memoryview(full)
        try:
            done = 0
            while done < padded:
                try:
                    done += os.write(self._fd, view[done:padded])
                except OSError as exc:
                    if not (self.direct and exc.errno == errno.EINVAL and done == 0 and self._written == 0):
                        raise
                    # Accepted when the file was opened, refused on the first write: some file systems do that.
                    self.direct = _disable_direct_io(self._fd)
                    padded = length
        finally:
            view.release()
        self._written += length
        if padded != length:
            os.ftruncate(self._fd, self._written)

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    # --- Ending ---------------------------------------------------------------------------------------------------

    def close(self) -> int:
        """Write what is staged, wait for the disk (fsync) and close the file; returns the file's size."""
        if self._closed:
            return self._written
        try:
            self._raise_error()
            self._send(final=True)
            self._thread.close()
            self._raise_error()
            os.fsync(self._fd)
        finally:
            self.abort()
        return self._written

    def abort(self) -> None:
        """Stop and close without writing what is staged (the caller deletes the file)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._thread.close()
        finally:
            os.close(self._fd)


def _enable_direct_io(fd: int) -> bool:
    """Turn O_DIRECT on for `fd` if this system and file system have it."""
    direct = getattr(os, "O_DIRECT", 0)
    if not direct:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | direct)
    except OSError:
        return False
    return True


def _disable_direct_io(fd: int) -> bool:
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_DIRECT)
    return False
