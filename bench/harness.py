"""What every benchmark shares: the environment, a throwaway database, logged-in clients, timing and stats.

Nothing here touches the developer's database: each benchmark runs in its own database, named after the
configured one plus `_bench_<name>` (PostgreSQL) or `var/bench_<name>.sqlite3` (SQLite), created with
Django's test-database machinery and dropped at the end unless BENCH_KEEPDB=1.
"""

import io
import json
import os
import statistics
import sys
import time
import warnings
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEFAULT_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/teleexpertise_bench"
DEFAULT_SQLITE_URL = f"sqlite:///{PROJECT_DIR / 'var' / 'bench.sqlite3'}"
META_TABLE = "bench_meta"


def say(line: str = "") -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


# --- Environment and Django setup ------------------------------------------------------------------------

def postgres_reachable(url: str = DEFAULT_POSTGRES_URL) -> bool:
    try:
        import dj_database_url
        import psycopg
    except ImportError:
        return False
    cfg = dj_database_url.parse(url)
    try:
        psycopg.connect(host=cfg["HOST"], port=cfg["PORT"] or 5432, user=cfg["USER"],
                        password=cfg["PASSWORD"] or None, dbname="postgres", connect_timeout=3).close()
    except psycopg.Error:
        return False
    return True


def setup_django() -> None:
    """Test settings (dev key allowed, jobs inline) on DATABASE_URL, else local PostgreSQL, else SQLite."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "teleexpertise.settings_test"
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = DEFAULT_POSTGRES_URL if postgres_reachable() else DEFAULT_SQLITE_URL
    sys.path.insert(0, str(PROJECT_DIR))
    import django
    from django.conf import settings

    warnings.filterwarnings("ignore", message="No directory at", module="django.core.handlers.base")  # whitenoise
    django.setup()
    settings.DEBUG = False  # as in production and in Django's test runner: no query log, no template debug


# --- The throwaway database ------------------------------------------------------------------------------

def _bench_db_name(settings_dict: dict, benchmark: str) -> str:
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return str(PROJECT_DIR / "var" / f"bench_{benchmark}.sqlite3")
    name = settings_dict["NAME"]
    return f"{name}_{benchmark}" if "bench" in name else f"{name}_bench_{benchmark}"


def _create(keepdb: bool) -> None:
    from django.db import connection

    connection.close()
    with redirect_stdout(io.StringIO()):  # createcachetable says "already exists" on a kept database
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False, keepdb=keepdb)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (name VARCHAR(64) PRIMARY KEY, value TEXT)")


@contextmanager
def throwaway_database(benchmark: str, *, keepdb: bool):
    """Run the block in the benchmark's own database; drop it afterwards unless keepdb."""
    from django.db import connection

    (PROJECT_DIR / "var").mkdir(exist_ok=True)
    old_name = connection.settings_dict["NAME"]
    connection.settings_dict.setdefault("TEST", {})["NAME"] = _bench_db_name(connection.settings_dict, benchmark)
    _create(keepdb)
    try:
        yield connection.settings_dict["NAME"]
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0, keepdb=keepdb)


def recreate_database() -> None:
    """Start again from an empty, migrated database (kept data that does not match the run)."""
    from django.db import connection

    connection.creation.destroy_test_db(verbosity=0)  # drops it; the connection keeps pointing at its name
    _create(keepdb=False)


def read_meta(benchmark: str) -> dict | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {META_TABLE} WHERE name = %s", [benchmark])  # noqa: S608
        row = cursor.fetchone()
    return json.loads(row[0]) if row else None


def write_meta(benchmark: str, value: dict) -> None:
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {META_TABLE} WHERE name = %s", [benchmark])  # noqa: S608
        cursor.execute(f"INSERT INTO {META_TABLE} (name, value) VALUES (%s, %s)",  # noqa: S608
                       [benchmark, json.dumps(value)])


def bulk_insert(model, objs: list, batch_size: int = 5_000) -> None:
    """bulk_create, or COPY on PostgreSQL (several times faster for millions of rows). Primary keys left to the
    database are not set back on the objects. Values go as Python values, adapted by psycopg."""
    from django.db import connection

    if not objs:
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(objs, batch_size=batch_size)
        return
    fields = [f for f in model._meta.concrete_fields if not (f.primary_key and getattr(objs[0], f.attname) is None)]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    sql = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    # JSON columns need the field's own adaptation (psycopg cannot guess a dict's type); the others go as they are.
    json_fields = {f for f in fields if f.get_internal_type() == "JSONField"}
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objs:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) if f in json_fields
                            else f.pre_save(obj, True) for f in fields])  # pre_save: auto_now_add values


def analyze() -> None:
    """Fresh planner statistics (and, on PostgreSQL, a visibility map), as autovacuum would leave them."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")


def database_info() -> dict:
    from django.db import connection

    connection.ensure_connection()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            version = cursor.fetchone()[0]
    else:
        version = connection.Database.sqlite_version if connection.vendor == "sqlite" else "?"
    return {"vendor": connection.vendor, "version": version, "name": str(connection.settings_dict["NAME"]),
            "connect_ms": connect_ms()}


def connect_ms(samples: int = 10) -> float:
    """Median time to open a connection: what every request pays on top when DB_CONN_MAX_AGE=0 (the default);
    the measured requests themselves share one connection, as with persistent connections."""
    from django.db import connection

    times = []
    for _ in range(samples):
        connection.close()
        start = time.perf_counter()
        connection.ensure_connection()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 2)


# --- Requests --------------------------------------------------------------------------------------------

def logged_in_client(user):
    """A test client past login and the second-factor gate (as tests/conftest.py does)."""
    from django.test import Client

    client = Client(SERVER_NAME="localhost")  # an allowed host without setup_test_environment()
    client.force_login(user)
    session = client.session
    session["mfa_enrolled"] = True
    session.save()
    return client


@dataclass
class Sample:
    url: str
    ms: float
    queries: int
    sql_ms: float
    statements: list = field(default_factory=list)  # (sql, params, ms) of each query, in order


class QueryTimer:
    """An execute wrapper that times every statement precisely (CaptureQueriesContext rounds to 1 ms)."""

    def __init__(self):
        self.statements = []

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.statements.append((sql, params, (time.perf_counter() - start) * 1000))


def timed_get(client, url: str) -> Sample:
    """One GET through the whole middleware stack, timed in-process: server-side time, no network."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    timer = QueryTimer()
    connection.queries_log.clear()  # the log keeps 9,000 queries and warns beyond
    with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(timer):
        start = time.perf_counter()
        response = client.get(url)
        elapsed = (time.perf_counter() - start) * 1000
    if response.status_code != 200:
        raise RuntimeError(f"GET {url} answered {response.status_code}, expected 200")
    return Sample(url, elapsed, len(captured.captured_queries), sum(s[2] for s in timer.statements),
                  timer.statements)


def measure(client, urls: list[str], *, warmup: int, requests: int) -> list[Sample]:
    """Warm-up requests (discarded; at least one per url, so first-visit writes are not timed), then
    `requests` timed ones, cycling through urls."""
    for i in range(max(warmup, len(urls))):
        timed_get(client, urls[i % len(urls)])
    return [timed_get(client, urls[i % len(urls)]) for i in range(requests)]


# --- Statistics ------------------------------------------------------------------------------------------

def percentile(values: list[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def _slowest_statements(samples: list[Sample], top: int = 3) -> list[dict]:
    """The statements with the highest median time, matched by position among the requests that ran the most
    common number of statements (a page runs the same list each time)."""
    length = statistics.mode(len(s.statements) for s in samples)
    samples = [s for s in samples if len(s.statements) == length]
    rows = []
    for i in range(length):
        times = [s.statements[i][2] for s in samples]
        sql, params, _ = samples[-1].statements[i]
        rows.append({"position": i + 1, "p50_ms": round(statistics.median(times), 3),
                     "max_ms": round(max(times), 3), "sql": sql, "params": list(params or ())})
    return sorted(rows, key=lambda row: row["p50_ms"], reverse=True)[:top]


def summarise(samples: list[Sample], *, target_ms: float) -> dict:
    ms = [s.ms for s in samples]
    queries = sorted({s.queries for s in samples})
    sql_ms = [s.sql_ms for s in samples]
    p95 = percentile(ms, 95)
    return {
        "requests": len(samples),
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(max(ms), 2),
        "min_ms": round(min(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "queries": queries[0] if len(queries) == 1 else queries,
        "sql_p50_ms": round(percentile(sql_ms, 50), 2),
        "sql_p95_ms": round(percentile(sql_ms, 95), 2),
        "target_p95_ms": target_ms,
        "met": p95 <= target_ms,
        "slowest_statements": _slowest_statements(samples),
    }


def explain(sql: str, params) -> list[str] | None:
    """EXPLAIN (ANALYZE, BUFFERS) of a SELECT on PostgreSQL; None elsewhere (it would run writes)."""
    from django.db import connection

    if connection.vendor != "postgresql" or not sql.lstrip().upper().startswith("SELECT"):
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        return [row[0] for row in cursor.fetchall()]


def summary_line(benchmark: str, page: str, stats: dict) -> str:
    verdict = "ok" if stats["met"] else "MISSED"
    return (f"{benchmark}/{page:<5} p50 {stats['p50_ms']:7.2f} ms  p95 {stats['p95_ms']:7.2f} ms  "
            f"max {stats['max_ms']:7.2f} ms  sql p50 {stats['sql_p50_ms']:6.2f} ms  queries {stats['queries']}  "
            f"(target p95 <= {stats['target_p95_ms']:g} ms: {verdict})")


def timing_summary(ms: list[float]) -> dict:
    """p50/p95/min/max/mean of a list of durations in milliseconds."""
    return {"runs": len(ms), "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
            "min_ms": round(min(ms), 2), "max_ms": round(max(ms), 2), "mean_ms": round(statistics.fmean(ms), 2)}


# --- A real server, driven over HTTP ---------------------------------------------------------------------
# For what the test client cannot show: the WSGI server, the socket, and the memory of the process that serves.

def database_url() -> str:
    """A DATABASE_URL for the database the benchmark runs in (its throwaway one), for another process."""
    from urllib.parse import quote

    from django.db import connection

    cfg = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{cfg['NAME']}"
    if connection.vendor != "postgresql":
        raise RuntimeError(f"no URL for a {connection.vendor} database")
    user = quote(cfg.get("USER") or "", safe="")
    password = f":{quote(str(cfg['PASSWORD']), safe='')}" if cfg.get("PASSWORD") else ""
    credentials = f"{user}{password}@" if user else ""
    port = f":{cfg['PORT']}" if cfg.get("PORT") else ""
    return f"postgres://{credentials}{cfg.get('HOST') or ''}{port}/{quote(cfg['NAME'], safe='')}"


def session_cookies(user, *, secret_key: str) -> dict:
    """Cookies of a signed-in session past the second-factor gate, stored in the database for a server whose
    SECRET_KEY is `secret_key` (the session and its auth hash are signed with it), plus a CSRF cookie whose
    value is also the token to send (X-CSRFToken): an unmasked secret is accepted."""
    import secrets
    from importlib import import_module

    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.test.utils import override_settings

    with override_settings(SECRET_KEY=secret_key):
        session = import_module(settings.SESSION_ENGINE).SessionStore()
        session[SESSION_KEY] = user._meta.pk.value_to_string(user)
        session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session["mfa_enrolled"] = True
        session.save()
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    csrf = "".join(secrets.choice(alphabet) for _ in range(32))
    return {settings.SESSION_COOKIE_NAME: session.session_key, settings.CSRF_COOKIE_NAME: csrf}


def child_pids(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        current = todo.pop()
        tree.append(current)
        todo += child_pids(current)
    return tree


def memory_kb(pid: int) -> dict:
    """VmRSS and its parts (RssAnon: heap and buffers; RssFile: mapped files, including mmap'd data files;
    RssShmem) of a process, in kB; {} if it is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    wanted = {"VmRSS": "rss", "RssAnon": "anon", "RssFile": "file", "RssShmem": "shmem"}
    out = {}
    for line in lines:
        key, _, value = line.partition(":")
        if key in wanted:
            out[wanted[key]] = int(value.split()[0])
    return out


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time a process has used so far (0 if it is gone); with `reaped_children`, also that of
    its children which have ended and been waited for (a PostgreSQL server's closed backends)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def _machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat (idle and iowait are not busy)."""
    values = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


@contextmanager
def cpu_window(pid: int):
    """CPU used during the block by a process (a server worker), by this process (the client) and by the whole
    machine, in seconds and in cores busy: shows whether a transfer was CPU-bound, and what else was running."""
    figures: dict = {}
    busy, _ = _machine_jiffies()
    worker, client, start = cpu_seconds(pid), time.process_time(), time.perf_counter()
    try:
        yield figures
    finally:
        elapsed = max(time.perf_counter() - start, 1e-9)
        busy_seconds = (_machine_jiffies()[0] - busy) / os.sysconf("SC_CLK_TCK")
        worker, client = cpu_seconds(pid) - worker, time.process_time() - client
        figures.update({"worker_cpu_seconds": round(worker, 2), "client_cpu_seconds": round(client, 2),
                        "machine_busy_cores": round(busy_seconds / elapsed, 2),
                        "others_busy_cores": round(max(0.0, busy_seconds - worker - client) / elapsed, 2),
                        "cores": os.cpu_count()})


class MemorySampler:
    """Samples the resident memory of a process and its descendants every `interval` seconds in a thread.

    `with sampler.window() as figures:` fills `figures` at the end of the block with the baseline (sampled when
    the block starts), the peak and the growth, in MB, for VmRSS and for its anonymous and file-backed parts
    (each part's own peak).
    """

    def __init__(self, pid: int, interval: float = 0.05):
        import threading

        self.pid = pid
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._peaks: dict | None = None
        self._count = 0
        self._thread = threading.Thread(target=self._loop, daemon=True, name="memory-sampler")

    def sample(self) -> dict:
        total = {"rss": 0, "anon": 0, "file": 0, "shmem": 0}
        pids = process_tree(self.pid)
        for pid in pids:
            for key, value in memory_kb(pid).items():
                total[key] += value
        total["processes"] = len(pids)
        return total

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            current = self.sample()
            with self._lock:
                if self._peaks is not None:
                    self._count += 1
                    for key, value in current.items():
                        self._peaks[key] = max(self._peaks[key], value)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @contextmanager
    def window(self):
        figures: dict = {}
        baseline = self.sample()
        with self._lock:
            self._peaks, self._count = dict(baseline), 0
        try:
            yield figures
        finally:
            last = self.sample()
            with self._lock:
                peaks, count, self._peaks = self._peaks, self._count, None
            for key, value in last.items():
                peaks[key] = max(peaks[key], value)
            mb = lambda kb: round(kb / 1024, 1)  # noqa: E731
            figures.update({
                "baseline_mb": mb(baseline["rss"]), "peak_mb": mb(peaks["rss"]),
                "growth_mb": mb(peaks["rss"] - baseline["rss"]), "after_mb": mb(last["rss"]),
                "anon_baseline_mb": mb(baseline["anon"]), "anon_peak_mb": mb(peaks["anon"]),
                "anon_growth_mb": mb(peaks["anon"] - baseline["anon"]),
                "file_baseline_mb": mb(baseline["file"]), "file_peak_mb": mb(peaks["file"]),
                "file_growth_mb": mb(peaks["file"] - baseline["file"]),
                "processes": peaks["processes"], "samples": count + 2, "interval_ms": round(self.interval * 1000),
            })


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    host: str
    port: int
    process: object
    log_path: Path

    @property
    def workers(self) -> list[int]:
        return child_pids(self.process.pid)

    def connection(self, timeout: float = 900):
        import http.client

        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


PLATFORM_APP = "teleexpertise.wsgi:application"


@contextmanager
def live_server(env: dict, *, log_path: Path, app: str = PLATFORM_APP, workers: int = 1, threads: int = 4,
                start_timeout: float = 60):
    """gunicorn serving the platform (or another WSGI `app`) on 127.0.0.1 as `manage.py serve` does (gthread),
    with `env` added to this process's environment; stopped (SIGTERM, then SIGKILL) when the block ends."""
    import subprocess

    port = free_port()
    config = ["--config", "python:teleexpertise.gunicorn_conf"] if app == PLATFORM_APP else []
    command = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}",
               "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
               "--timeout", "900", "--graceful-timeout", "10", *config, *_no_control_socket()]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env={**os.environ, **env},  # noqa: S603
                                   stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer("127.0.0.1", port, process, log_path)
    try:
        _wait_until_up(server, workers, start_timeout)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _no_control_socket() -> list[str]:
    """gunicorn >= 24 opens a control socket in ~/.gunicorn/ by default: not this one's to take from a
    development server running alongside."""
    from gunicorn.config import KNOWN_SETTINGS

    return ["--no-control-socket"] if any("--no-control-socket" in (s.cli or []) for s in KNOWN_SETTINGS) else []


def _wait_until_up(server: LiveServer, workers: int, timeout: float) -> None:
    import http.client

    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"the server exited ({server.process.returncode}):\n{server.log_tail()}")
        try:
            connection = server.connection(timeout=5)
            connection.request("GET", "/healthz")
            connection.getresponse().read()
            connection.close()
            if len(server.workers) >= workers:
                return
        except (OSError, http.client.HTTPException):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer within {timeout:g} s:\n{server.log_tail()}")
        time.sleep(0.2)


def gunicorn_workers(root: int) -> list[int]:
    """The gunicorn worker processes under `root` (a `manage.py serve`): the children of the gunicorn master."""
    workers = []
    for pid in process_tree(root):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"gunicorn" in command and pid != root:
            workers += [child for child in child_pids(pid) if child not in workers]
    return workers


@contextmanager
def production_server(env: dict, *, log_path: Path, workers: int | None = None, threads: int | None = None,
                      start_timeout: float = 90):
    """`manage.py serve` as production starts it (gunicorn gthread with `teleexpertise.gunicorn_conf`, and the huey
    consumer), on 127.0.0.1 and a free port, with `env` added to this process's environment; `workers` and
    `threads` left out keep serve's defaults. `XDG_RUNTIME_DIR` in `env` keeps gunicorn's control socket out of
    ~/.gunicorn/. Stopped with SIGTERM (serve stops its children), then SIGKILL of the whole tree."""
    import signal
    import subprocess

    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--workers", str(workers)] if workers else []
    command += ["--threads", str(threads)] if threads else []
    with open(log_path, "ab") as log:
        process = subprocess.Popen(command, cwd=PROJECT_DIR, env={**os.environ, **env},  # noqa: S603
                                   stdout=log, stderr=subprocess.STDOUT)
    server = LiveServer("127.0.0.1", port, process, log_path)
    expected = workers or 1
    try:
        deadline = time.monotonic() + start_timeout
        while not (_answers(server) and len(gunicorn_workers(process.pid)) >= expected):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited ({process.returncode}):\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {start_timeout:g} s:\n{server.log_tail()}")
            time.sleep(0.2)
        yield server
    finally:
        tree = process_tree(process.pid)
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        for pid in tree:  # whatever did not stop with serve (checked to be still ours: the pid was not reused)
            try:
                if b"manage.py" in Path(f"/proc/{pid}/cmdline").read_bytes() or b"gunicorn" in Path(
                        f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        process.wait()


def _answers(server: LiveServer) -> bool:
    import http.client

    try:
        connection = server.connection(timeout=5)
        connection.request("GET", "/healthz")
        ok = connection.getresponse().status == 200
        connection.close()
        return ok
    except (OSError, http.client.HTTPException):
        return False
