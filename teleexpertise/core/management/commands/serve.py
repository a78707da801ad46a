"""Start the web server (gunicorn) and the job consumer (huey) together; Ctrl-C stops both."""

import logging
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)

# gunicorn gthread: processes x threads. The API bench (bench/README.md, `api`) measures them on two cores.
DEFAULT_WORKERS = 2
DEFAULT_THREADS = 4
WORKER_CLASS = "teleexpertise.gunicorn_worker.BalancedThreadWorker"  # gthread that spreads connections over workers


class Command(BaseCommand):
    help = "Serve the platform: web server and background job consumer."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
        parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)

    def handle(self, *args, host, port, workers, threads, **options):
        manage = [sys.executable, str(settings.PROJECT_DIR / "manage.py")]
        web = [sys.executable, "-m", "gunicorn", "teleexpertise.wsgi:application", "--bind", f"{host}:{port}",
               "--workers", str(workers), "--threads", str(threads), "--worker-class", WORKER_CLASS,
               "--config", "python:teleexpertise.gunicorn_conf"]
        children = [subprocess.Popen(manage + ["run_huey"]), subprocess.Popen(web, cwd=settings.PROJECT_DIR)]  # noqa: S603
        logger.info("serving", extra={"url": f"http://{host}:{port}/"})
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        try:
            while not stop and all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.terminate()
            for child in children:
                child.wait(timeout=20)
        failed = [child.returncode for child in children if child.returncode not in (0, -15, None)]
        if failed:
            sys.exit(1)
