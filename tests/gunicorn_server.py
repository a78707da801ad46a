"""A real gunicorn, run as `manage.py serve` runs it (its worker class), serving a test's WSGI app."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from teleexpertise.core.management.commands.serve import WORKER_CLASS
from tests.processes import stop_process

PROJECT_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def gunicorn_serving(app: str, runtime_dir: Path, *, workers: int = 1, threads: int = 2, env: dict | None = None):
    """Yields the port once gunicorn accepts connections; stops it after."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--threads", str(threads), "--worker-class", WORKER_CLASS],
        cwd=PROJECT_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir), **(env or {})})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    pytest.fail("gunicorn did not start")
                time.sleep(0.2)
        yield port
    finally:
        stop_process(process, timeout=30)
