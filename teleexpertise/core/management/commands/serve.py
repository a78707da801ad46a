"""Start the web server (gunicorn) and the job consumer (huey) together; Ctrl-C stops both."""

import logging
import os
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

logger = logging.getLogger(__name__)

# gunicorn gthread: processes x threads. The API bench (bench/README.md, `api`) measures them on two cores: with
# four processes of two threads, fewer requests wait for their own process's interpreter lock than with two of four.
DEFAULT_WORKERS = 4
DEFAULT_THREADS = 2
# The consumer's CPU priority (nice): background jobs (e-mails, webhooks, PDFs) yield the processor to the requests
# someone is waiting for, and catch up when the load drops. 0 puts them on an equal footing.
DEFAULT_JOBS_NICE = 10
WORKER_CLASS = "teleexpertise.gunicorn_worker.BalancedThreadWorker"  # gthread that spreads connections over workers


class Command(BaseCommand):
    help = "Serve the platform: web server and background job consumer."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS)
        parser.add_argument("--threads", type=int, default=DEFAULT_THREADS)
        parser.add_argument("--jobs-nice", type=int, default=DEFAULT_JOBS_NICE, choices=range(20),
                            help="CPU priority of the job consumer, from 0 (the web server's) to 19 (lowest).")

    def handle(self, *args, host, port, workers, threads, jobs_nice, **options):
        manage = [sys.executable, str(settings.PROJECT_DIR / "manage.py")]
        web = [sys.executable, "-m", "gunicorn", "teleexpertise.wsgi:application", "--bind", f"{host}:{port}",
               "--workers", str(workers), "--threads", str(threads), "--worker-class", WORKER_CLASS,
               "--config", "python:teleexpertise.gunicorn_conf"]
        consumer = subprocess.Popen(manage + ["run_huey"], preexec_fn=lambda: os.nice(jobs_nice))  # noqa: S603
        children = [consumer, subprocess.Popen(web, cwd=settings.PROJECT_DIR)]  # noqa: S603
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
