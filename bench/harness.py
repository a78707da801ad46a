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
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objs:
            copy.write_row([f.pre_save(obj, True) for f in fields])  # pre_save: auto_now_add values


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
