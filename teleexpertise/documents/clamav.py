"""Optional malware scan through a clamd daemon, speaking its INSTREAM protocol over a socket.

settings.CLAMAV_ADDRESS is "host:port" (IPv6 as "[::1]:3310") or an absolute unix socket path; empty disables
scanning. What to do when the scanner is unreachable (refuse, hold, accept) is the caller's policy.
"""

from __future__ import annotations

import re
import socket
import struct
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CHUNK_SIZE = 64 * 1024  # well under clamd's default StreamMaxLength (25 MB) per chunk
DEFAULT_TIMEOUT = 60.0  # seconds per socket operation; clamd may take a while on a large file
MAX_REPLY = 4096
_FOUND = re.compile(r"stream: (?P<name>.+) FOUND")


class ScannerUnavailable(Exception):
    """No verdict: clamd could not be reached, timed out, or answered with an error."""


def scan(source, *, address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> str | None:
    """The signature name when clamd finds malware; None when clean or when scanning is disabled.

    `source`: a path, or an open binary file (scanned from its start; an upload read back from its encrypted spool
    goes to clamd without a plaintext copy on disk)."""
    address = settings.CLAMAV_ADDRESS if address is None else address
    if not address:
        return None
    try:
        with _connect(address, timeout) as sock:
            sock.sendall(b"zINSTREAM\x00")
            if isinstance(source, (str, Path)):
                with Path(source).open("rb") as f:
                    _send_stream(sock, f)
            else:
                source.seek(0)
                _send_stream(sock, source)
            reply = _read_reply(sock)
    except OSError as exc:  # includes timeouts and refused connections
        raise ScannerUnavailable(f"clamd at {address}: {exc}") from exc
    return _verdict(reply)


def ping(*, address: str | None = None, timeout: float = 5.0) -> bool:
    """True when clamd answers PING (for health checks); False when disabled or unreachable."""
    address = settings.CLAMAV_ADDRESS if address is None else address
    if not address:
        return False
    try:
        with _connect(address, timeout) as sock:
            sock.sendall(b"zPING\x00")
            return _read_reply(sock) == "PONG"
    except OSError:
        return False


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """("unix", path) or ("tcp", (host, port)); a malformed address is a configuration error."""
    if address.startswith("/"):
        return "unix", address
    host, _sep, port = address.rpartition(":")
    host = host.strip("[]")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ImproperlyConfigured(f'CLAMAV_ADDRESS must be "host:port" or a unix socket path, not {address!r}')
    return "tcp", (host, int(port))


def _connect(address: str, timeout: float) -> socket.socket:
    family, target = parse_address(address)
    if family == "tcp":
        return socket.create_connection(target, timeout=timeout)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


def _send_stream(sock: socket.socket, f) -> None:
    try:
        while chunk := f.read(CHUNK_SIZE):
            sock.sendall(struct.pack("!I", len(chunk)) + chunk)
        sock.sendall(struct.pack("!I", 0))  # end of stream
    except (BrokenPipeError, ConnectionResetError):
        # clamd closes the stream early when it exceeds StreamMaxLength; its reply says why.
        pass


def _read_reply(sock: socket.socket) -> str:
    data = bytearray()
    while b"\x00" not in data and len(data) < MAX_REPLY:
        try:
            chunk = sock.recv(MAX_REPLY)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    return data.split(b"\x00", 1)[0].decode("utf-8", "replace").strip()


def _verdict(reply: str) -> str | None:
    if reply == "stream: OK":
        return None
    if found := _FOUND.fullmatch(reply):
        return found["name"]
    raise ScannerUnavailable(f"clamd replied {reply!r}" if reply else "clamd closed the connection without a reply")
