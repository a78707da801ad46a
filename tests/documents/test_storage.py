"""Encrypted document storage, against the local disk and a real S3 server (SeaweedFS)."""

import base64
import dataclasses
import errno
import hashlib
import os
import stat
import time
import tracemalloc
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured

from teleexpertise.documents import crypto, storage
from teleexpertise.documents.side_thread import DEFAULT_DEPTH
from teleexpertise.documents.storage import CHUNK_SIZE, IntegrityError

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(100, 132))).decode()
PATTERN = b"PATIENT DUPONT Jean NIR 1 84 12 75 123 456 78 - "
SEALED_CHUNK = CHUNK_SIZE + crypto.TAG_SIZE


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, tmp_path):
    """Configure one backend; S3 tests get a bucket of their own so listings only show their objects."""
    settings.DOCUMENT_MASTER_KEYS = f"key-a:{KEY_A}"
    settings.DOCUMENT_ACTIVE_KEY_ID = "key-a"
    if request.param == "local":
        settings.DOCUMENT_STORAGE = "local"
        settings.DOCUMENT_ROOT = tmp_path / "documents"
    else:
        server = request.getfixturevalue("s3_server")
        settings.DOCUMENT_STORAGE = "s3"
        settings.DOCUMENT_S3_ENDPOINT_URL = server.endpoint_url
        settings.DOCUMENT_S3_REGION = "us-east-1"
        settings.DOCUMENT_S3_ACCESS_KEY = server.access_key
        settings.DOCUMENT_S3_SECRET_KEY = server.secret_key
        settings.DOCUMENT_S3_BUCKET = f"docs-{uuid.uuid4().hex[:16]}"
    storage.ensure_bucket()
    return request.param


def pieces(data: bytes, size: int = 100_000):
    """Feed data in pieces that do not line up with chunks, like an upload would."""
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


def pattern(size: int) -> bytes:
    return (PATTERN * (size // len(PATTERN) + 1))[:size]


def read_all(blob) -> bytes:
    return b"".join(storage.read_all_verified(blob))


def raw(blob) -> bytes:
    return b"".join(storage.get_backend().read(blob.key, 0, None))


def overwrite(blob, data: bytes) -> None:
    storage.get_backend().write(blob.key, [data])


def leftovers() -> list[str]:
    """Everything the backend holds: files (temporary ones included), objects, unfinished multipart uploads."""
    backend = storage.get_backend()
    if isinstance(backend, storage.LocalBackend):
        return [str(path) for path in backend.root.rglob("*") if not path.is_dir()]
    objects = backend.client.list_objects_v2(Bucket=backend.bucket).get("Contents", [])
    uploads = backend.client.list_multipart_uploads(Bucket=backend.bucket).get("Uploads", [])
    return [item["Key"] for item in objects] + [f"upload:{item['Key']}" for item in uploads]


class Boom(Exception):
    pass


def failing_after(data: bytes, fail_at: int):
    sent = 0
    for piece in pieces(data, 256 * 1024):
        if sent >= fail_at:
            raise Boom("the client went away")
        sent += len(piece)
        yield piece


# --- Round trips ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, 2 * CHUNK_SIZE, 3 * CHUNK_SIZE + CHUNK_SIZE // 2])
def test_round_trip(backend, size):
    data = os.urandom(size)
    blob = storage.put(pieces(data))
    assert read_all(blob) == data
    assert b"".join(storage.open_range(blob)) == data
    assert blob.size == size
    assert blob.sha256 == hashlib.sha256(data).hexdigest()
    assert blob.key_id == "key-a"
    expected_chunks = max(1, -(-size // CHUNK_SIZE))
    assert len(raw(blob)) == crypto.HEADER_SIZE + size + expected_chunks * crypto.TAG_SIZE


def test_stored_bytes_do_not_contain_the_plaintext(backend):
    data = pattern(2 * CHUNK_SIZE + 1000)
    blob = storage.put(pieces(data))
    stored = raw(blob)
    assert PATTERN[:16] not in stored
    assert b"DUPONT" not in stored
    assert stored.startswith(crypto.MAGIC)


def test_keys_are_random_and_independent_of_the_content(backend):
    first, second = storage.put([b"same"]), storage.put([b"same"])
    assert first.key != second.key
    assert first.wrapped_key != second.wrapped_key
    assert raw(first)[crypto.HEADER_SIZE :] != raw(second)[crypto.HEADER_SIZE :]
    assert storage._OBJECT_KEY_RE.match(first.key)


def test_delete(backend):
    blob = storage.put([b"to be deleted"])
    storage.delete(blob)
    assert leftovers() == []
    storage.delete(blob)  # already gone: not an error
    with pytest.raises(storage.MissingObjectError):
        read_all(blob)


# --- Range reads ------------------------------------------------------------------------------------------------


def test_range_reads_at_chunk_boundaries(backend):
    size = 3 * CHUNK_SIZE + CHUNK_SIZE // 2
    data = os.urandom(size)
    blob = storage.put(pieces(data))
    ranges = [
        (0, 1), (0, CHUNK_SIZE), (CHUNK_SIZE - 1, CHUNK_SIZE + 1), (CHUNK_SIZE, 2 * CHUNK_SIZE),
        (CHUNK_SIZE, CHUNK_SIZE), (2 * CHUNK_SIZE - 5, size), (3 * CHUNK_SIZE, size), (size - 1, size),
        (size, size), (12345, 3 * CHUNK_SIZE + 7), (0, size),
    ]  # fmt: skip
    for start, end in ranges:
        assert b"".join(storage.open_range(blob, start, end)) == data[start:end], (start, end)
    assert b"".join(storage.open_range(blob, 2 * CHUNK_SIZE)) == data[2 * CHUNK_SIZE :]


def test_range_reads_only_fetch_the_needed_chunks(backend, monkeypatch):
    data = os.urandom(3 * CHUNK_SIZE)
    blob = storage.put(pieces(data))
    calls = []
    backend_class = type(storage.get_backend())
    original_read, original_reader = backend_class.read, storage._exact_reader
    monkeypatch.setattr(backend_class, "read", lambda self, *args: calls.append(args[1:]) or original_read(self, *args))
    monkeypatch.setattr(storage, "_exact_reader", lambda *args: calls.append(args[2:]) or original_reader(*args))
    start = CHUNK_SIZE + 10
    assert b"".join(storage.open_range(blob, start, start + 10)) == data[start : start + 10]
    chunk_one = crypto.chunk_offset(1, CHUNK_SIZE)
    asked = [call for i, call in enumerate(calls) if i == 0 or call != calls[i - 1]]  # S3's reader calls read
    assert asked == [(0, crypto.HEADER_SIZE), (chunk_one, chunk_one + SEALED_CHUNK)]


def test_invalid_ranges_are_refused(backend):
    blob = storage.put([b"0123456789"])
    for start, end in [(-1, 5), (5, 4), (0, 11)]:
        with pytest.raises(ValueError, match="Invalid range"):
            storage.open_range(blob, start, end)


# --- Tampering --------------------------------------------------------------------------------------------------


def test_flipped_byte_is_detected(backend):
    data = os.urandom(3 * CHUNK_SIZE)
    blob = storage.put(pieces(data))
    stored = bytearray(raw(blob))
    stored[crypto.chunk_offset(1, CHUNK_SIZE) + 1000] ^= 0x01
    overwrite(blob, bytes(stored))
    with pytest.raises(IntegrityError, match="Chunk 1"):
        read_all(blob)
    with pytest.raises(IntegrityError):
        b"".join(storage.open_range(blob, CHUNK_SIZE, CHUNK_SIZE + 1))
    # Untouched chunks still read: a damaged video keeps its other parts.
    assert b"".join(storage.open_range(blob, 0, CHUNK_SIZE)) == data[:CHUNK_SIZE]


@pytest.mark.parametrize("offset", [0, 4, 5, 9, crypto.HEADER_SIZE - 1])
def test_tampered_header_is_detected(backend, offset):
    blob = storage.put([b"short document"])
    stored = bytearray(raw(blob))
    stored[offset] ^= 0x01
    overwrite(blob, bytes(stored))
    with pytest.raises(IntegrityError):
        read_all(blob)
    with pytest.raises(IntegrityError):
        b"".join(storage.open_range(blob, 0, 1))


@pytest.mark.parametrize("cut", ["last chunk", "tag", "one byte", "all but header", "everything"])
def test_truncated_object_is_detected(backend, cut):
    data = os.urandom(2 * CHUNK_SIZE + 500)
    blob = storage.put(pieces(data))
    stored = raw(blob)
    keep = {
        "last chunk": crypto.chunk_offset(2, CHUNK_SIZE),
        "tag": len(stored) - crypto.TAG_SIZE,
        "one byte": len(stored) - 1,
        "all but header": crypto.HEADER_SIZE,
        "everything": 0,
    }[cut]
    overwrite(blob, stored[:keep])
    with pytest.raises(IntegrityError):
        read_all(blob)
    with pytest.raises(IntegrityError):
        b"".join(storage.open_range(blob, 2 * CHUNK_SIZE, blob.size))


def test_dropping_the_last_chunk_and_the_recorded_size_is_detected(backend):
    data = os.urandom(2 * CHUNK_SIZE + 500)
    blob = storage.put(pieces(data))
    overwrite(blob, raw(blob)[: crypto.chunk_offset(2, CHUNK_SIZE)])
    shortened = dataclasses.replace(blob, size=2 * CHUNK_SIZE)  # chunk 1 was not sealed as the last one
    with pytest.raises(IntegrityError, match="Chunk 1"):
        read_all(shortened)


def test_reordered_chunks_are_detected(backend):
    data = os.urandom(3 * CHUNK_SIZE)
    blob = storage.put(pieces(data))
    stored = raw(blob)
    first, second = (stored[crypto.chunk_offset(i, CHUNK_SIZE) :][:SEALED_CHUNK] for i in (0, 1))
    overwrite(blob, stored[: crypto.HEADER_SIZE] + second + first + stored[crypto.chunk_offset(2, CHUNK_SIZE) :])
    with pytest.raises(IntegrityError, match="Chunk 0"):
        read_all(blob)


def test_appended_data_is_detected(backend):
    data = os.urandom(2 * CHUNK_SIZE)
    blob = storage.put(pieces(data))
    stored = raw(blob)
    overwrite(blob, stored + stored[crypto.chunk_offset(1, CHUNK_SIZE) :])
    with pytest.raises(IntegrityError, match="after its last chunk"):
        read_all(blob)


def test_last_chunk_is_withheld_until_the_checksum_matches(backend):
    data = os.urandom(CHUNK_SIZE + 10)
    blob = dataclasses.replace(storage.put(pieces(data)), sha256="0" * 64)
    received = []
    with pytest.raises(IntegrityError, match="SHA-256"):
        for piece in storage.read_all_verified(blob):
            received.append(piece)
    assert b"".join(received) == data[:CHUNK_SIZE]


# --- Failures leave nothing behind ------------------------------------------------------------------------------


@pytest.mark.parametrize("fail_at", [0, 3 * CHUNK_SIZE, 12 * CHUNK_SIZE])  # S3: before, and after, the first part
def test_failing_input_leaves_nothing_behind(backend, fail_at):
    with pytest.raises(Boom):
        storage.put(failing_after(os.urandom(16 * CHUNK_SIZE), fail_at))
    assert leftovers() == []


def test_failing_backend_leaves_nothing_behind(backend, monkeypatch):
    target = storage.get_backend()
    if backend == "local":
        def disk_full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(os, "fsync", disk_full)
        expected = OSError
    else:
        from botocore.exceptions import ClientError

        real_upload_part = target.client.upload_part

        def upload_part(**kwargs):
            if kwargs["PartNumber"] == 2:
                raise ClientError({"Error": {"Code": "InternalError", "Message": "simulated"}}, "UploadPart")
            return real_upload_part(**kwargs)

        monkeypatch.setattr(target.client, "upload_part", upload_part)
        expected = ClientError
    with pytest.raises(expected):
        storage.put(pieces(os.urandom(12 * CHUNK_SIZE), CHUNK_SIZE))
    monkeypatch.undo()
    assert leftovers() == []


# --- Keys -------------------------------------------------------------------------------------------------------


def test_rotation_rewraps_without_rewriting(backend, settings):
    data = pattern(CHUNK_SIZE + 3)
    blob = storage.put(pieces(data))
    stored = raw(blob)
    settings.DOCUMENT_MASTER_KEYS = f"key-b:{KEY_B},key-a:{KEY_A}"
    settings.DOCUMENT_ACTIVE_KEY_ID = "key-b"
    key_id, wrapped = storage.rewrap(blob)
    assert key_id == "key-b"
    assert len(wrapped) == crypto.WRAPPED_KEY_SIZE
    rotated = dataclasses.replace(blob, key_id=key_id, wrapped_key=wrapped)

    settings.DOCUMENT_MASTER_KEYS = f"key-b:{KEY_B}"  # the old key is retired
    assert read_all(rotated) == data
    assert b"".join(storage.open_range(rotated, CHUNK_SIZE, CHUNK_SIZE + 3)) == data[CHUNK_SIZE:]
    assert raw(rotated) == stored
    with pytest.raises(ImproperlyConfigured, match="key-a"):
        read_all(blob)


def test_rewrap_to_a_given_key(backend, settings):
    blob = storage.put([b"x"])
    settings.DOCUMENT_MASTER_KEYS = f"key-a:{KEY_A},key-b:{KEY_B}"
    key_id, wrapped = storage.rewrap(blob, to_key_id="key-b")
    assert key_id == "key-b"
    assert read_all(dataclasses.replace(blob, key_id=key_id, wrapped_key=wrapped)) == b"x"


def test_rewrap_under_the_same_key_changes_nothing(backend, settings):
    blob = storage.put([b"x"])
    assert storage.rewrap(blob) == ("key-a", blob.wrapped_key)
    settings.DOCUMENT_MASTER_KEYS = f"key-a:{KEY_B}"
    with pytest.raises(IntegrityError):  # still checked, so a rotation run reports unreadable keys
        storage.rewrap(blob)


def test_wrong_master_key_is_an_integrity_error(backend, settings):
    blob = storage.put([b"secret"])
    settings.DOCUMENT_MASTER_KEYS = f"key-a:{KEY_B}"  # same id, other key
    with pytest.raises(IntegrityError, match="key-a"):
        read_all(blob)
    with pytest.raises(IntegrityError):
        storage.open_range(blob)
    with pytest.raises(IntegrityError):
        storage.rewrap(blob)


def test_wrapped_key_is_bound_to_its_key_id(backend, settings):
    blob = storage.put([b"secret"])
    settings.DOCUMENT_MASTER_KEYS = f"key-a:{KEY_A},key-c:{KEY_A}"  # same key material under another id
    with pytest.raises(IntegrityError):
        read_all(dataclasses.replace(blob, key_id="key-c"))


def test_data_key_of_another_file_is_refused(backend):
    first, second = storage.put([b"first"]), storage.put([b"second"])
    with pytest.raises(IntegrityError):
        read_all(dataclasses.replace(first, wrapped_key=second.wrapped_key))


# --- Memory -----------------------------------------------------------------------------------------------------


def test_memory_stays_bounded_for_a_large_file(backend):
    block = os.urandom(64 * 1024)
    count = 200 * 1024 * 1024 // len(block)

    def stream():
        for _ in range(count):
            yield block

    tracemalloc.start()
    try:
        blob = storage.put(stream())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert blob.size == count * len(block)
    # Bounded whatever the size: the hashing and scanning threads' queues (DEFAULT_DEPTH chunks) plus the chunks
    # being read, encrypted and written. 16 MiB held only while those threads kept up; on a busy machine the
    # queue fills and the peak was 20.2 MiB, for a 200 MiB file.
    assert peak < (DEFAULT_DEPTH + 8) * CHUNK_SIZE, f"peak {peak / 2**20:.1f} MiB"
    tail = count * len(block) - 10
    assert b"".join(storage.open_range(blob, tail)) == (block * 2)[-10:]
    storage.delete(blob)


# --- Master key settings (no backend needed) --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("key-a", "comma-separated"),
        ("key a:" + KEY_A, "comma-separated"),
        ("key-a:not base64!", "not valid base64"),
        ("key-a:" + base64.b64encode(b"short").decode(), "5 bytes"),
        ("key-a:" + base64.b64encode(bytes(33)).decode(), "33 bytes"),
        (f"key-a:{KEY_A},key-a:{KEY_B}", "twice"),
        (" , ", "no key"),
    ],
)
def test_malformed_master_keys_are_refused(settings, value, message):
    settings.DOCUMENT_MASTER_KEYS = value
    with pytest.raises(ImproperlyConfigured, match=message):
        crypto.master_keys()


def test_active_key_defaults_to_the_first_and_must_exist(settings):
    settings.DOCUMENT_MASTER_KEYS = f" key-b:{KEY_B} , key-a:{KEY_A} "
    settings.DOCUMENT_ACTIVE_KEY_ID = ""
    assert crypto.active_key_id() == "key-b"
    assert crypto.master_keys() == {"key-b": base64.b64decode(KEY_B), "key-a": base64.b64decode(KEY_A)}
    settings.DOCUMENT_ACTIVE_KEY_ID = "key-z"
    with pytest.raises(ImproperlyConfigured, match="key-z"):
        crypto.active_key_id()


def test_development_key_file_is_created_once_in_debug(settings, tmp_path):
    settings.DEBUG = True
    settings.DOCUMENT_MASTER_KEYS = ""
    settings.DOCUMENT_ACTIVE_KEY_ID = ""
    settings.VAR_DIR = tmp_path / "var"
    first = crypto.master_keys()
    path = settings.VAR_DIR / crypto.DEV_KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.master_keys() == first
    assert len(next(iter(first.values()))) == 32
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_no_generated_key_without_debug(settings, tmp_path):
    settings.DEBUG = False
    settings.DOCUMENT_MASTER_KEYS = ""
    settings.VAR_DIR = tmp_path
    with pytest.raises(ImproperlyConfigured, match="DOCUMENT_MASTER_KEYS"):
        crypto.master_keys()
    assert not (tmp_path / crypto.DEV_KEY_FILE_NAME).exists()


def test_unknown_storage_and_bad_keys_are_refused(settings):
    settings.DOCUMENT_STORAGE = "ftp"
    with pytest.raises(ImproperlyConfigured, match="DOCUMENT_STORAGE"):
        storage.get_backend()
    settings.DOCUMENT_STORAGE = "s3"
    settings.DOCUMENT_S3_BUCKET = ""
    with pytest.raises(ImproperlyConfigured, match="DOCUMENT_S3_BUCKET"):
        storage.get_backend()
    with pytest.raises(ValueError, match="storage key"):
        storage.LocalBackend(settings.DOCUMENT_ROOT).read("../../etc/passwd", 0, None)


# --- The upload spool: encrypted while received, committed without a second encryption ----------------------

def _spooled(data: bytes, piece: int = 100_000):
    from teleexpertise.documents.spool import Spool

    spooled = Spool()
    for part in pieces(data, piece):
        spooled.write(part)
    spooled.finish()
    return spooled


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 12_345])
def test_a_spool_commits_to_the_same_object_put_would_make(backend, size):
    data = pattern(size)
    spooled = _spooled(data)
    assert PATTERN[:20] not in spooled.path.read_bytes()  # ciphertext only, from the first byte received
    blob = spooled.commit()
    assert (blob.size, blob.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert read_all(blob) == data and raw(blob) != data
    assert not spooled.path.exists()  # renamed (local) or uploaded then removed (S3)
    spooled.discard()  # after a commit: nothing to undo
    assert read_all(blob) == data


@pytest.mark.parametrize("writes", [
    [CHUNK_SIZE] * 3,  # whole chunks: kept as received, the last one sealed as last
    [CHUNK_SIZE, CHUNK_SIZE, 12_345],
    [CHUNK_SIZE, 5, CHUNK_SIZE - 5, CHUNK_SIZE],  # whole chunks again after an unaligned piece
    [7] * 10 + [CHUNK_SIZE, CHUNK_SIZE],
])
def test_a_spool_takes_whole_and_partial_chunks_in_any_order(backend, writes):
    data = os.urandom(sum(writes))
    from teleexpertise.documents.spool import Spool

    spooled, position = Spool(), 0
    for size in writes:
        spooled.write(data[position:position + size])
        position += size
    spooled.finish()
    with spooled.open() as plain:
        assert plain.read() == data
    blob = spooled.commit()
    assert blob.sha256 == hashlib.sha256(data).hexdigest() and read_all(blob) == data


def test_a_spool_reads_back_any_range_of_the_plaintext(backend):
    data = os.urandom(3 * CHUNK_SIZE + 777)
    spooled = _spooled(data, piece=65_536)
    with spooled.open() as plain:
        for start, length in [(0, 10), (CHUNK_SIZE - 5, 10), (2 * CHUNK_SIZE, CHUNK_SIZE + 777), (len(data) - 3, 50)]:
            plain.seek(start)
            assert plain.read(length) == data[start : start + length]
        plain.seek(-100, os.SEEK_END)
        assert plain.read() == data[-100:]
    spooled.discard()
    assert not spooled.path.exists()


def test_a_tampered_spool_is_not_read_as_plaintext(backend):
    spooled = _spooled(pattern(2 * CHUNK_SIZE))
    with open(spooled.path, "r+b") as f:
        f.seek(crypto.chunk_offset(1, CHUNK_SIZE) + 10)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 1]))
    with spooled.open() as plain:
        assert plain.read(100) == pattern(100)  # the first chunk is intact
        plain.seek(CHUNK_SIZE)
        with pytest.raises(IntegrityError):
            plain.read(100)
    spooled.discard()


def test_a_spool_nobody_commits_or_discards_goes_with_its_object(backend):
    import gc

    from teleexpertise.documents.spool import Spool

    spooled = Spool()
    spooled.write(pattern(CHUNK_SIZE + 10))  # cut off mid-way, as when a client disconnects
    path = spooled.path
    assert path.exists()
    del spooled
    gc.collect()
    assert not path.exists()


def test_stale_spool_files_are_purged(backend):
    from teleexpertise.documents import spool
    from teleexpertise.documents.tasks import purge_stale_spool

    old, recent = _spooled(pattern(10)), _spooled(pattern(10))
    os.utime(old.path, (time.time() - 2 * 86400,) * 2)
    assert purge_stale_spool.call_local() == 1
    assert not old.path.exists() and recent.path.exists()
    assert spool.purge_stale(max_age_seconds=0) == 1
