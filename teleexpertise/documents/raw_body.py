"""Reading a large request body (a file sent as the whole body) in blocks, as cheaply as the server allows.

Under gunicorn, `wsgi.input` buffers what it receives in `io.BytesIO` objects and copies each block several times
before the application sees it: receiving 1 GB that way cost the worker about one CPU-second, more than encrypting
and hashing it together (bench/documents). When the body is gunicorn's plain length-delimited body on a socket,
`block_reader` takes what gunicorn has already buffered, then receives the rest straight from the socket into the
block it returns (`recv_into`, one copy), keeping gunicorn's own count of what is left of the body up to date, so
that keep-alive and the next request on the connection work as before. Anything else (another server, the test
client, a chunked body, a body already started) gets the portable path: `request.read`.
"""

from __future__ import annotations

import io
from collections.abc import Callable

from django.http import UnreadablePostError

BlockReader = Callable[[int], bytes | bytearray]


def block_reader(request) -> BlockReader:
    """A function returning the next `n` bytes of the body (fewer only where the body ends early)."""
    direct = _gunicorn_body(request)
    if direct is None:
        return request.read
    return direct.read


def _gunicorn_body(request) -> _SocketBody | None:
    try:
        from gunicorn.http.body import Body, LengthReader
        from gunicorn.http.unreader import SocketUnreader
    except ImportError:
        return None
    stream = request.META.get("wsgi.input")
    if getattr(request, "_read_started", True) or not isinstance(stream, Body):
        return None
    reader = stream.reader
    if not (isinstance(reader, LengthReader) and isinstance(reader.unreader, SocketUnreader)
            and isinstance(stream.buf, io.BytesIO) and isinstance(reader.unreader.buf, io.BytesIO)
            and isinstance(reader.length, int)):
        return None
    request._read_started = True  # Django must not read the body again behind this reader
    return _SocketBody(stream, reader)


class _SocketBody:
    def __init__(self, body, reader) -> None:
        self._body = body
        self._reader = reader  # reader.length: bytes of the body gunicorn has not taken from the socket yet
        held = body.buf.getvalue() + self._take_unread()
        body.buf = io.BytesIO()
        self._held = memoryview(held)

    def _take_unread(self) -> bytes:
        """What gunicorn read from the socket ahead of the body reader, up to the end of this body (a request
        pipelined behind it stays where gunicorn will look for it)."""
        unreader, reader = self._reader.unreader, self._reader
        data = unreader.buf.getvalue()
        unreader.buf = io.BytesIO()
        mine, rest = data[: reader.length], data[reader.length :]
        unreader.buf.write(rest)
        reader.length -= len(mine)
        return mine

    def read(self, size: int) -> bytearray:
        block = bytearray(size)
        view = memoryview(block)
        filled = min(size, len(self._held))
        view[:filled] = self._held[:filled]
        self._held = self._held[filled:]
        sock = self._reader.unreader.sock
        while filled < size and self._reader.length > 0:
            want = min(size - filled, self._reader.length)
            try:
                count = sock.recv_into(view[filled : filled + want])
            except OSError as exc:
                self._body.failed = True  # where the next request starts is unknown: gunicorn closes
                raise UnreadablePostError(str(exc)) from exc
            if count == 0:
                self._body.failed = True
                break
            filled += count
            self._reader.length -= count
        view.release()
        if filled < size:
            del block[filled:]
        return block
