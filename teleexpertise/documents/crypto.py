"""Envelope encryption of clinical documents: master keys, data-key wrapping and the chunked object format.

Every stored file gets its own random AES-256 data key. The data key is wrapped (AES-256-GCM) by a master key
named by an id; the wrapped key and the id live in the database next to the document, the master keys live only in
settings (DOCUMENT_MASTER_KEYS). Rotating a master key therefore rewraps 61 bytes per file, never the file itself.

Wrapped data key (61 bytes)::

    version (1 byte, 0x01) | nonce (12 random bytes) | AES-256-GCM(master key, data key) (32 bytes + 16-byte tag)
    AAD = b"teleexpertise-document-key\\x00" + key id (UTF-8), so a wrapped key cannot be relabelled with another id.

Stored object (all integers big-endian)::

    header (17 bytes) = magic b"TXDE" | format version (1 byte, 0x01) | chunk size in bytes (uint32)
                        | nonce prefix (8 random bytes)
    then N chunks, N = max(1, ceil(plaintext size / chunk size)); chunk i is
        AES-256-GCM(data key, plaintext[i * chunk size : (i + 1) * chunk size]) = ciphertext | 16-byte tag
        nonce = nonce prefix (8 bytes) | i (uint32)
        AAD   = header (17 bytes) | i (uint32) | last flag (1 byte: 0x01 for chunk N - 1, else 0x00)

Every chunk but the last holds exactly `chunk size` plaintext bytes; the last holds the rest (0 bytes only for an
empty file). Chunk i therefore starts at byte 17 + i * (chunk size + 16), which is what makes range reads cheap.
Binding the index and the last flag in the AAD makes reordered, dropped, truncated or appended chunks fail
authentication; binding the header stops a rewritten chunk size or version from being accepted. The plaintext size
and SHA-256 are kept in the database (they are not secret enough to hide, and the reader needs the size to know
where the last chunk ends).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CHUNK_SIZE = 1024 * 1024  # plaintext bytes per chunk: bounds memory, and the waste of a range read
MAX_CHUNK_SIZE = 64 * 1024 * 1024  # refuse headers asking for more: a tampered header must not cost memory
MAGIC = b"TXDE"
FORMAT_VERSION = 1
NONCE_PREFIX_SIZE = 8
HEADER = struct.Struct(">4sBI8s")
HEADER_SIZE = HEADER.size  # 17
TAG_SIZE = 16
KEY_SIZE = 32  # AES-256
WRAP_VERSION = 1
WRAP_AAD_PREFIX = b"teleexpertise-document-key\x00"
WRAPPED_KEY_SIZE = 1 + 12 + KEY_SIZE + TAG_SIZE  # 61
DEV_KEY_FILE_NAME = "document-master-keys"
_KEY_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class IntegrityError(Exception):
    """A stored document or its wrapped key failed authentication (tampered, truncated, or the wrong key)."""


@dataclass(frozen=True)
class Header:
    chunk_size: int
    nonce_prefix: bytes
    raw: bytes  # the exact bytes, authenticated as part of every chunk's AAD


# --- Master keys -----------------------------------------------------------------------------------------------


def parse_master_keys(value: str) -> dict[str, bytes]:
    """Parse "id:base64[,id2:base64...]" into {id: 32-byte key}, refusing anything malformed."""
    keys: dict[str, bytes] = {}
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID_RE.match(key_id):
            raise ImproperlyConfigured(
                "DOCUMENT_MASTER_KEYS must be a comma-separated list of key-id:base64-key "
                "(ids of 1-64 letters, digits, '.', '_' or '-')."
            )
        if key_id in keys:
            raise ImproperlyConfigured(f"DOCUMENT_MASTER_KEYS lists the key id {key_id!r} twice.")
        keys[key_id] = _decode_key(key_id, encoded.strip())
    return keys


def _decode_key(key_id: str, encoded: str) -> bytes:
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ImproperlyConfigured(f"DOCUMENT_MASTER_KEYS: the key {key_id!r} is not valid base64.") from None
    if len(raw) != KEY_SIZE:
        raise ImproperlyConfigured(
            f"DOCUMENT_MASTER_KEYS: the key {key_id!r} is {len(raw)} bytes after base64 decoding; "
            f"it must be exactly {KEY_SIZE} (generate one with: openssl rand -base64 32)."
        )
    return raw


def master_keys() -> dict[str, bytes]:
    """The configured master keys; in DEBUG with none configured, a generated development key file."""
    configured = settings.DOCUMENT_MASTER_KEYS or ""
    if configured.strip():
        keys = parse_master_keys(configured)
    elif settings.DEBUG:
        keys = parse_master_keys(_development_key_line())
    else:
        raise ImproperlyConfigured("DOCUMENT_MASTER_KEYS must be set when DEBUG is off (documents are encrypted).")
    if not keys:
        raise ImproperlyConfigured("DOCUMENT_MASTER_KEYS (or the development key file) lists no key.")
    return keys


def active_key_id() -> str:
    keys = master_keys()
    key_id = settings.DOCUMENT_ACTIVE_KEY_ID or next(iter(keys))
    if key_id not in keys:
        raise ImproperlyConfigured(f"DOCUMENT_ACTIVE_KEY_ID {key_id!r} is not one of the DOCUMENT_MASTER_KEYS ids.")
    return key_id


def master_key(key_id: str) -> bytes:
    keys = master_keys()
    if key_id not in keys:
        # A configuration problem, not tampering: the file may be fine once the old key is put back.
        raise ImproperlyConfigured(f"The master key {key_id!r} is not in DOCUMENT_MASTER_KEYS (was it removed?).")
    return keys[key_id]


def _development_key_line() -> str:
    """Read, or create once, VAR_DIR/document-master-keys: files written in development must stay readable."""
    path = Path(settings.VAR_DIR) / DEV_KEY_FILE_NAME
    if not path.exists():
        _create_development_key_file(path)
    return path.read_text(encoding="ascii").strip()


def _create_development_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    line = "dev-1:" + base64.b64encode(os.urandom(KEY_SIZE)).decode("ascii") + "\n"
    temp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
        # link() fails if another process won the race; its key is then the one to keep (never overwrite a key).
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)


# --- Data keys -------------------------------------------------------------------------------------------------


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def wrap_key(data_key: bytes, key_id: str) -> bytes:
    nonce = os.urandom(12)
    sealed = AESGCM(master_key(key_id)).encrypt(nonce, data_key, WRAP_AAD_PREFIX + key_id.encode())
    return bytes([WRAP_VERSION]) + nonce + sealed


def unwrap_key(wrapped: bytes, key_id: str) -> bytes:
    wrapped = bytes(wrapped)  # database drivers may hand back memoryview
    if len(wrapped) != WRAPPED_KEY_SIZE or wrapped[0] != WRAP_VERSION:
        raise IntegrityError("The wrapped data key has an unknown format.")
    try:
        return AESGCM(master_key(key_id)).decrypt(wrapped[1:13], wrapped[13:], WRAP_AAD_PREFIX + key_id.encode())
    except InvalidTag:
        raise IntegrityError(f"The data key did not open with master key {key_id!r}: wrong key or tampered.") from None


# --- Object format ---------------------------------------------------------------------------------------------


def new_header(chunk_size: int = CHUNK_SIZE) -> Header:
    prefix = os.urandom(NONCE_PREFIX_SIZE)
    return Header(chunk_size, prefix, HEADER.pack(MAGIC, FORMAT_VERSION, chunk_size, prefix))


def parse_header(raw: bytes) -> Header:
    if len(raw) != HEADER_SIZE:
        raise IntegrityError("The stored object is too short to hold a header.")
    magic, version, chunk_size, prefix = HEADER.unpack(raw)
    if magic != MAGIC or version != FORMAT_VERSION:
        raise IntegrityError("The stored object does not start with a known document header.")
    if not 0 < chunk_size <= MAX_CHUNK_SIZE:
        raise IntegrityError("The stored object header has an impossible chunk size.")
    return Header(chunk_size, prefix, bytes(raw))


def chunk_count(size: int, chunk_size: int) -> int:
    return max(1, -(-size // chunk_size))


def chunk_plain_length(index: int, size: int, chunk_size: int) -> int:
    return max(0, min(chunk_size, size - index * chunk_size))


def chunk_offset(index: int, chunk_size: int) -> int:
    """Byte offset of chunk `index` in the stored object."""
    return HEADER_SIZE + index * (chunk_size + TAG_SIZE)


def _nonce_and_aad(header: Header, index: int, last: bool) -> tuple[bytes, bytes]:
    counter = struct.pack(">I", index)  # struct.error past 2**32 chunks: 4 PiB at 1 MiB, beyond any document
    return header.nonce_prefix + counter, header.raw + counter + (b"\x01" if last else b"\x00")


def encrypt_chunk(aead: AESGCM, header: Header, index: int, last: bool, plaintext: bytes) -> bytes:
    nonce, aad = _nonce_and_aad(header, index, last)
    return aead.encrypt(nonce, plaintext, aad)


def encrypt_chunk_into(aead: AESGCM, header: Header, index: int, last: bool, plaintext, out) -> None:
    """`encrypt_chunk`, written into `out` (exactly len(plaintext) + TAG_SIZE bytes) instead of a new object."""
    nonce, aad = _nonce_and_aad(header, index, last)
    aead.encrypt_into(nonce, plaintext, aad, out)


def decrypt_chunk(aead: AESGCM, header: Header, index: int, last: bool, sealed: bytes) -> bytes:
    nonce, aad = _nonce_and_aad(header, index, last)
    try:
        return aead.decrypt(nonce, sealed, aad)
    except InvalidTag:
        raise IntegrityError(f"Chunk {index} of the stored object failed authentication.") from None
