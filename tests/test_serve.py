"""`manage.py serve` as production starts it: the web server answers, and the job consumer runs at a lower CPU
priority than the web server, so that background jobs never slow down the requests someone is waiting for."""

import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.harness import child_pids
from tests.gunicorn_server import PROJECT_DIR, free_port
from tests.processes import stop_process


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found = {}
    for child in child_pids(pid):
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue  # gone meanwhile
    return found


def healthz(port: int) -> dict | None:
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        return json.loads(response.read()) if response.status == 200 else None
    except (OSError, http.client.HTTPException):
        return None


@pytest.fixture
def serving(tmp_path):
    """`serve` on a free port, on its own SQLite file and job queue (nothing shared with the test database)."""
    def start(*options: str):
        port = free_port()
        env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "DATABASE_URL")}
        env.update(DJANGO_SETTINGS_MODULE="teleexpertise.settings", DEBUG="1", JOBS_IMMEDIATE="0",
                   DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}", TELEEXPERTISE_VAR_DIR=str(tmp_path),
                   XDG_RUNTIME_DIR=str(tmp_path))
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "1", "--threads", "1", *options],
            cwd=PROJECT_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(process)
        deadline = time.monotonic() + 60
        while healthz(port) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("manage.py serve did not start")
            time.sleep(0.2)
        return process, port

    started: list[subprocess.Popen] = []
    yield start
    for process in started:
        stop_process(process, timeout=30)


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


def roles(process) -> dict[str, int]:
    found = {}
    for pid, command in children(process.pid).items():
        found["consumer" if "run_huey" in command else "web" if "gunicorn" in command else command] = pid
    return found


def test_the_consumer_yields_the_processor_to_the_web_server(serving):
    process, port = serving()
    assert healthz(port)["jobs"]["status"] == "ok"
    started = roles(process)
    assert set(started) == {"consumer", "web"}
    assert niceness(started["web"]) == niceness(process.pid)
    assert niceness(started["consumer"]) == min(niceness(process.pid) + 10, 19)
    assert all(niceness(worker) == niceness(process.pid) for worker in children(started["web"]))


def test_the_consumer_priority_can_be_the_web_servers(serving):
    process, _ = serving("--jobs-nice", "0")
    started = roles(process)
    assert niceness(started["consumer"]) == niceness(started["web"]) == niceness(process.pid)


def test_a_priority_out_of_range_is_refused():
    result = subprocess.run([sys.executable, "manage.py", "serve", "--jobs-nice", "25"], cwd=PROJECT_DIR,  # noqa: S603
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "--jobs-nice" in result.stderr
