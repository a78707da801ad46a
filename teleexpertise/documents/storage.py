"""Encrypted, streamed storage of clinical documents, on the local disk or in an S3-compatible bucket.

`put()` encrypts a stream of bytes chunk by chunk (the format is described in `crypto`) and writes it under a random
key; it returns a `StoredBlob` whose fields the caller saves in the database. Reads authenticate every chunk they
decrypt and only fetch the chunks they need, so an HTTP range request on a video costs at most two extra chunks.
Memory stays bounded by the chunk size (plus one S3 part) whatever the file size.

Backends are chosen by settings.DOCUMENT_STORAGE ("local" or "s3") and only move opaque encrypted bytes: they never
see a plaintext byte or a key.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from teleexpertise.documents import crypto
from teleexpertise.documents.crypto import CHUNK_SIZE, HEADER_SIZE, TAG_SIZE, IntegrityError
from teleexpertise.documents.side_thread import SideThread
from teleexpertise.documents.signatures import RarScanner

__all__ = [
    "CHUNK_SIZE",
    "IntegrityError",
    "MissingObjectError",
    "StoredBlob",
    "delete",
    "ensure_bucket",
    "get_backend",
    "open_range",
    "put",
    "read_all_verified",
    "rewrap",
]

logger = logging.getLogger(__name__)

READ_BLOCK_SIZE = 256 * 1024  # bytes asked of the disk or the S3 body at a time
S3_PART_SIZE = 5 * 1024 * 1024  # S3's minimum part size: the smallest buffer that multipart uploads allow
_OBJECT_KEY_RE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{32}$")


class MissingObjectError(IntegrityError):
    """The database points at an object the backend does not have (lost, or deleted behind our back)."""


@dataclass(frozen=True)
class StoredBlob:
    key: str  # backend object key, random ("ab/cd/<uuid4 hex>"), never derived from user input
    size: int  # plaintext size in bytes
    sha256: str  # hex digest of the plaintext
    key_id: str  # master key id that wrapped the data key
    wrapped_key: bytes  # the per-file AES-256 data key, wrapped by the master key (see crypto)


class BlobLike(Protocol):
    key: str
    size: int
    sha256: str
    key_id: str
    wrapped_key: bytes


def blob_of(row) -> StoredBlob:
    """The stored object of a database row that keeps storage_key, size, sha256, key_id and wrapped_key."""
    return StoredBlob(key=row.storage_key, size=row.size, sha256=row.sha256, key_id=row.key_id,
                      wrapped_key=bytes(row.wrapped_key))


# --- Public API ------------------------------------------------------------------------------------------------


def put(chunks: Iterable[bytes]) -> StoredBlob:
    """Encrypt and store a stream. On any error nothing is left behind and the exception propagates."""
    backend = get_backend()
    key_id = crypto.active_key_id()
    data_key = crypto.new_data_key()
    wrapped = crypto.wrap_key(data_key, key_id)
    object_key = new_object_key()
    tally = Tally()
    try:
        backend.write(object_key, _encrypt(chunks, AESGCM(data_key), tally))
    finally:
        tally.digest.close()
    return StoredBlob(object_key, tally.size, tally.digest.hexdigest(), key_id, wrapped)


def open_range(blob: BlobLike, start: int = 0, end: int | None = None) -> Iterator[bytes]:
    """Plaintext bytes [start, end), decrypting only the chunks that hold them.

    The key and the header are checked before returning, so a view can still answer with an error status; a
    tampered chunk raises IntegrityError while iterating.
    """
    size = blob.size
    end = size if end is None else end
    if not 0 <= start <= end <= size:
        raise ValueError(f"Invalid range [{start}, {end}) for a document of {size} bytes.")
    aead = AESGCM(crypto.unwrap_key(blob.wrapped_key, blob.key_id))
    backend = get_backend()
    header = crypto.parse_header(_read_exact_once(backend.read(_checked(blob.key), 0, HEADER_SIZE), HEADER_SIZE))
    chunk_size = header.chunk_size
    count = crypto.chunk_count(size, chunk_size)
    # At least one chunk is always decrypted, so even an empty range proves the key and header are right.
    first = min(start // chunk_size, count - 1)
    last = max(first, (end - 1) // chunk_size)
    stop = crypto.chunk_offset(last, chunk_size) + crypto.chunk_plain_length(last, size, chunk_size) + TAG_SIZE
    reader = _exact_reader(backend, blob.key, crypto.chunk_offset(first, chunk_size), stop)
    chunks = _decrypt_chunks(reader, aead, header, size, range(first, last + 1))
    return _slice(chunks, start - first * chunk_size, end - start)


def read_all_verified(blob: BlobLike) -> Iterator[bytes]:
    """The whole plaintext; the last chunk is only yielded once the object length and SHA-256 have been checked."""
    aead = AESGCM(crypto.unwrap_key(blob.wrapped_key, blob.key_id))
    reader = _exact_reader(get_backend(), blob.key, 0, None)
    try:
        header = crypto.parse_header(reader.read_exact(HEADER_SIZE))
    except BaseException:
        reader.close()
        raise
    return _verified(reader, aead, header, blob)


def delete(blob: BlobLike) -> None:
    """Remove the stored object; deleting an object that is already gone is not an error."""
    get_backend().delete(_checked(blob.key))


def rewrap(blob: BlobLike, *, to_key_id: str | None = None) -> tuple[str, bytes]:
    """The data key wrapped under the active (or given) master key; the stored object is left untouched.

    A blob already under that key comes back unchanged (once checked), so a rotation command can skip it.
    """
    target = to_key_id or crypto.active_key_id()
    data_key = crypto.unwrap_key(blob.wrapped_key, blob.key_id)
    if blob.key_id == target:
        return target, bytes(blob.wrapped_key)
    return target, crypto.wrap_key(data_key, target)


def ensure_bucket() -> None:
    """Create the storage location if missing (S3 bucket, or the local root); for tests and first deployment."""
    get_backend().ensure_ready()


def new_object_key() -> str:
    digest = uuid.uuid4().hex
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def get_backend() -> LocalBackend | S3Backend:
    kind = settings.DOCUMENT_STORAGE
    if kind == "local":
        return LocalBackend(Path(settings.DOCUMENT_ROOT))
    if kind == "s3":
        if not settings.DOCUMENT_S3_BUCKET:
            raise ImproperlyConfigured("DOCUMENT_S3_BUCKET must be set when DOCUMENT_STORAGE is 's3'.")
        client = _s3_client(
            settings.DOCUMENT_S3_ENDPOINT_URL,
            settings.DOCUMENT_S3_REGION,
            settings.DOCUMENT_S3_ACCESS_KEY,
            settings.DOCUMENT_S3_SECRET_KEY,
        )
        return S3Backend(client, settings.DOCUMENT_S3_BUCKET)
    raise ImproperlyConfigured(f"DOCUMENT_STORAGE must be 'local' or 's3', not {kind!r}.")


# --- Encryption and decryption streams -------------------------------------------------------------------------


class _BackgroundDigest:
    """SHA-256 on its own thread: hashlib releases the GIL on large buffers, so hashing overlaps with encryption,
    decryption and I/O instead of adding to them (bench/documents: ~0.6 CPU-s per GB off the request's thread).
    An upload's RAR scan (`signatures.RarScanner`, GIL released too) gets a third thread on the same bytes: on the
    hashing thread it made that thread the slowest of the upload, and the request's thread waited for it."""

    def __init__(self, scanner: RarScanner | None = None) -> None:
        self._digest = hashlib.sha256()
        self._threads = [SideThread(self._digest.update, "document-sha256")]
        if scanner is not None:
            self._threads.append(SideThread(scanner.feed, "document-scan"))

    def update(self, data) -> None:
        for thread in self._threads:
            thread.put(data)

    def close(self) -> None:
        """Stop the threads (also when a download is abandoned half-way)."""
        errors = []
        for thread in self._threads:
            try:
                thread.close()
            except Exception as exc:  # every thread is stopped before one's error goes up
                errors.append(exc)
        if errors:
            raise errors[0]

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()


class Tally:
    def __init__(self, scanner: RarScanner | None = None) -> None:
        self.size = 0
        self.digest = _BackgroundDigest(scanner)

    def add(self, plaintext: bytes | bytearray) -> None:
        self.size += len(plaintext)
        self.digest.update(plaintext)


def _encrypt(chunks: Iterable[bytes], aead: AESGCM, tally: Tally) -> Iterator[bytes]:
    header = crypto.new_header()
    yield header.raw
    for index, (plaintext, last) in enumerate(_rechunk(chunks, header.chunk_size)):
        tally.add(plaintext)
        yield crypto.encrypt_chunk(aead, header, index, last, plaintext)


def _rechunk(pieces: Iterable[bytes], size: int) -> Iterator[tuple[bytearray, bool]]:
    """Cut arbitrary pieces into `size`-byte chunks, flagging the last one (hence the one-chunk look-ahead)."""
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        # Strictly greater: a full chunk is only known not to be the last once a further byte has arrived.
        while len(buffer) > size:
            yield buffer[:size], False
            del buffer[:size]
    yield buffer, True


class _ByteReader:
    """Exact-length reads over an iterator of byte pieces of any size."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        self._pieces = pieces
        self._buffer = bytearray()

    def read_exact(self, length: int) -> bytearray:
        while len(self._buffer) < length:
            piece = next(self._pieces, None)
            if piece is None:
                raise IntegrityError("The stored object is truncated.")
            self._buffer += piece
        data = self._buffer[:length]
        del self._buffer[:length]
        return data

    def at_end(self) -> bool:
        return not self._buffer and not any(self._pieces)

    def close(self) -> None:
        close = getattr(self._pieces, "close", None)
        if close is not None:
            close()  # releases the file handle or the HTTP connection at once


class _FileReader:
    """Exact-length reads straight from a local file into the bytearray returned: one copy, where gathering the
    file's blocks in a buffer first (`_ByteReader`) made three (bench/documents, download).

    A long read (a video downloaded whole) tells the kernel it reads sequentially, and drops the pages it has read
    from the page cache as it goes: the next pages read ahead then reuse memory just freed instead of taking new
    memory, which on this virtual machine cost a fault on the host per page (bench/documents, "reclaimed"), and
    a file read once does not push the rest out of the cache."""

    DROP_BEHIND_FROM = 32 * 1024 * 1024  # shorter reads (previews, range requests) keep the cache's help
    DROP_EVERY = 8 * 1024 * 1024

    def __init__(self, handle, start: int, end: int | None) -> None:
        self._handle = handle  # unbuffered: readinto goes to the system call
        self._handle.seek(start)
        self._left = None if end is None else end - start
        span = (os.fstat(handle.fileno()).st_size - start) if end is None else end - start
        self._drop_from = start if span >= self.DROP_BEHIND_FROM and hasattr(os, "posix_fadvise") else None
        self._position = start
        if self._drop_from is not None:
            os.posix_fadvise(handle.fileno(), start, span, os.POSIX_FADV_SEQUENTIAL)

    def read_exact(self, length: int) -> bytearray:
        if self._left is not None and length > self._left:
            raise IntegrityError("The stored object is truncated.")
        data = bytearray(length)
        with memoryview(data) as view:
            filled = 0
            while filled < length:
                count = self._handle.readinto(view[filled:])
                if not count:
                    raise IntegrityError("The stored object is truncated.")
                filled += count
        if self._left is not None:
            self._left -= length
        self._position += length
        if self._drop_from is not None and self._position - self._drop_from >= self.DROP_EVERY:
            os.posix_fadvise(self._handle.fileno(), self._drop_from, self._position - self._drop_from,
                             os.POSIX_FADV_DONTNEED)
            self._drop_from = self._position
        return data

    def at_end(self) -> bool:
        return self._left == 0 or not self._handle.read(1)

    def close(self) -> None:
        self._handle.close()


ExactReader = _ByteReader | _FileReader


def _exact_reader(backend, key: str, start: int, end: int | None) -> ExactReader:
    """Exact-length reads of the stored object's bytes [start, end): from the file itself where there is one."""
    open_file = getattr(backend, "open_file", None)
    if open_file is not None:
        return _FileReader(open_file(_checked(key)), start, end)
    return _ByteReader(backend.read(_checked(key), start, end))


def _read_exact_once(pieces: Iterator[bytes], length: int) -> bytearray:
    reader = _ByteReader(pieces)
    try:
        return reader.read_exact(length)
    finally:
        reader.close()


def _decrypt_chunks(
    reader: ExactReader, aead: AESGCM, header: crypto.Header, size: int, indexes: range
) -> Iterator[bytes]:
    count = crypto.chunk_count(size, header.chunk_size)
    try:
        for index in indexes:
            sealed = reader.read_exact(crypto.chunk_plain_length(index, size, header.chunk_size) + TAG_SIZE)
            yield crypto.decrypt_chunk(aead, header, index, index == count - 1, sealed)
    finally:
        reader.close()


def _slice(chunks: Iterator[bytes], skip: int, length: int) -> Iterator[bytes]:
    for chunk in chunks:
        piece = chunk[skip : skip + length]
        skip = max(0, skip - len(chunk))
        length -= len(piece)
        if piece:
            yield piece


def _verified(reader: ExactReader, aead: AESGCM, header: crypto.Header, blob: BlobLike) -> Iterator[bytes]:
    count = crypto.chunk_count(blob.size, header.chunk_size)
    digest = _BackgroundDigest()
    try:
        for plaintext in _decrypt_chunks(reader, aead, header, blob.size, range(count)):
            digest.update(plaintext)
            count -= 1
            if count == 0:
                _check_complete(reader, digest.hexdigest(), blob.sha256)
            if plaintext:
                yield plaintext
    finally:
        digest.close()


def _check_complete(reader: ExactReader, actual: str, expected: str) -> None:
    if not reader.at_end():
        raise IntegrityError("The stored object has unexpected data after its last chunk.")
    if actual != expected:
        raise IntegrityError("The document's SHA-256 does not match the recorded one.")


def _checked(key: str) -> str:
    # Keys come from the database; refusing anything else keeps a corrupted row from reaching outside the root.
    if not _OBJECT_KEY_RE.match(key):
        raise ValueError("Not a document storage key.")
    return key


# --- Backends ---------------------------------------------------------------------------------------------------


class LocalBackend:
    """Objects as files under DOCUMENT_ROOT, written atomically (temp file in the same directory, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / _checked(key)

    def ensure_ready(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".upload-", suffix=".tmp")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())  # the rename must not become visible before the data is on disk
            os.replace(temp_name, path)
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
        _fsync_directory(path.parent)

    def adopt(self, key: str, encrypted: Path) -> None:
        """Take an already encrypted, already synced file (see `spool`) as the object: a rename, no copy."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.replace(encrypted, path)
        _fsync_directory(path.parent)

    def read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        return _file_blocks(self.open_file(key, buffering=-1), start, end)

    def open_file(self, key: str, buffering: int = 0):
        """The object's file, open for reading (unbuffered unless asked); MissingObjectError if it is gone."""
        try:
            return self._path(key).open("rb", buffering=buffering)
        except FileNotFoundError:
            raise MissingObjectError(f"The stored object {key} is missing.") from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


def _file_blocks(handle: Any, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start
        while remaining is None or remaining > 0:
            block = handle.read(READ_BLOCK_SIZE if remaining is None else min(READ_BLOCK_SIZE, remaining))
            if not block:
                return
            if remaining is not None:
                remaining -= len(block)
            yield block


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself durable
    finally:
        os.close(fd)


class S3Backend:
    """Objects in an existing S3 bucket: one PUT for small files, a multipart upload (aborted on failure) above."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def ensure_ready(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as error:
            if _error_code(error) not in {"404", "NoSuchBucket", "NotFound"}:
                raise
            region = self.client.meta.region_name
            extra = {}
            if region not in (None, "us-east-1"):  # us-east-1 is the one region that refuses a LocationConstraint
                extra["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self.client.create_bucket(Bucket=self.bucket, **extra)

    def write(self, key: str, chunks: Iterable[bytes]) -> None:
        upload = _MultipartUpload(self.client, self.bucket, _checked(key))
        buffer = bytearray()
        try:
            for chunk in chunks:
                buffer += chunk
                if len(buffer) >= S3_PART_SIZE:
                    upload.add_part(buffer)
                    buffer = bytearray()
            if upload.upload_id is None:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer))  # small file: one request
            else:
                if buffer:
                    upload.add_part(buffer)
                upload.complete()
        except BaseException:
            upload.discard()
            raise

    def adopt(self, key: str, encrypted: Path) -> None:
        """Upload an already encrypted file (see `spool`) as the object, then delete the local file."""
        self.write(key, _file_blocks(encrypted.open("rb"), 0, None))
        encrypted.unlink(missing_ok=True)

    def read(self, key: str, start: int, end: int | None) -> Iterator[bytes]:
        from botocore.exceptions import ClientError

        byte_range = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=_checked(key), Range=byte_range)
        except ClientError as error:
            code = _error_code(error)
            if code in {"NoSuchKey", "404", "NotFound"}:
                raise MissingObjectError(f"The stored object {key} is missing.") from None
            if code in {"InvalidRange", "416"}:  # the range starts past the end: the object was cut short
                raise IntegrityError("The stored object is truncated.") from None
            raise
        return _body_blocks(response["Body"])

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=_checked(key))


class _MultipartUpload:
    """Started lazily at the first full part, so small files never leave an upload to clean up."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.completing = False

    def add_part(self, body: bytearray) -> None:
        if self.upload_id is None:
            self.upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        response = self.client.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
        )
        self.parts.append({"PartNumber": number, "ETag": response["ETag"]})

    def complete(self) -> None:
        self.completing = True
        self.client.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": self.parts}
        )

    def discard(self) -> None:
        """Best-effort cleanup after a failure; the original exception is the one that matters."""
        try:
            if self.upload_id is not None:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            if self.completing:  # the completion may have succeeded server-side before the error reached us
                self.client.delete_object(Bucket=self.bucket, Key=self.key)
        except Exception:
            logger.warning("Could not clean up the failed upload of %s", self.key, exc_info=True)


def _body_blocks(body: Any) -> Iterator[bytes]:
    try:
        yield from body.iter_chunks(READ_BLOCK_SIZE)
    finally:
        body.close()


def _error_code(error: Any) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


@lru_cache(maxsize=4)
def _s3_client(endpoint_url: str, region: str, access_key: str, secret_key: str) -> Any:
    # Imported here so that local storage works without loading boto3 (slow to import, large).
    import boto3
    from botocore.config import Config

    config = Config(
        region_name=region or None,
        retries={"mode": "standard", "max_attempts": 5},
        connect_timeout=10,
        read_timeout=60,
        # Self-hosted S3 servers (SeaweedFS, MinIO, Garage) rarely have wildcard DNS for virtual-host buckets.
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # boto3 >= 1.36 adds CRC checksums that several S3-compatible servers reject; GCM already authenticates.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    # A session of its own: boto3's default session is not safe to create clients from in several threads.
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url or None,
        aws_access_key_id=access_key or None,  # None: boto3's usual chain (environment, instance role...)
        aws_secret_access_key=secret_key or None,
        config=config,
    )
