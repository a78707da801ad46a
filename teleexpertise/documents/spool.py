"""Encrypt an upload while it is being received: no plaintext copy of a patient's file ever reaches the disk.

A `Spool` takes the bytes of one upload as the request body delivers them, cuts them into chunks and encrypts each
one (the format of `crypto`) into a file of its own under the spool directory, hashing the plaintext on the side.
The content checks then read the plaintext back through `Spool.open()`, a seekable reader that decrypts only the
chunks it is asked for. If the file is accepted as it is, `commit()` hands the encrypted file to the storage backend
(a rename on the local disk, an upload to S3): the bytes are encrypted once and written once, which is what makes a
large upload cost about a plain copy. `discard()` deletes it; a spool file left behind by a crash is unreadable
ciphertext whose key only lived in memory, and `purge_stale()` removes it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
import weakref
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings

from teleexpertise.documents import crypto, storage
from teleexpertise.documents.crypto import TAG_SIZE
from teleexpertise.documents.signatures import RarScanner
from teleexpertise.documents.spool_writer import SpoolWriter

logger = logging.getLogger(__name__)
SPOOL_PREFIX = "spool-"


def spool_directory() -> Path:
    """Under the document root for local storage, so that committing is a rename on the same file system."""
    if settings.DOCUMENT_STORAGE == "local":
        return Path(settings.DOCUMENT_ROOT) / ".spool"
    return Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir()) / "teleexpertise-spool"


class Spool:
    def __init__(self) -> None:
        self.key_id = crypto.active_key_id()
        data_key = crypto.new_data_key()
        self.wrapped_key = crypto.wrap_key(data_key, self.key_id)
        self._aead = AESGCM(data_key)
        self._header = crypto.new_header()
        self._chunk_size = self._header.chunk_size
        self._pending = bytearray()
        self._held: bytes | bytearray | None = None  # a whole chunk not yet known not to be the last
        self._index = 0
        self._scanner = RarScanner()  # fed on a side thread as the bytes arrive: the plaintext is not read again for it
        self._tally = storage.Tally(self._scanner)
        directory = spool_directory()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=directory, prefix=SPOOL_PREFIX)  # mode 0600
        self.path = Path(name)
        self._out = SpoolWriter(fd, largest=self._chunk_size + TAG_SIZE, direct=settings.DOCUMENT_SPOOL_DIRECT_IO)
        # An upload cut off by the client raises out of Django's parser without telling the handler: the spool
        # file then goes when this object does.
        self._cleanup = weakref.finalize(self, _remove, self._out, self.path, self._tally.digest)
        self._out.write(self._header.raw)
        self.size: int | None = None  # known once finished
        self.sha256 = ""
        self.rar_scan: RarScanner | None = None  # known once finished
        self._blob: storage.StoredBlob | None = None

    # --- Receiving ----------------------------------------------------------------------------------------------

    def write(self, data: bytes | bytearray, *, handed_over: bool = False) -> None:
        """Take the next bytes of the upload. `handed_over`: the caller gives `data` up (it will not change it),
        so a whole chunk may be kept as it is, like bytes, for the side threads that read it later."""
        if not self._pending and len(data) == self._chunk_size and (handed_over or isinstance(data, bytes)):
            # The common case (an upload read a chunk at a time): the chunk is kept as it came, not copied.
            if self._held is not None:
                self._seal(self._held, last=False)
            self._held = data
            return
        self._release_held()
        self._pending += data
        # Strictly greater: a full chunk is only known not to be the last once a further byte has arrived.
        while len(self._pending) > self._chunk_size:
            self._seal(bytes(memoryview(self._pending)[: self._chunk_size]), last=False)
            del self._pending[: self._chunk_size]

    def finish(self) -> None:
        self._release_held()
        self._seal(bytes(self._pending), last=True)
        self._pending = bytearray()
        self._out.close()  # fsynced: committing makes it the stored object, it must be on disk first
        self.size = self._tally.size
        self.sha256 = self._tally.digest.hexdigest()  # waits for the hashing and scanning threads
        self.rar_scan = self._scanner  # the whole plaintext went through it

    def _release_held(self) -> None:
        if self._held is not None:
            self._pending[0:0] = self._held
            self._held = None

    def _seal(self, plaintext: bytes | bytearray, *, last: bool) -> None:
        self._tally.add(plaintext)  # hashed on side threads: nobody may change it any more
        size = len(plaintext) + TAG_SIZE
        out = self._out.reserve(size)
        try:
            crypto.encrypt_chunk_into(self._aead, self._header, self._index, last, plaintext, out)
        finally:
            out.release()
        self._out.commit(size)
        self._index += 1

    # --- Reading back and deciding ------------------------------------------------------------------------------

    def open(self) -> io.BufferedReader:
        """The plaintext, seekable; each chunk is authenticated as it is decrypted."""
        if self.size is None:
            raise RuntimeError("The spool is still being written.")
        return io.BufferedReader(_PlainReader(self.path, self._aead, self._header, self.size), buffer_size=64 * 1024)

    def commit(self) -> storage.StoredBlob:
        """Hand the encrypted file to the storage backend; it is then a stored object like any other."""
        if self._blob is None:
            key = storage.new_object_key()
            storage.get_backend().adopt(key, self.path)
            self._cleanup.detach()
            self._blob = storage.StoredBlob(key, self.size, self.sha256, self.key_id, self.wrapped_key)
        return self._blob

    def discard(self) -> None:
        """Forget the upload (refused, failed, or already committed: then there is nothing left to delete)."""
        if self._blob is None:
            self._cleanup()


def _remove(out: SpoolWriter, path: Path, digest) -> None:
    with contextlib.suppress(Exception):  # the upload is dropped: what went wrong in a side thread no longer matters
        digest.close()  # stops its threads
    try:
        out.abort()
    finally:
        path.unlink(missing_ok=True)


class _PlainReader(io.RawIOBase):
    """Random access to the plaintext of a spool file, one decrypted chunk kept at a time."""

    def __init__(self, path: Path, aead: AESGCM, header: crypto.Header, size: int) -> None:
        self._file = path.open("rb")
        self._aead = aead
        self._header = header
        self._size = size
        self._count = crypto.chunk_count(size, header.chunk_size)
        self._position = 0
        self._cached_index = -1
        self._cached = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        if self._position >= self._size:
            return 0
        chunk_size = self._header.chunk_size
        index, skip = divmod(self._position, chunk_size)
        plaintext = self._chunk(index)
        count = min(len(buffer), len(plaintext) - skip)
        memoryview(buffer)[:count] = plaintext[skip : skip + count]
        self._position += count
        return count

    def _chunk(self, index: int) -> bytes:
        if index != self._cached_index:
            chunk_size = self._header.chunk_size
            self._file.seek(crypto.chunk_offset(index, chunk_size))
            sealed = self._file.read(crypto.chunk_plain_length(index, self._size, chunk_size) + TAG_SIZE)
            last = index == self._count - 1
            self._cached = crypto.decrypt_chunk(self._aead, self._header, index, last, sealed)
            self._cached_index = index
        return self._cached

    def close(self) -> None:
        self._file.close()
        super().close()


def purge_stale(max_age_seconds: int = 24 * 3600) -> int:
    """Delete spool files older than `max_age_seconds` (left by a crashed worker); returns how many went."""
    directory = spool_directory()
    if not directory.is_dir():
        return 0
    limit = time.time() - max_age_seconds
    removed = 0
    for path in directory.glob(f"{SPOOL_PREFIX}*"):
        try:
            if path.stat().st_mtime < limit:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.info("removed stale upload spool files", extra={"count": removed})
    return removed

