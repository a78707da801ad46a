"""Benchmark `api`: requests per second and latency of the REST API and the FHIR facade, through the production
server (`manage.py serve`: gunicorn gthread and the job consumer) with production settings (DEBUG off, PostgreSQL,
Redis), loaded by one client process (wrk) with 8 keep-alive connections on the same machine.

Data: the `inbox` benchmark's generator at BENCH_CASES (10,000) cases, then, for each run, the drafts to submit
and the pool cases to claim (each is used once). Every calling user has a personal token (all scopes).

A scenario is a declaration (`Scenario`): method, URL template, the items it is spread over (each names the
calling user and the URL's values), and a body factory; `SCENARIOS` lists them in the order they run. Each is
warmed up, then measured for BENCH_API_SECONDS (or, when each item may be used once, over a fixed count).

Knobs: BENCH_CASES (10000), BENCH_API_SECONDS (20), BENCH_API_WARMUP_SECONDS (3), BENCH_API_ONCE (3000),
BENCH_API_CONNECTIONS (8), BENCH_API_WORKERS / BENCH_API_THREADS (serve's defaults), BENCH_API_SCENARIOS (all),
BENCH_REDIS_URL (redis://127.0.0.1:6379/15), BENCH_API_PROFILE=1 (py-spy, when installed, samples the workers).
"""

import base64
import io
import json
import logging
import os
import platform
import random
import re
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from django.db import connection, transaction
from django.utils import timezone

from bench import harness, inbox

NAME = "api"
DATA_VERSION = 1  # bump when the generated data changes: kept databases (BENCH_KEEPDB=1) are then rebuilt
TARGET_CASES = 10_000
TARGET_WRITE_RPS = 150
TARGET_READ_RPS = 350
TARGET_P95_MS = 100.0
UPLOAD_BYTES = 100 * 1024
ONCE_WARMUP = 200  # requests of a use-once scenario spent on its warm-up
ITEMS_MAX = 2_000  # distinct requests a cycling scenario goes round
UPLOAD_ITEMS = 100  # the upload's body is 100 KB: fewer distinct requests, each kept in wrk's memory
BENCH_RATE_LIMIT = "1000000/min"  # API_RATE_LIMIT for the server: the default budget would refuse the load
WRK_SCRIPT = Path(__file__).resolve().parent / "api.lua"
MESSAGE = "Merci pour ces éléments, je regarde la dermoscopie et je reviens vers vous dans la journée."


@dataclass(frozen=True)
class Config:
    cases: int
    seconds: int
    warmup_seconds: int
    once: int
    connections: int
    workers: int | None
    threads: int | None
    scenarios: tuple[str, ...]
    redis_url: str
    profile: bool

    @classmethod
    def from_env(cls) -> "Config":
        wanted = tuple(n.strip() for n in os.environ.get("BENCH_API_SCENARIOS", "").split(",") if n.strip())
        return cls(cases=harness.env_int("BENCH_CASES", TARGET_CASES),
                   seconds=max(1, harness.env_int("BENCH_API_SECONDS", 20)),
                   warmup_seconds=max(1, harness.env_int("BENCH_API_WARMUP_SECONDS", 3)),
                   once=max(10, harness.env_int("BENCH_API_ONCE", 3_000)),
                   connections=max(1, harness.env_int("BENCH_API_CONNECTIONS", 8)),
                   workers=harness.env_int("BENCH_API_WORKERS", 0) or None,
                   threads=harness.env_int("BENCH_API_THREADS", 0) or None,
                   scenarios=wanted or tuple(s.name for s in SCENARIOS),
                   redis_url=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"),
                   profile=harness.env_flag("BENCH_API_PROFILE"))

    @property
    def signature(self) -> dict:
        return {"version": DATA_VERSION, "inbox_version": inbox.DATA_VERSION, "seed": inbox.SEED, "cases": self.cases}


# --- What the scenarios draw from ----------------------------------------------------------------------------

@dataclass
class Seed:
    """Ids read from the database once the data is there, the tokens of the users who call, and the upload."""

    tokens: dict = field(default_factory=dict)  # user id -> bearer secret
    requesters: list = field(default_factory=list)  # [(user id, professional id)] with a user account
    experts: list = field(default_factory=list)  # [(user id, professional id)], members of the networks
    networks: dict = field(default_factory=dict)  # network id -> [(user id, professional id)] of its members
    threads: list = field(default_factory=list)  # [(expert user id, case id)]: cases with messages
    open_for_expert: list = field(default_factory=list)  # [(expert user id, case id)]: taken/accepted/awaiting
    open_for_requester: list = field(default_factory=list)  # [(requester user id, case id)] where a request doc goes
    drafts: list = field(default_factory=list)  # [(requester user id, case id)] made for this run, to submit
    pool: list = field(default_factory=list)  # [(member user id, case id)] made for this run, to claim
    upload: bytes = b""
    patient_serial: int = 0


@dataclass(frozen=True)
class Scenario:
    """One measured call. `url` is formatted with each item; an item's "user" is who calls (their token).
    `body(item, seed)` gives the request body (None: none). `once`: each item may be used only once (a claim),
    so the run covers a fixed number of requests instead of a duration."""

    name: str
    kind: str  # "write" or "read": which throughput target applies
    method: str
    url: str
    items: Callable[[Seed], list[dict]]
    body: Callable[[dict, Seed], bytes] | None = None
    content_type: str = "application/json"
    once: bool = False
    what: str = ""


def _json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def _spread(rows: list, limit: int = ITEMS_MAX) -> list:
    """Up to `limit` rows in a fixed shuffled order, so consecutive requests go to different users and cases."""
    rows = list(rows)
    random.Random(inbox.SEED).shuffle(rows)
    return rows[:limit]


def _new_request_items(seed: Seed) -> list[dict]:
    rng = random.Random(inbox.SEED + 1)
    items = []
    for i in range(ITEMS_MAX):
        user, _pid = rng.choice(seed.requesters)
        network = rng.choice(list(seed.networks))
        to = {"network_id": str(network)} if rng.random() < inbox.VIA_NETWORK else {
            "expert_id": str(rng.choice(seed.networks[network])[1])}
        items.append({"user": user, "patient": seed.patient_serial + i, "to": to})
    return items


def _new_request_body(item: dict, seed: Seed) -> bytes:
    """A draft with a new patient (a valid INS, the same traits each run for the same serial) and a consent."""
    rng = random.Random(item["patient"])
    sex = rng.choice("MF")
    birth = date(rng.randint(1935, 2020), rng.randint(1, 12), rng.randint(1, 28))
    ins = inbox.nir(item["patient"], sex, birth, rng.choice(inbox.DEPARTMENTS))
    return _json({
        "patient": {"ins_nir": ins, "birth_name": rng.choice(inbox.LAST_NAMES).upper(),
                    "first_names": rng.choice(inbox.FIRST_NAMES), "sex": sex, "birth_date": birth.isoformat(),
                    "birth_place_code": ins[5:10], "identity_status": "validated"},
        "consent": {"status": "given", "given_by": "patient",
                    "informed_at": (timezone.now() - timedelta(minutes=10)).isoformat(),
                    "explained_interest": True, "explained_practicalities": True, "explained_right_to_refuse": True},
        "question": rng.choice(inbox.QUESTIONS), "context": rng.choice(inbox.CONTEXTS),
        "priority": "urgent" if rng.random() < inbox.URGENT else "routine", **item["to"],
    })


INBOX_QUERIES = ("role=expert&limit=25", "role=expert&state=accepted&limit=25", "role=pool&limit=25",
                 "role=all&limit=25&offset=25", "q=Bernard&limit=25")
BOUNDARY = "benchapi7d3f2a91c4"


def _upload_body(item: dict, seed: Seed) -> bytes:
    head = "".join(f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'
                   for key, value in (("kind", "photo"), ("attached_to", "request")))
    head += (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="lesion.png"\r\n'
             "Content-Type: image/png\r\n\r\n")
    return head.encode() + seed.upload + f"\r\n--{BOUNDARY}--\r\n".encode()


def _by(rows) -> list[dict]:
    return [{"user": user, "case": case} for user, case in rows]


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("create_request", "write", "POST", "/api/cases", _new_request_items, _new_request_body,
             what="a draft with a new patient (INS) and the consent, in one call, by one of the requesters"),
    Scenario("submit", "write", "POST", "/api/cases/{case}/submit", lambda seed: _by(seed.drafts), once=True,
             what="sending a draft (to a network: every member notified, e-mails queued)"),
    Scenario("claim", "write", "POST", "/api/cases/{case}/claim", lambda seed: _by(seed.pool), once=True,
             what="a member takes a distinct submitted case from their network's pool (the work item)"),
    Scenario("post_message", "write", "POST", "/api/cases/{case}/messages", lambda seed: _by(seed.open_for_expert),
             lambda item, seed: _json({"body": MESSAGE}),
             what="the expert writes in the thread of an open case"),
    Scenario("upload_100kb", "write", "POST", "/api/cases/{case}/documents",
             lambda seed: _by(seed.open_for_requester)[:UPLOAD_ITEMS], _upload_body,
             content_type=f"multipart/form-data; boundary={BOUNDARY}",
             what="the requester attaches a 100 KB PNG photo (checked, re-encoded, encrypted, stored)"),
    Scenario("inbox_search", "read", "GET", "/api/cases?{query}",
             lambda seed: _spread([{"user": user, "query": q} for user, _pid in seed.experts for q in INBOX_QUERIES]),
             what="an expert's case list: " + "; ".join(INBOX_QUERIES)),
    Scenario("thread_read", "read", "GET", "/api/cases/{case}/messages", lambda seed: _by(seed.threads),
             what="the expert reads the thread of one of their cases (read marker moved)"),
    Scenario("fhir_task_search", "read", "GET", "/fhir/Task?owner=Practitioner/{pid}",
             lambda seed: [{"user": user, "pid": pid} for user, pid in seed.experts],
             what="FHIR search of an expert's work items (Bundle of Task)"),
    Scenario("fhir_service_request_read", "read", "GET", "/fhir/ServiceRequest/{case}",
             lambda seed: _by(seed.threads), what="FHIR read of one request"),
)


# --- Data ----------------------------------------------------------------------------------------------------

def prepare_data(config: Config) -> dict:
    """The inbox generator's data at BENCH_CASES, generated or reused from a kept database."""
    from teleexpertise.accounts.models import User

    meta = harness.read_meta(NAME)
    if meta and meta["signature"] == config.signature:
        harness.say(f"reusing kept data ({config.cases:,} cases, generated in {meta['generation']['seconds']} s)")
        return {**inbox.counts(), "generation": meta["generation"], "reused": True}
    if meta or User.objects.exists():  # other data, or a generation that was interrupted
        harness.say("kept data does not match this run: rebuilding the database")
        harness.recreate_database()
    harness.say(f"generating {config.cases:,} cases (the inbox benchmark's generator)")
    generation = inbox.generate(inbox.Config(cases=config.cases, requests=0, warmup=0, explain=False))
    harness.write_meta(NAME, {"signature": config.signature, "generation": generation})
    harness.say(f"generated in {generation['seconds']} s")
    return {**inbox.counts(), "generation": generation, "reused": False}


def _fresh_cases(seed: Seed, state: str, count: int) -> list[tuple]:
    """`count` new cases in `state` addressed to a network's pool, with their consent, for this run only (a kept
    database has those of earlier runs already used): [(user id, case id)] of who acts on each (the requester
    of a draft, a member of the network for a pool case)."""
    from teleexpertise.cases.models import Case
    from teleexpertise.patients.models import Consent, Patient

    world = inbox.World(rng=random.Random(secrets.randbits(64)), now=timezone.now())
    world.references = set(Case.objects.values_list("reference", flat=True))
    world.references = {ref.removeprefix("TE-").replace("-", "") for ref in world.references}
    patients = list(Patient.objects.values_list("pk", flat=True)[:20_000])
    requesters = {pid: user for user, pid in seed.requesters}
    cases, consents, actors = [], [], []
    for _ in range(count):
        network = world.rng.choice(list(seed.networks))
        requester = world.rng.choice(list(requesters))
        case = Case(id=world.uuid(), reference=world.reference(), patient_id=world.rng.choice(patients),
                    requester_id=requester, network_id=network, question=world.rng.choice(inbox.QUESTIONS),
                    context=world.rng.choice(inbox.CONTEXTS), state=state, priority=Case.Priority.ROUTINE,
                    mode=Case.Mode.ASYNCHRONOUS)
        inbox._set_timeline(case, world.rng, world.now)  # noqa: SLF001 - the generator's own timeline rules
        consents.append(inbox.consent_for(world, case))
        cases.append(case)
        member = world.rng.choice(seed.networks[network])[0]
        actors.append((requesters[requester] if state == Case.State.DRAFT else member, case.pk))
    with transaction.atomic():
        harness.bulk_insert(Consent, consents)
        harness.bulk_insert(Case, cases)
    return actors


def _tokens(user_ids) -> dict:
    """A personal token (every scope) for each user, inserted in bulk: the set-up, not what is measured."""
    from teleexpertise.api.models import SCOPES, ApiToken
    from teleexpertise.api.services import PERSONAL_PREFIX, hash_secret

    tokens, rows = {}, []
    for user_id in sorted(set(user_ids)):
        secret = PERSONAL_PREFIX + secrets.token_urlsafe(32)
        tokens[user_id] = secret
        rows.append(ApiToken(kind=ApiToken.Kind.PERSONAL, user_id=user_id, name="bench api", prefix=secret[:12],
                             token_hash=hash_secret(secret), scopes=sorted(SCOPES)))
    ApiToken.objects.bulk_create(rows, batch_size=1_000)
    return tokens


def png_of(size: int) -> bytes:
    """A photo-like PNG (a lesion on skin tones, sensor noise) of about `size` bytes, made once per run."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    width = 160
    while True:
        height = width * 3 // 4
        y, x = np.mgrid[0:height, 0:width]
        skin = np.stack([200 - y / 8, 150 - x / 12, 120 + 0 * x], axis=-1)
        skin[((x - width / 2) ** 2 + (y - height / 2) ** 2) < (height / 4) ** 2] = [90, 55, 40]
        pixels = np.clip(skin + rng.normal(0, 9, skin.shape), 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels, "RGB").save(buffer, "PNG")
        if buffer.tell() >= size:
            return buffer.getvalue()
        width += 8


def build_seed(config: Config) -> Seed:
    from django.db.models import Exists, OuterRef

    from teleexpertise.cases.models import Case
    from teleexpertise.directory.models import NetworkMembership, Professional
    from teleexpertise.messaging.models import Message
    from teleexpertise.patients.models import Patient

    S = Case.State
    seed = Seed()
    members = NetworkMembership.objects.filter(role=NetworkMembership.Role.MEMBER, professional__user__isnull=False,
                                               professional__profession__may_be_expert=True)
    for network, user, pid in (members
                               .values_list("network_id", "professional__user_id", "professional_id")
                               .order_by("network_id", "professional_id")):
        seed.networks.setdefault(network, []).append((user, pid))
    seed.experts = sorted({member for members in seed.networks.values() for member in members})
    requester_ids = Case.objects.values("requester_id")
    seed.requesters = list(Professional.objects.filter(pk__in=requester_ids, user__isnull=False)
                           .values_list("user_id", "pk").order_by("pk"))
    with_messages = Exists(Message.objects.filter(case=OuterRef("pk")))
    named = Case.objects.filter(expert__user__isnull=False).exclude(state=S.DRAFT)
    seed.threads = _spread(named.filter(with_messages).values_list("expert__user_id", "pk").order_by("pk"))
    seed.open_for_expert = _spread(
        named.filter(state__in=[S.TAKEN, S.ACCEPTED, S.AWAITING_INFORMATION]).values_list("expert__user_id", "pk")
        .order_by("pk"))
    seed.open_for_requester = _spread(
        Case.objects.filter(requester__user__isnull=False,
                            state__in=[S.SUBMITTED, S.TAKEN, S.ACCEPTED, S.AWAITING_INFORMATION])
        .values_list("requester__user_id", "pk").order_by("pk"))
    wanted = set(config.scenarios)
    once = config.once + ONCE_WARMUP + 2 * config.connections  # a few in flight when the count is reached
    if "submit" in wanted:
        seed.drafts = _fresh_cases(seed, S.DRAFT, once)
    if "claim" in wanted:
        seed.pool = _fresh_cases(seed, S.SUBMITTED, once)
    seed.patient_serial = 600_000 + Patient.objects.count()  # past the generator's (index < count / 3)
    seed.tokens = _tokens([user for user, _pid in seed.requesters + seed.experts])
    seed.upload = png_of(UPLOAD_BYTES)
    return seed


def catch_up_periodic_jobs() -> dict:
    """The consumer's periodic jobs run once here, before the server starts, on the generated data. A running
    platform has already sent the alerts of its overdue and unclaimed cases; on 10,000 cases generated at once,
    the first pass (thousands of alerts, notifications and e-mails) took ~10 s of the consumer's CPU and fell
    into whichever scenario ran at the first five-minute mark (inbox 196 → FHIR Task search 79 req/s). The jobs a
    scenario's own requests cause (a claim's e-mail) still run on the server's consumer and are counted."""
    from teleexpertise.cases.deadlines import deadline_alerts_send
    from teleexpertise.cases.oncall import oncall_escalate_due
    from teleexpertise.cases.services import follow_ups_request_due

    started = time.perf_counter()
    huey_log = logging.getLogger("huey")
    level = huey_log.level
    huey_log.setLevel(logging.WARNING)  # the e-mails run inline here: thousands of "Executing..." lines
    try:
        alerts = deadline_alerts_send()
        follow_ups = follow_ups_request_due()
        oncall_escalate_due()
    finally:
        huey_log.setLevel(level)
    return {"seconds": round(time.perf_counter() - started, 1), "alerts": alerts, "follow_ups": follow_ups}


# --- The client: wrk replaying formatted requests ------------------------------------------------------------

def _raw_request(scenario: Scenario, item: dict, seed: Seed, host: str) -> bytes:
    body = scenario.body(item, seed) if scenario.body else None
    lines = [f"{scenario.method} {scenario.url.format(**item)} HTTP/1.1", f"Host: {host}",
             f"Authorization: Bearer {seed.tokens[item['user']]}", "Accept: application/json"]
    if body is not None:
        lines.append(f"Content-Type: {scenario.content_type}")
    if scenario.method != "GET":
        lines.append(f"Content-Length: {len(body or b'')}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")


def write_requests(path: Path, scenario: Scenario, items: list[dict], seed: Seed, host: str) -> None:
    with open(path, "wb") as out:
        for item in items:
            raw = _raw_request(scenario, item, seed, host)
            out.write(b"%d\n" % len(raw) + raw)


def wrk(server: harness.LiveServer, requests_file: Path, *, connections: int, seconds: int, stop_after: int = 0):
    """One wrk run (one process, one thread, `connections` keep-alive connections); its figures and CPU time."""
    command = [shutil.which("wrk"), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
               "-s", str(WRK_SCRIPT), f"http://{server.host}:{server.port}", "--", str(requests_file), str(stop_after)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
    lines = []
    for raw in process.stdout:
        lines.append(raw.decode(errors="replace"))
        if raw.startswith(b"BENCH-STOPPED"):
            process.send_signal(signal.SIGINT)  # the count is reached: wrk stops sleeping and reports
    output = "".join(lines)
    _pid, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    line = next((x for x in output.splitlines() if x.startswith("BENCH-JSON ")), None)
    if process.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({process.returncode}):\n{output[-3000:]}")
    figures = json.loads(line.removeprefix("BENCH-JSON "))
    figures["client_cpu_seconds"] = round(usage.ru_utime + usage.ru_stime, 2)
    return figures


def _tree_cpu(pids: list[int]) -> float:
    return sum(harness.cpu_seconds(pid) for pid in pids)


_STORES = ("postgres", "redis-server")


def _store_cpu() -> dict:
    """{pid: CPU seconds} of every PostgreSQL and Redis process (those of other databases too: a busy neighbour
    shows here). The PostgreSQL server's own figure includes its backends that have ended (`_store_delta`)."""
    names = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                names[int(entry.name)] = ((entry / "comm").read_text().strip(),
                                          int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]))
            except (OSError, ValueError, IndexError):
                continue
    return {pid: harness.cpu_seconds(pid, reaped_children=name == "postgres" and names.get(parent, ("",))[0]
                                      != "postgres")
            for pid, (name, parent) in names.items() if name in _STORES}


def _store_delta(before: dict, after: dict) -> float:
    """The CPU the stores used between two `_store_cpu` readings. Backends started meanwhile count whole; one that
    ended (a server connection closed at DB_CONN_MAX_AGE) is counted in its server's reaped children, whole, so
    what it had used before is taken off."""
    return (sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
            - sum(cpu for pid, cpu in before.items() if pid not in after))


def wait_for_jobs(redis_url: str | None, limit: float = 900.0) -> float:
    """Wait until the job queue is empty; returns the seconds waited. The jobs a write scenario queues (the
    notification e-mails of 3,000 submits) run on the same two cores for minutes after it: measured at once, the
    next scenario was charged with them (a FHIR read measured at 7 ms of CPU alone took 17 ms after the writes)."""
    if not redis_url:
        return 0.0
    from huey import RedisHuey

    queue = RedisHuey("teleexpertise", url=redis_url).storage
    started = time.perf_counter()
    while queue.queue_size() and time.perf_counter() - started < limit:
        time.sleep(0.5)
    time.sleep(1.0)  # the last jobs taken off the queue finish running
    return round(time.perf_counter() - started, 1)


def measure(server, scenario: Scenario, seed: Seed, config: Config, work: Path) -> dict:
    items = scenario.items(seed)
    if not items:
        raise RuntimeError(f"{scenario.name}: nothing to run it on (no item in the data)")
    host = f"{server.host}:{server.port}"
    if scenario.once:
        warm, timed = items[:ONCE_WARMUP], items[ONCE_WARMUP:]
        count = min(config.once, len(timed) - 2 * config.connections)
        write_requests(work / "warm.req", scenario, warm, seed, host)
        write_requests(work / "timed.req", scenario, timed, seed, host)
        wrk(server, work / "warm.req", connections=config.connections, seconds=600,
            stop_after=len(warm) - 2 * config.connections)
        timed_run = {"seconds": 600, "stop_after": count}
    else:
        write_requests(work / "timed.req", scenario, items, seed, host)
        wrk(server, work / "timed.req", connections=config.connections, seconds=config.warmup_seconds)
        timed_run = {"seconds": config.seconds}
    tree = harness.process_tree(server.process.pid)
    workers = harness.gunicorn_workers(server.process.pid)
    server_cpu, store_before, workers_before = _tree_cpu(tree), _store_cpu(), [harness.cpu_seconds(w) for w in workers]
    with harness.cpu_window(server.process.pid) as machine, _profiler(config, server, work, scenario.name) as prof:
        figures = wrk(server, work / "timed.req", connections=config.connections, **timed_run)
    server_cpu = _tree_cpu(tree) - server_cpu
    store_cpu = _store_delta(store_before, _store_cpu())
    result = _result(scenario, items, figures, machine, server_cpu, store_cpu, prof)
    result["cpu"]["per_worker_cpu_seconds"] = [round(harness.cpu_seconds(w) - before, 2)
                                               for w, before in zip(workers, workers_before, strict=True)]
    return result


def _result(scenario, items, figures, machine, server_cpu, store_cpu, prof) -> dict:
    seconds = figures["duration_us"] / 1e6
    ok = sum(count for status, count in figures["statuses"].items() if status.startswith("2"))
    errors = figures["requests"] - ok + sum(figures["socket_errors"].values())
    rps = figures["requests"] / seconds if seconds else 0.0
    latency = {key: round(value / 1000, 2) for key, value in figures["latency_us"].items()}
    target_rps = TARGET_WRITE_RPS if scenario.kind == "write" else TARGET_READ_RPS
    met = errors == 0 and rps >= target_rps and latency["p95"] <= TARGET_P95_MS
    result = {
        "what": scenario.what, "kind": scenario.kind, "method": scenario.method, "url": scenario.url,
        "distinct_requests": len(items), "each_item_once": scenario.once,
        "requests": figures["requests"], "errors": errors, "statuses": figures["statuses"],
        "seconds": round(seconds, 2), "rps": round(rps, 1),
        "p50_ms": latency["p50"], "p90_ms": latency["p90"], "p95_ms": latency["p95"], "p99_ms": latency["p99"],
        "max_ms": latency["max"], "mean_ms": latency["mean"], "min_ms": latency["min"],
        "target": {"rps": target_rps, "p95_ms": TARGET_P95_MS, "errors": 0, "met": met},
        "cpu": {"server_cpu_seconds": round(server_cpu, 2), "client_cpu_seconds": figures["client_cpu_seconds"],
                "postgres_redis_cpu_seconds": round(store_cpu, 2),
                "server_cores": round(server_cpu / seconds, 2) if seconds else 0,
                "client_cores": round(figures["client_cpu_seconds"] / seconds, 2) if seconds else 0,
                "postgres_redis_cores": round(store_cpu / seconds, 2) if seconds else 0,
                "server_cpu_ms_per_request": round(server_cpu * 1000 / max(figures["requests"], 1), 2),
                "postgres_redis_cpu_ms_per_request": round(store_cpu * 1000 / max(figures["requests"], 1), 2),
                "machine_busy_cores": machine["machine_busy_cores"],
                "others_busy_cores": round(max(0.0, machine["machine_busy_cores"] - (
                    server_cpu + figures["client_cpu_seconds"] + store_cpu) / max(seconds, 1e-9)), 2)},
    }
    if figures["error_samples"]:
        result["error_samples"] = figures["error_samples"]
    if prof:
        result["profile"] = prof
    return result


def _line(name: str, r: dict) -> str:
    verdict = "ok" if r["target"]["met"] else "MISSED"
    return (f"{NAME}/{name:<26} {r['rps']:7.1f} req/s  p50 {r['p50_ms']:6.1f}  p95 {r['p95_ms']:6.1f}  "
            f"p99 {r['p99_ms']:6.1f}  max {r['max_ms']:7.1f} ms  errors {r['errors']}  "
            f"cpu/req server {r['cpu']['server_cpu_ms_per_request']:.1f} ms pg+redis "
            f"{r['cpu']['postgres_redis_cpu_ms_per_request']:.1f} ms  cores: server {r['cpu']['server_cores']:.2f} "
            f"client {r['cpu']['client_cores']:.2f} "
            f"pg+redis {r['cpu']['postgres_redis_cores']:.2f} others {r['cpu']['others_busy_cores']:.2f}  "
            f"(>= {r['target']['rps']} req/s, p95 <= {r['target']['p95_ms']:g} ms: {verdict})")


# --- Optional sampling profile of the workers ---------------------------------------------------------------

class _profiler:
    """With BENCH_API_PROFILE=1 and py-spy installed: py-spy samples every gunicorn worker during the timed run
    and writes its flame graph input (collapsed stacks) next to the results. Only the thread holding the GIL is
    sampled: without `--gil`, threads waiting for it after a socket call looked busy in that call."""

    def __init__(self, config: Config, server, work: Path, name: str):
        self.enabled = config.profile and shutil.which("py-spy") is not None
        self.server, self.name, self.processes, self.paths = server, name, [], []

    def __enter__(self):
        if not self.enabled:
            return None
        harness.RESULTS_DIR.mkdir(exist_ok=True)
        for pid in harness.gunicorn_workers(self.server.process.pid):
            path = harness.RESULTS_DIR / f"api-{self.name}-{pid}.collapsed"
            self.paths.append(path)
            self.processes.append(subprocess.Popen(  # noqa: S603
                [shutil.which("py-spy"), "record", "--pid", str(pid), "--format", "raw", "--rate", "200", "--gil",
                 "--nonblocking", "--output", str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        return [str(p.relative_to(harness.PROJECT_DIR)) for p in self.paths]

    def __exit__(self, *exc):
        for process in self.processes:
            process.send_signal(signal.SIGINT)
        for process in self.processes:
            process.wait(timeout=30)


# --- The server ---------------------------------------------------------------------------------------------

def _keep_log(server) -> Path:
    kept = harness.RESULTS_DIR / "api-server.log"
    harness.RESULTS_DIR.mkdir(exist_ok=True)
    shutil.copyfile(server.log_path, kept)
    return kept.relative_to(harness.PROJECT_DIR)


def _redis(url: str) -> dict | None:
    """The Redis server's version after emptying the benchmark's database number; None when unreachable."""
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=2)
        client.flushdb()
        return {"url": url, "version": client.info("server")["redis_version"]}
    except Exception:  # noqa: BLE001 - any failure means: measure without Redis, and say so
        return None


def server_env(work: Path, redis_url: str | None) -> dict:
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {
        "DJANGO_SETTINGS_MODULE": "teleexpertise.settings",
        "DEBUG": "0", "SECRET_KEY": secrets.token_urlsafe(50), "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": harness.database_url(), "DB_CONN_MAX_AGE": "60", "DB_PREPARED_STATEMENTS": "1",
        "DB_RANDOM_PAGE_COST": "1.1", "REDIS_URL": redis_url or "",
        "JOBS_IMMEDIATE": "0",  # this process's test settings turn it on; the server's consumer runs the jobs
        "DOCUMENT_MASTER_KEYS": f"bench-1:{key}", "DOCUMENT_ACTIVE_KEY_ID": "bench-1",
        "DOCUMENT_STORAGE": "local", "DOCUMENT_ROOT": str(work / "documents"),
        "TELEEXPERTISE_VAR_DIR": str(work / "var"), "TMPDIR": str(work / "tmp"),
        "XDG_RUNTIME_DIR": str(work / "run"),  # gunicorn's control socket, not in ~/.gunicorn/
        "API_RATE_LIMIT": BENCH_RATE_LIMIT,
        "CLAMAV_ADDRESS": "",
    }
    return {**env, **extra_server_env()}


def extra_server_env() -> dict:
    """BENCH_API_SERVER_ENV="NAME=value NAME=value": settings to try against the defaults above, back to back."""
    pairs = [pair.partition("=") for pair in os.environ.get("BENCH_API_SERVER_ENV", "").split()]
    return {name: value for name, _sep, value in pairs if name}


SHOWN_SETTINGS = ("DJANGO_SETTINGS_MODULE", "DEBUG", "ALLOWED_HOSTS", "DB_CONN_MAX_AGE", "DB_PREPARED_STATEMENTS",
                  "DB_RANDOM_PAGE_COST", "REDIS_URL", "JOBS_IMMEDIATE", "DOCUMENT_STORAGE", "API_RATE_LIMIT",
                  "CLAMAV_ADDRESS")


def _versions() -> dict:
    from importlib.metadata import version

    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0]  # noqa: S603,S607
    packages = ("django", "django-ninja", "gunicorn", "psycopg", "pydantic", "fhir.resources", "redis", "huey")
    return {"python": platform.python_version(), **{name: version(name) for name in packages},
            "wrk": wrk_version.strip(), "kernel": platform.release()}


def _cpu_model() -> str:
    match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
    return match.group(1) if match else platform.processor()


def _work_directory() -> Path:
    var = harness.PROJECT_DIR / "var"
    var.mkdir(exist_ok=True)
    for stale in var.glob("bench_api.*"):
        pid = stale.name.removeprefix("bench_api.")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(stale, ignore_errors=True)
    work = var / f"bench_api.{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    for sub in ("documents", "var/static", "tmp", "run"):
        (work / sub).mkdir(parents=True)
    return work


def _terminate(signum, frame):
    raise SystemExit(128 + signum)  # unwinds: the server is stopped, the files and the database dropped


def _check_client() -> None:
    if shutil.which("wrk") is None:
        raise RuntimeError("the api benchmark needs wrk (Debian 12: apt-get install wrk)")


# --- The benchmark -------------------------------------------------------------------------------------------

def run() -> dict:
    from django.conf import settings

    from teleexpertise.core.management.commands import serve

    _check_client()
    config = Config.from_env()
    unknown = sorted(set(config.scenarios) - {s.name for s in SCENARIOS})
    if unknown:
        raise RuntimeError(f"unknown scenario(s) in BENCH_API_SCENARIOS: {', '.join(unknown)}")
    data = prepare_data(config)
    started = time.perf_counter()
    seed = build_seed(config)
    harness.say(f"{NAME}: {len(seed.tokens)} tokens, {len(seed.drafts)} drafts and {len(seed.pool)} pool cases "
                f"made for this run in {time.perf_counter() - started:.1f} s")
    periodic = catch_up_periodic_jobs()
    harness.say(f"{NAME}: periodic jobs caught up on the generated data in {periodic['seconds']} s "
                f"({periodic['alerts']} deadline alerts, {periodic['follow_ups']} follow-ups)")
    redis_info = _redis(config.redis_url)
    if redis_info is None:
        harness.say(f"{NAME}: Redis unreachable at {config.redis_url}: cache and jobs on the database instead")
    work = _work_directory()
    env = server_env(work, redis_info and config.redis_url)
    workers = config.workers or serve.DEFAULT_WORKERS
    threads = config.threads or serve.DEFAULT_THREADS
    results, server = {}, None
    previous_sigterm = signal.signal(signal.SIGTERM, _terminate)
    connection.close()  # the server's processes take their own connections; this one is not needed meanwhile
    try:
        with harness.production_server(env, log_path=work / "server.log", workers=config.workers,
                                       threads=config.threads) as server:
            harness.say(f"{NAME}: manage.py serve, {workers} gunicorn worker(s) x {threads} threads, "
                        f"{config.connections} connections")
            for scenario in SCENARIOS:
                if scenario.name in config.scenarios:
                    drained = wait_for_jobs(redis_info and config.redis_url)
                    results[scenario.name] = measure(server, scenario, seed, config, work)
                    results[scenario.name]["jobs_drained_before_s"] = drained
                    harness.say(_line(scenario.name, results[scenario.name]))
    except BaseException:
        if server is not None:
            harness.say(f"server log (last lines; all of it in {_keep_log(server)}):\n{server.log_tail()}")
        raise
    else:
        if any(result["errors"] for result in results.values()):  # the tracebacks of the answers counted as errors
            harness.say(f"some answers were errors: the server's log is in {_keep_log(server)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        signal.signal(signal.SIGTERM, previous_sigterm)
        if redis_info:
            _redis(config.redis_url)  # empties the benchmark's Redis database again

    applies = connection.vendor == "postgresql" and config.cases >= TARGET_CASES
    return {
        "config": {
            "cases": config.cases, "seconds": config.seconds, "warmup_seconds": config.warmup_seconds,
            "once_requests": config.once, "once_warmup": ONCE_WARMUP,
            "client": {"program": "wrk", "processes": 1, "threads": 1, "connections": config.connections,
                       "keep_alive": True, "timeout_s": 30, "script": "bench/api.lua"},
            "server": {"command": f"manage.py serve --workers {workers} --threads {threads}",
                       "gunicorn": {"worker_class": "gthread", "workers": workers, "threads": threads,
                                    "config": "teleexpertise.gunicorn_conf (JSON access log)"},
                       "job_consumer": "huey (run_huey, started by serve), "
                                       f"{os.environ.get('JOBS_WORKERS', '2')} threads, nice {serve.DEFAULT_JOBS_NICE}",
                       "settings": {**{k: env[k] for k in SHOWN_SETTINGS}, **extra_server_env()},
                       "settings_note": "SECRET_KEY, DOCUMENT_MASTER_KEYS random per run; documents on local disk "
                                        "under var/bench_api.<pid>/ (removed); e-mails by the default console "
                                        "backend, in the consumer's log",
                       "cache": "redis" if redis_info else "database", "redis": redis_info},
            "machine": {"cpus": os.cpu_count(), "cpu_model": _cpu_model(), "versions": _versions()},
            "default_api_rate_limit": settings.API_RATE_LIMIT,
        },
        "data": data,
        "seeded_for_run": {"tokens": len(seed.tokens), "drafts": len(seed.drafts), "pool_cases": len(seed.pool),
                           "upload_bytes": len(seed.upload), "upload_type": "image/png"},
        "periodic_jobs_caught_up": periodic,
        "target": {"write_rps": TARGET_WRITE_RPS, "read_rps": TARGET_READ_RPS, "p95_ms": TARGET_P95_MS,
                   "vendor": "postgresql", "cases": TARGET_CASES, "applies": applies,
                   "met": all(r["target"]["met"] for r in results.values())},
        "scenarios": results,
    }
