"""Finding a RAR signature anywhere in a file, fed block by block.

RAR readers scan a whole file for their signature (self-extracting archives put it after an executable), so a
video or DICOM file carrying one is a polyglot an archive tool would open. Looking for it means reading every byte,
which on a 1 GB video cost as much as receiving it. The search is glibc's `memmem`, called through ctypes: it is
about twice as fast as a compiled regular expression, and ctypes releases the GIL for the call, so the scan of an
upload runs on the hashing thread beside the request's thread instead of after it (see `spool`).
"""

from __future__ import annotations

import ctypes

SIGNATURES = (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01\x00")  # RAR 4 and RAR 5
_PREFIX = b"Rar!\x1a\x07"  # what both share: memmem looks for it, the next bytes tell a real signature
_LONGEST = max(len(signature) for signature in SIGNATURES)


def _libc_memmem():
    try:
        memmem = ctypes.CDLL(None).memmem
    except (AttributeError, OSError):  # not a glibc-like libc: bytes.find does the same, with the GIL held
        return None
    memmem.restype = ctypes.c_void_p
    memmem.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
    return memmem


_MEMMEM = _libc_memmem()


def _address(data: bytes | bytearray) -> int:
    """Where the bytes of `data` are in memory (no copy); valid while `data` lives and, for a bytearray, keeps its
    size."""
    if isinstance(data, bytearray):
        return ctypes.addressof((ctypes.c_char * len(data)).from_buffer(data))
    return ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value


def _find_prefix(data: bytes | bytearray, start: int) -> int:
    """Offset of the next `_PREFIX` in `data` at or after `start`, or -1."""
    if _MEMMEM is None or len(data) - start < 4096:  # a call costs more than a short search
        return data.find(_PREFIX, start)
    base = _address(data)
    hit = _MEMMEM(base + start, len(data) - start, _PREFIX, len(_PREFIX))
    return -1 if hit is None else hit - base


def find_signature(data: bytes | bytearray) -> int:
    """Offset of the first RAR signature wholly inside `data`, or -1."""
    position = _find_prefix(data, 0)
    while position >= 0:
        if data.startswith(SIGNATURES, position):
            return position
        position = _find_prefix(data, position + 1)
    return -1


class RarScanner:
    """Feed the bytes of a file in order; `found_at` is the offset of the first signature, or None.

    A signature cut in two by a block boundary is found by searching, in addition to each block, the few bytes
    around the boundary (the end of the previous block and the start of this one)."""

    def __init__(self) -> None:
        self.found_at: int | None = None
        self._offset = 0
        self._tail = b""

    def feed(self, data) -> None:
        if self.found_at is not None or not data:
            return
        data = data if isinstance(data, bytes | bytearray) else bytes(data)
        seam = self._tail + data[: _LONGEST - 1]
        hit = find_signature(seam)
        if hit >= 0:
            self.found_at = self._offset - len(self._tail) + hit
            return
        hit = find_signature(data)
        if hit >= 0:
            self.found_at = self._offset + hit
            return
        self._offset += len(data)
        keep = _LONGEST - 1
        self._tail = data[-keep:] if len(data) >= keep else (self._tail + data)[-keep:]
