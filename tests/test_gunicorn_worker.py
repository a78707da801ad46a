"""The gunicorn worker `manage.py serve` runs spreads kept-alive connections over its processes (a real gunicorn)."""

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from teleexpertise.core.management.commands.serve import WORKER_CLASS

PROJECT_DIR = Path(__file__).resolve().parent.parent


def slow_pid_app(environ, start_response):
    """Answers after a moment with the id of the process that served the request."""
    time.sleep(0.5)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = _free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "tests.test_gunicorn_worker:slow_pid_app", "--bind", f"127.0.0.1:{port}",
         "--workers", "2", "--threads", "2", "--worker-class", WORKER_CLASS],
        cwd=PROJECT_DIR, env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/")
            connection.getresponse().read()
            connection.close()
            break
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                pytest.fail("gunicorn did not start")
            time.sleep(0.2)
    time.sleep(1)  # both workers up
    yield port
    process.terminate()
    process.wait(timeout=30)


def test_kept_alive_connections_are_spread_over_the_workers(server):
    """Four connections opened at once on two workers of two threads: each worker takes two (plain gthread lets
    the first worker to wake take all four, the other idling), and keeps them for their next requests."""
    connections = [http.client.HTTPConnection("127.0.0.1", server, timeout=10) for _ in range(4)]
    served: list[list[str]] = [[] for _ in connections]

    def talk(index: int) -> None:
        for _ in range(2):  # the second request goes on the same kept-alive connection
            connections[index].request("GET", "/")
            served[index].append(connections[index].getresponse().read().decode())

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    for connection in connections:
        connection.close()
    assert all(len(pids) == 2 and pids[0] == pids[1] for pids in served), served  # keep-alive kept
    per_worker = sorted(sum(1 for pids in served if pids[0] == pid) for pid in {pids[0] for pids in served})
    assert per_worker == [2, 2], served
