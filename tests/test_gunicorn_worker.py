"""The gunicorn worker `manage.py serve` runs spreads kept-alive connections over its processes (a real gunicorn)."""

import http.client
import os
import threading
import time

import pytest

from tests.gunicorn_server import gunicorn_serving


def slow_pid_app(environ, start_response):
    """Answers after a moment with the id of the process that served the request."""
    time.sleep(0.5)
    body = str(os.getpid()).encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def server(tmp_path):
    with gunicorn_serving("tests.test_gunicorn_worker:slow_pid_app", tmp_path, workers=2) as port:
        time.sleep(1)  # both workers up
        yield port


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
