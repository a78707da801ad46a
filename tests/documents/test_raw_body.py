"""A raw request body read straight from gunicorn's socket (`raw_body.block_reader`), under a real gunicorn.

The app below reads the body in blocks as the upload view does and answers the body's size and SHA-256, and
whether the socket path was taken; what it saw is also appended to a log, for a client that does not wait for the
answer. Keep-alive and pipelining check that gunicorn's count of the body is kept right: the next request on the
connection must be read from where this body ends.
"""

import hashlib
import http.client
import json
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from teleexpertise.documents.raw_body import _SocketBody as _SocketBodyClass
from tests.gunicorn_server import gunicorn_serving

BLOCK = 64 * 1024 + 3  # not a divisor of anything sent: blocks straddle what gunicorn had buffered


def reading_app(environ, start_response):
    import django

    django.setup()
    from django.core.handlers.wsgi import WSGIRequest
    from django.http import UnreadablePostError

    from teleexpertise.documents import raw_body

    request = WSGIRequest(environ)
    size = int(environ.get("CONTENT_LENGTH") or 0)
    read = raw_body.block_reader(request)
    digest, received, outcome = hashlib.sha256(), 0, "complete"
    try:
        while received < size:
            block = read(min(BLOCK, size - received))
            if not block:
                outcome = "ended early"
                break
            digest.update(block)
            received += len(block)
    except UnreadablePostError:
        outcome = "unreadable"
    answer = {"bytes": received, "sha256": digest.hexdigest(), "outcome": outcome,
              "socket_path": getattr(read, "__self__", None).__class__.__name__ == "_SocketBody"}
    with open(os.environ["RAW_BODY_LOG"], "a") as log:
        log.write(json.dumps(answer) + "\n")
    body = json.dumps(answer).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server(tmp_path):
    log = tmp_path / "reads.log"
    env = {"RAW_BODY_LOG": str(log), "DJANGO_SETTINGS_MODULE": "teleexpertise.settings_test"}
    with gunicorn_serving("tests.documents.test_raw_body:reading_app", tmp_path, env=env) as port:
        yield port, log


def post(connection: http.client.HTTPConnection, body: bytes) -> dict:
    connection.request("POST", "/upload", body=body, headers={"Content-Type": "application/octet-stream"})
    response = connection.getresponse()
    assert response.status == 200
    return json.loads(response.read())


@pytest.mark.parametrize("size", [0, 1, 100_000, 3 * 1024 * 1024 + 7])
def test_the_body_is_read_whole_from_the_socket(server, size):
    port, _ = server
    body = os.urandom(size)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    answer = post(connection, body)
    assert answer == {"bytes": size, "sha256": hashlib.sha256(body).hexdigest(), "outcome": "complete",
                      "socket_path": True}


def test_keep_alive_goes_on_after_a_body_read_from_the_socket(server):
    port, _ = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    bodies = [os.urandom(n) for n in (2_000_000, 10, 300_000)]
    for body in bodies:
        assert post(connection, body)["sha256"] == hashlib.sha256(body).hexdigest()


def test_a_request_pipelined_behind_the_body_is_read_as_the_next_request(server):
    """Both requests in one send: gunicorn has the start of the second one in its buffer when the first body is
    read; it must stay there."""
    port, _ = server
    first, second = os.urandom(5000), os.urandom(7000)

    def request(body):
        return (b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body) + body)

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request(first) + request(second))
        sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    answers = [json.loads(part.split(b"\r\n\r\n", 1)[1][: part.split(b"\r\n\r\n", 1)[1].index(b"}") + 1])
               for part in received.split(b"HTTP/1.1 200 OK")[1:]]
    assert [a["sha256"] for a in answers] == [hashlib.sha256(first).hexdigest(), hashlib.sha256(second).hexdigest()]


def test_a_client_gone_mid_body_is_an_unreadable_body(server):
    port, log = server
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: test\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: 1000000\r\n\r\n" + os.urandom(300_000))
    deadline = time.monotonic() + 10
    while not (log.exists() and log.read_text()):
        assert time.monotonic() < deadline, "the app never finished reading"
        time.sleep(0.05)
    seen = json.loads(log.read_text().splitlines()[-1])
    assert seen["outcome"] == "ended early" and seen["bytes"] == 300_000 and seen["socket_path"]


def test_other_servers_get_the_portable_reader(rf):
    from teleexpertise.documents import raw_body

    request = rf.post("/upload", data=b"abc", content_type="application/octet-stream")
    read = raw_body.block_reader(request)
    assert read(2) == b"ab" and read(5) == b"c"


# --- The platform's upload view, given a request that gunicorn's own parser read from a socket -------------------

def _through_gunicorn(raw_request: bytes) -> tuple[str, bytes, object]:
    """What a gunicorn worker does with one request, in this process (so on the test database): gunicorn's parser
    reads it from a socket and builds the environ, whose wsgi.input is gunicorn's body on that socket; the
    platform's WSGI application answers. Returns the status, the body and the environ's input."""
    from django.core import signals
    from django.core.wsgi import get_wsgi_application
    from django.db import close_old_connections
    from gunicorn.config import Config
    from gunicorn.http import wsgi
    from gunicorn.http.parser import RequestParser

    server_side, client_side = socket.socketpair()
    sender = threading.Thread(target=client_side.sendall, args=(raw_request,))
    sender.start()
    # As django.test.Client does: closing "old" connections would end the test's transaction.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        config = Config()
        request = next(RequestParser(config, server_side, ("127.0.0.1", 40000)))
        _response, environ = wsgi.create(request, server_side, ("127.0.0.1", 40000), ("127.0.0.1", 8000), config)
        status = []
        answer = get_wsgi_application()(environ, lambda line, headers, exc_info=None: status.append(line))
        try:
            body = b"".join(answer)
        finally:
            answer.close()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)
        sender.join()
        server_side.close()
        client_side.close()
    return status[0], body, environ["wsgi.input"]


@pytest.mark.django_db
def test_the_upload_view_takes_the_socket_path_under_gunicorn(cast, client_for, settings, local_documents,
                                                              monkeypatch):
    import struct

    from django.urls import reverse

    from teleexpertise.documents import raw_body
    from teleexpertise.documents.crypto import CHUNK_SIZE
    from teleexpertise.documents.models import Document
    from tests.documents.hostile import mp4_bytes

    taken = []
    monkeypatch.setattr(raw_body, "_SocketBody", lambda *args: taken.append(1) or _SocketBodyClass(*args))
    payload = os.urandom(3 * CHUNK_SIZE + 12_345)
    video = mp4_bytes() + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload
    case = cast.case_in("taken")
    session = client_for(cast.requester.user).cookies[settings.SESSION_COOKIE_NAME].value
    csrf = "k" * 32
    path = f"{reverse('documents:upload', args=[case.pk])}?kind=video&attached_to=request"
    head = (f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {len(video)}\r\nX-File-Name: examen.mp4\r\nX-CSRFToken: {csrf}\r\n"
            f"Accept: application/json\r\nCookie: {settings.SESSION_COOKIE_NAME}={session}; "
            f"{settings.CSRF_COOKIE_NAME}={csrf}\r\n\r\n").encode()

    status, body, body_stream = _through_gunicorn(head + video)

    assert status.startswith("200"), body
    assert taken == [1]  # the body came from the socket, not through gunicorn's buffers
    assert body_stream.reader.length == 0  # gunicorn knows the body is read: keep-alive goes on from here
    document = Document.objects.get(case=case)
    assert json.loads(body)["documents"][0]["id"] == str(document.pk)
    assert (document.size, document.sha256) == (len(video), hashlib.sha256(video).hexdigest())
    download = client_for(cast.expert.user).get(reverse("documents:download", args=[document.pk]))
    assert b"".join(download.streaming_content) == video
    assert not any((Path(settings.DOCUMENT_ROOT) / ".spool").iterdir())  # the spool became the stored file
