"""Benchmark `inbox`: the expert's inbox, the pool queue and a case page over 100,000 generated cases.

Data: the fixed test cast (tests.factories.Cast) plus 20 networks of 10 experts, requesters, one patient
for ~3 cases, and per case a consent, ~3 messages, read markers, a signed report once answered, ~5 audit
events and the notifications the services send, inserted in batches (COPY on PostgreSQL). The cast's expert
is one of the 200 experts (a few hundred cases, about a hundred open) and the cast's colleague shares the
Dermatology pool (a few hundred pooled cases).

Knobs: BENCH_CASES (100000), BENCH_REQUESTS (100), BENCH_WARMUP (10), BENCH_EXPLAIN=1 (EXPLAIN ANALYZE the
slowest statements, PostgreSQL only).
"""

import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone
from stdnum import luhn

from bench import harness
from teleexpertise.accounts.models import User
from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Network, NetworkMembership, Organisation, Professional, Specialty
from teleexpertise.messaging.models import Message, Notification, ReadMarker
from teleexpertise.patients.models import Consent, Patient
from teleexpertise.reports.models import ReportVersion
from tests.factories import Cast

NAME = "inbox"
DATA_VERSION = 3  # bump when the generated data changes: kept databases (BENCH_KEEPDB=1) are then rebuilt
SEED = 1789
BATCH = 5_000
TARGET_P95_MS = 50.0
TARGET_CASES = 100_000
CASE_PAGES = 20  # the case page is measured over this many of the expert's open cases, in turn

S = Case.State
NETWORKS = 20
EXPERTS_PER_NETWORK = 10
CASES_PER_REQUESTER = 50
STATE_WEIGHTS = {S.CLOSED: 45, S.ANSWERED: 10, S.WITHDRAWN: 4, S.DECLINED: 4, S.ACCEPTED: 10, S.TAKEN: 5,
                 S.AWAITING_INFORMATION: 4, S.SUBMITTED: 15, S.DRAFT: 3}
VIA_NETWORK = 0.6  # share of cases sent to a network; the others go to a named expert
URGENT = 0.15
SYNCHRONOUS = 0.05
MESSAGES_PER_CASE = (0, 1, 2, 3, 3, 4, 5, 6)  # mean 3
STEPS = {  # the timestamps a case in each state has, in order
    S.DRAFT: (),
    S.SUBMITTED: ("submitted_at",),
    S.WITHDRAWN: ("submitted_at", "closed_at"),
    S.TAKEN: ("submitted_at", "taken_at"),
    S.DECLINED: ("submitted_at", "taken_at", "closed_at"),
    S.AWAITING_INFORMATION: ("submitted_at", "taken_at", "accepted_at"),
    S.ACCEPTED: ("submitted_at", "taken_at", "accepted_at"),
    S.ANSWERED: ("submitted_at", "taken_at", "accepted_at", "answered_at"),
    S.CLOSED: ("submitted_at", "taken_at", "accepted_at", "answered_at", "closed_at"),
}
CLOSING_ACTION = {S.WITHDRAWN: "case.withdraw", S.DECLINED: "case.decline", S.CLOSED: "case.close"}
STEP_ACTION = {"submitted_at": "case.submit", "taken_at": "case.claim", "accepted_at": "case.accept",
               "answered_at": "case.answer"}
EXPERT_STEPS = {"taken_at", "accepted_at", "answered_at"}
REQUESTER_NEWS = {"taken_at": "demande prise en charge", "accepted_at": "demande acceptée, délai de réponse fixé",
                  "answered_at": "compte-rendu disponible"}
UNREAD_WINDOW = timedelta(days=7)  # older notifications have been read (case opened or "mark all read")

SPECIALTIES = ("SM04", "SM16", "SM21", "SM24", "SM27", "SM30", "SM32", "SM34", "SM36", "SM38", "SM40", "SM41",
               "SM42", "SM48", "SM18", "SM58", "SM12", "SM08", "SM20")  # + the cast's dermatology (SM15)
CITIES = ("Lyon", "Marseille", "Bordeaux", "Lille", "Toulouse", "Nantes", "Strasbourg", "Rennes")
FIRST_NAMES = ("Alice", "Bruno", "Chloé", "David", "Emma", "François", "Gabrielle", "Hugo", "Inès", "Jules",
               "Karima", "Louis", "Manon", "Nicolas", "Océane", "Pierre", "Quentin", "Rose", "Samuel", "Théo")
LAST_NAMES = ("Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau", "Simon",
              "Laurent", "Lefebvre", "Michel", "Garcia", "Bertrand", "Roux", "Vincent", "Fournier", "Morel", "Girard")
DEPARTMENTS = ("75", "69", "13", "33", "59", "31", "44", "67", "35", "06")
QUESTIONS = ("Lésion pigmentée du dos évolutive depuis 3 mois : exérèse ?",
             "Dyspnée d'effort chez un patient de 72 ans, ECG joint : bilan à prévoir ?",
             "HbA1c à 9,2 % malgré la bithérapie : quelle intensification ?",
             "Éruption prurigineuse généralisée après introduction d'un traitement : arrêt ?",
             "Céphalées matinales récentes chez une patiente de 45 ans : imagerie urgente ?")
CONTEXTS = ("", "Antécédents : HTA, dyslipidémie. Photos jointes.",
            "Traitement en cours : metformine 1 g x 2, sitagliptine.",
            "Pas d'allergie connue. Patient autonome, vit seul.")
BODIES = ("Pouvez-vous préciser la date d'apparition ?", "Photo complémentaire ajoutée, merci.",
          "Je vous propose de le revoir en consultation.", "Bien reçu, je regarde cela aujourd'hui.",
          "Le patient signale une amélioration depuis l'arrêt du traitement.")
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@dataclass(frozen=True)
class Config:
    cases: int
    requests: int
    warmup: int
    explain: bool

    @classmethod
    def from_env(cls) -> "Config":
        return cls(cases=harness.env_int("BENCH_CASES", TARGET_CASES), requests=harness.env_int("BENCH_REQUESTS", 100),
                   warmup=harness.env_int("BENCH_WARMUP", 10), explain=harness.env_flag("BENCH_EXPLAIN"))

    @property
    def signature(self) -> dict:
        return {"version": DATA_VERSION, "seed": SEED, "cases": self.cases}


@dataclass
class World:
    """What case generation draws from: ids of the directory and patients, and a seeded random source."""

    rng: random.Random
    now: datetime
    networks: list = field(default_factory=list)  # [(network_id, [expert_id, ...])]
    members_of: dict = field(default_factory=dict)  # network_id -> [expert_id, ...]
    experts: list = field(default_factory=list)
    requesters: list = field(default_factory=list)
    user_of: dict = field(default_factory=dict)  # professional id -> user id
    label_of: dict = field(default_factory=dict)  # user id -> audit actor label
    patients: list = field(default_factory=list)
    references: set = field(default_factory=set)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def reference(self) -> str:
        while True:
            chars = "".join(self.rng.choices(REFERENCE_ALPHABET, k=10))
            if chars not in self.references:
                self.references.add(chars)
                return f"TE-{chars[:5]}-{chars[5:]}"


# --- Identifiers -----------------------------------------------------------------------------------------

def luhn_id(prefix: str, length: int, serial: int) -> str:
    """An identifier with a Luhn check digit; serials from 500,000 up stay clear of tests.factories'."""
    body = prefix + str(serial).zfill(length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


def nir(index: int, sex: str, birth: date, department: str) -> str:
    """A valid NIR, unique for index < 998,001 (commune and order number derive from it)."""
    commune, order = 1 + (index // 999) % 999, 1 + index % 999
    first13 = f"{'1' if sex == 'M' else '2'}{birth.year % 100:02d}{birth.month:02d}{department}{commune:03d}{order:03d}"
    return f"{first13}{97 - int(first13) % 97:02d}"


# --- Directory -------------------------------------------------------------------------------------------

def _people(world: World, specs: list[dict]) -> list[str]:
    """Users and their professional records, in bulk; returns the professional ids."""
    users = User.objects.bulk_create([
        User(email=s["email"], first_name=s["first"], last_name=s["last"], password="!bench")  # unusable
        for s in specs])
    pros = Professional.objects.bulk_create([
        Professional(id=world.uuid(), user_id=u.pk, first_name=s["first"], last_name=s["last"],
                     profession_id=s["profession"], specialty_id=s["specialty"], organisation_id=s.get("organisation"),
                     title="Dr" if s["profession"] == "10" else "", rpps=s.get("rpps"), adeli=s.get("adeli"),
                     mssante_email=s["email"].replace("@bench.test", "@bench.mssante.fr"))
        for s, u in zip(specs, users, strict=True)])
    for s, u, p in zip(specs, users, pros, strict=True):
        world.user_of[p.pk] = u.pk
        world.label_of[u.pk] = f"{s['first']} {s['last']} <{s['email']}>"
    return [p.pk for p in pros]


def _name(world: World) -> tuple[str, str]:
    return world.rng.choice(FIRST_NAMES), world.rng.choice(LAST_NAMES)


def _expert_specs(world: World, network: Network, count: int, serial: int) -> list[dict]:
    specs = []
    for i in range(serial, serial + count):
        first, last = _name(world)
        specs.append({"email": f"expert{i}@bench.test", "first": first, "last": last, "profession": "10",
                      "specialty": network.specialty_id, "organisation": network.organisation_id,
                      "rpps": luhn_id("10", 11, 50_000_000 + i)})
    return specs


def _requester_specs(world: World, count: int) -> list[dict]:
    specs = []
    for i in range(count):
        first, last = _name(world)
        spec = {"email": f"requester{i}@bench.test", "first": first, "last": last}
        if world.rng.random() < 0.85:
            spec.update(profession="10", specialty="SM54", rpps=luhn_id("10", 11, 60_000_000 + i))
        else:
            spec.update(profession="60", specialty=None, adeli=luhn_id("75", 9, 500_000 + i))
        specs.append(spec)
    return specs


def _networks(world: World, cast: Cast) -> list[Network]:
    organisations = Organisation.objects.bulk_create([
        Organisation(name=f"CHU de {city}", city=city, finess=luhn_id("33", 9, 500_000 + i))
        for i, city in enumerate(CITIES)])
    labels = Specialty.objects.in_bulk(SPECIALTIES)
    networks = Network.objects.bulk_create([
        Network(id=world.uuid(), name=labels[code].label, specialty_id=code,
                organisation_id=organisations[i % len(organisations)].pk)
        for i, code in enumerate(SPECIALTIES[:NETWORKS - 1])])
    return [cast.network, *networks]


def build_directory(world: World, cast: Cast, cases: int) -> None:
    serial = 0
    for network in _networks(world, cast):
        members = [cast.expert.pk, cast.colleague.pk] if network.pk == cast.network.pk else []
        new = _people(world, _expert_specs(world, network, EXPERTS_PER_NETWORK - len(members), serial))
        serial += len(new)
        NetworkMembership.objects.bulk_create([NetworkMembership(network_id=network.pk, professional_id=pid)
                                               for pid in new])
        world.networks.append((network.pk, members + new))
        world.members_of[network.pk] = members + new
        world.experts.extend(members + new)
    for pro in (cast.expert, cast.colleague, cast.requester):
        world.user_of[pro.pk] = pro.user_id
        world.label_of[pro.user_id] = f"{pro.user.get_full_name()} <{pro.user.email}>"
    requesters = _requester_specs(world, max(20, cases // CASES_PER_REQUESTER))
    world.requesters = [cast.requester.pk, *_people(world, requesters)]


# --- Patients --------------------------------------------------------------------------------------------

def _patient(world: World, index: int) -> Patient:
    rng = world.rng
    sex = rng.choice("MF")
    birth = date(rng.randint(1935, 2020), rng.randint(1, 12), rng.randint(1, 28))
    department = rng.choice(DEPARTMENTS)
    ins = nir(index, sex, birth, department)
    first = rng.choice(FIRST_NAMES)
    return Patient(id=world.uuid(), ins_nir=ins, birth_name=rng.choice(LAST_NAMES).upper(), first_names=first,
                   sex=sex, birth_date=birth, birth_place_code=ins[5:10],
                   identity_status=rng.choice((Patient.IdentityStatus.VALIDATED, Patient.IdentityStatus.QUALIFIED)))


def build_patients(world: World, count: int) -> None:
    for start in range(0, count, BATCH):
        batch = [_patient(world, i) for i in range(start, min(count, start + BATCH))]
        harness.bulk_insert(Patient, batch)
        world.patients.extend(p.pk for p in batch)


# --- Cases and what hangs on them ------------------------------------------------------------------------

def _recipient(world: World, state: str) -> tuple:
    """(network_id, expert_id): sent to a network (pooled until claimed) or straight to an expert."""
    rng = world.rng
    if state != S.TAKEN and rng.random() >= VIA_NETWORK:  # only a pooled case is ever "taken"
        return None, rng.choice(world.experts)
    network_id, members = rng.choice(world.networks)
    pooled = state in (S.SUBMITTED, S.DRAFT) or (state == S.WITHDRAWN and rng.random() < 0.5)
    return network_id, None if pooled else rng.choice(members)


def _set_timeline(case: Case, rng: random.Random, now: datetime) -> None:
    recent = case.state in (*Case.OPEN_STATES, S.DRAFT)
    case.created_at = now - timedelta(days=rng.uniform(0, 21 if recent else 730))
    life = min(now - case.created_at, timedelta(days=rng.uniform(0.5, 12)))
    steps = [s for s in STEPS[case.state] if s != "taken_at" or case.network_id]
    if case.state == S.AWAITING_INFORMATION and rng.random() < 0.4:
        steps.remove("accepted_at")  # information asked before accepting
    for step, fraction in zip(steps, sorted(rng.random() for _ in steps), strict=True):
        setattr(case, step, case.created_at + life * fraction)
    if case.accepted_at:
        case.taken_at = case.taken_at or case.accepted_at
        case.due_at = case.accepted_at + timedelta(days=rng.uniform(1, 7))
        case.patient_informed_of_deadline = True
    case.updated_at = max([case.created_at + timedelta(minutes=5)] + [getattr(case, s) for s in steps])


def _set_state_details(case: Case, rng: random.Random) -> None:
    if case.state == S.AWAITING_INFORMATION:
        case.resume_state = S.ACCEPTED if case.accepted_at else (S.TAKEN if case.taken_at else S.SUBMITTED)
        if case.accepted_at:
            case.deadline_remaining = timedelta(hours=rng.uniform(6, 120))
    elif case.state == S.DECLINED:
        case.decline_reason = "Hors de mon champ de compétence."
    elif case.state == S.WITHDRAWN:
        case.withdraw_reason = "Patient vu en consultation entre-temps."


def new_case(world: World) -> Case:
    rng = world.rng
    state = rng.choices(list(STATE_WEIGHTS), weights=list(STATE_WEIGHTS.values()))[0]
    network_id, expert_id = _recipient(world, state)
    case = Case(id=world.uuid(), reference=world.reference(), patient_id=rng.choice(world.patients),
                requester_id=rng.choice(world.requesters), expert_id=expert_id, network_id=network_id,
                question=rng.choice(QUESTIONS), context=rng.choice(CONTEXTS), state=state,
                priority=Case.Priority.URGENT if rng.random() < URGENT else Case.Priority.ROUTINE,
                mode=Case.Mode.SYNCHRONOUS if rng.random() < SYNCHRONOUS else Case.Mode.ASYNCHRONOUS)
    _set_timeline(case, rng, world.now)
    _set_state_details(case, rng)
    return case


def consent_for(world: World, case: Case) -> Consent:
    consent = Consent(id=world.uuid(), patient_id=case.patient_id, status=Consent.Status.GIVEN,
                      given_by=Consent.GivenBy.PATIENT, informed_by_id=case.requester_id,
                      informed_at=case.created_at, explained_interest=True, explained_practicalities=True,
                      explained_right_to_refuse=True)
    case.consent_id = consent.pk
    return consent


def messages_for(world: World, case: Case) -> list[Message]:
    if case.state == S.DRAFT:
        return []
    rng = world.rng
    authors = [case.requester_id, case.expert_id] if case.expert_id else [case.requester_id]
    span = case.updated_at - case.submitted_at
    return [Message(id=world.uuid(), case_id=case.pk, author_id=authors[i % len(authors)], body=rng.choice(BODIES),
                    created_at=case.submitted_at + span * rng.random())
            for i in range(rng.choice(MESSAGES_PER_CASE))]


def read_markers_for(world: World, case: Case, messages: list[Message]) -> list[ReadMarker]:
    """Most participants have read the thread to its end; some are behind (unread counts in the inbox)."""
    if case.state == S.DRAFT:
        return []
    rng = world.rng
    last = max((m.created_at for m in messages), default=case.updated_at)
    participants = [pid for pid in (case.requester_id, case.expert_id) if pid]
    return [ReadMarker(case_id=case.pk, user_id=world.user_of[pid],
                       read_at=last if rng.random() < 0.75 else last - timedelta(hours=rng.uniform(1, 48)))
            for pid in participants if rng.random() < 0.8]


def report_for(world: World, case: Case) -> list[ReportVersion]:
    if case.state not in (S.ANSWERED, S.CLOSED):
        return []
    return [ReportVersion(id=world.uuid(), case_id=case.pk, number=1, status=ReportVersion.Status.SIGNED,
                          author_id=case.expert_id, act_at=case.answered_at, signed_at=case.answered_at,
                          answer="Aspect bénin, pas d'argument pour une lésion maligne.",
                          conclusion="Surveillance clinique ; nouvelle demande si évolution.")]


def _notification(world: World, case: Case, pid, verb: str, at: datetime) -> Notification:
    rng = world.rng
    unread = world.now - at < UNREAD_WINDOW and rng.random() < 0.5
    read_at = None if unread else min(world.now, at + timedelta(hours=rng.uniform(0.1, 48)))
    return Notification(id=world.uuid(), recipient_id=world.user_of[pid], case_id=case.pk, verb=verb, created_at=at,
                        read_at=read_at)


def notifications_for(world: World, case: Case) -> list[Notification]:
    """As the services send them: the new case to the expert or to every pool member, then news to each side."""
    if case.state == S.DRAFT:
        return []
    if case.network_id:
        recipients, verb = world.members_of[case.network_id], "nouvelle demande dans la file partagée"
    else:
        recipients, verb = [case.expert_id], "nouvelle demande"
    out = [_notification(world, case, pid, verb, case.submitted_at) for pid in recipients]
    for step, news in REQUESTER_NEWS.items():
        if getattr(case, step) and (step != "taken_at" or case.network_id):
            out.append(_notification(world, case, case.requester_id, news, getattr(case, step)))
    if case.state == S.DECLINED:
        out.append(_notification(world, case, case.requester_id, "téléexpertise non réalisable", case.closed_at))
    elif case.state == S.WITHDRAWN and case.expert_id:
        out.append(_notification(world, case, case.expert_id, "demande retirée par le requérant", case.closed_at))
    return out


def _event(world: World, case: Case, action: str, kind: str, at: datetime, pid) -> AuditEvent:
    user_id = world.user_of[pid]
    rng = world.rng
    return AuditEvent(at=at, actor_id=user_id, actor_label=world.label_of[user_id], action=action, kind=kind,
                      object_type="cases.case", object_id=str(case.pk), case_id=case.pk, patient_id=case.patient_id,
                      ip=f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
                      summary=case.reference)


def audit_for(world: World, case: Case) -> list[AuditEvent]:
    """The creation, one event per step of the workflow, and 0 to 2 reads: ~5 a case on average."""
    K = AuditEvent.Kind
    events = [_event(world, case, "case.create", K.CREATE, case.created_at, case.requester_id)]
    for step in STEPS[case.state]:
        at = getattr(case, step)
        if at is None or (step == "taken_at" and not case.network_id):
            continue
        action = CLOSING_ACTION[case.state] if step == "closed_at" else STEP_ACTION[step]
        by = case.expert_id if step in EXPERT_STEPS or case.state == S.DECLINED else case.requester_id
        events.append(_event(world, case, action, K.EXECUTE, at, by))
    readers = [pid for pid in (case.requester_id, case.expert_id) if pid]
    span = case.updated_at - case.created_at
    for _ in range(world.rng.randint(0, 2)):
        at = case.created_at + span * world.rng.random()
        events.append(_event(world, case, "case.view", K.READ, at, world.rng.choice(readers)))
    return events


def build_cases(world: World, count: int) -> None:
    started = time.perf_counter()
    for start in range(0, count, BATCH):
        cases = [new_case(world) for _ in range(min(BATCH, count - start))]
        consents = [consent_for(world, case) for case in cases]
        messages = {case.pk: messages_for(world, case) for case in cases}
        rows = {
            Message: [m for case in cases for m in messages[case.pk]],
            ReadMarker: [r for case in cases for r in read_markers_for(world, case, messages[case.pk])],
            ReportVersion: [v for case in cases for v in report_for(world, case)],
            AuditEvent: [e for case in cases for e in audit_for(world, case)],
            Notification: [n for case in cases for n in notifications_for(world, case)],
        }
        with transaction.atomic():
            harness.bulk_insert(Consent, consents)
            harness.bulk_insert(Case, cases)
            for model, objs in rows.items():
                harness.bulk_insert(model, objs)
        done = start + len(cases)
        if done % (BATCH * 4) == 0 or done == count:
            harness.say(f"  cases {done:,}/{count:,} ({time.perf_counter() - started:.1f} s)")


# --- Data: generate or reuse -----------------------------------------------------------------------------

def generate(config: Config) -> dict:
    timings = {}
    started = time.perf_counter()
    world = World(rng=random.Random(SEED), now=timezone.now())
    cast = Cast()
    build_directory(world, cast, config.cases)
    build_patients(world, max(1, config.cases // 3))
    timings["directory_and_patients_seconds"] = round(time.perf_counter() - started, 1)
    build_cases(world, config.cases)
    timings["insert_seconds"] = round(time.perf_counter() - started, 1)
    harness.analyze()
    timings["seconds"] = round(time.perf_counter() - started, 1)
    timings["analyze_seconds"] = round(timings["seconds"] - timings["insert_seconds"], 1)
    return timings


def counts() -> dict:
    models = {"cases": Case, "patients": Patient, "consents": Consent, "messages": Message,
              "read_markers": ReadMarker, "report_versions": ReportVersion, "audit_events": AuditEvent,
              "notifications": Notification,
              "professionals": Professional, "networks": Network}
    return {key: model.objects.count() for key, model in models.items()}


def prepare_data(config: Config) -> dict:
    """Generate the data, or reuse what a kept database (BENCH_KEEPDB=1) holds for the same signature."""
    meta = harness.read_meta(NAME)
    if meta and meta["signature"] == config.signature:
        harness.say(f"reusing kept data ({config.cases:,} cases, generated in {meta['generation']['seconds']} s)")
        return {**counts(), "generation": meta["generation"], "reused": True}
    if meta or Case.objects.exists():
        harness.say("kept data does not match this run: rebuilding the database")
        harness.recreate_database()
    harness.say(f"generating {config.cases:,} cases in batches of {BATCH:,}")
    generation = generate(config)
    harness.write_meta(NAME, {"signature": config.signature, "generation": generation})
    harness.say(f"generated in {generation['seconds']} s (of which ANALYZE {generation['analyze_seconds']} s)")
    return {**counts(), "generation": generation, "reused": False}


# --- Measurement -----------------------------------------------------------------------------------------

def _population(expert: User, member: User) -> dict:
    pid = expert.professional.pk
    mine = Case.objects.filter(expert_id=pid).exclude(state=S.DRAFT)
    networks = NetworkMembership.objects.filter(professional__user=member).values("network_id")
    pooled = Case.objects.filter(network_id__in=networks, expert__isnull=True, state=S.SUBMITTED)
    return {"expert_cases": mine.count(), "expert_open_cases": mine.filter(state__in=Case.OPEN_STATES).count(),
            "pool_cases": pooled.count()}


def _case_urls(expert: User) -> list[str]:
    """Up to CASE_PAGES of the expert's open cases (any of theirs on a small data set)."""
    mine = Case.objects.filter(expert_id=expert.professional.pk).exclude(state=S.DRAFT).order_by("id")
    ids = list(mine.filter(state__in=Case.OPEN_STATES).values_list("id", flat=True)[:CASE_PAGES])
    ids = ids or list(mine.values_list("id", flat=True)[:CASE_PAGES])
    if not ids:
        raise RuntimeError("the measured expert has no case: generate more cases (BENCH_CASES)")
    return [f"/cases/{pk}/" for pk in ids]


def _explain(stats: dict) -> None:
    for row in stats["slowest_statements"]:
        row["explain"] = harness.explain(row["sql"], row["params"])


def measure_pages(config: Config) -> dict:
    expert = User.objects.select_related("professional").get(email="expert@test.fr")
    member = User.objects.get(email="colleague@test.fr")
    pages = {
        "todo": (expert, ["/cases/?box=todo"]),
        "pool": (member, ["/cases/?box=pool"]),
        "case": (expert, _case_urls(expert)),
    }
    results = {}
    for page, (user, urls) in pages.items():
        samples = harness.measure(harness.logged_in_client(user), urls, warmup=config.warmup,
                                  requests=config.requests)
        stats = {"url": urls[0] if len(urls) == 1 else "/cases/<uuid>/", "distinct_urls": len(urls),
                 "user": user.email, **harness.summarise(samples, target_ms=TARGET_P95_MS)}
        if config.explain:
            _explain(stats)
        results[page] = stats
        harness.say(harness.summary_line(NAME, page, stats))
    return {"population": _population(expert, member), "pages": results}


def run() -> dict:
    config = Config.from_env()
    data = prepare_data(config)
    measured = measure_pages(config)
    met = all(stats["met"] for stats in measured["pages"].values())
    applies = connection.vendor == "postgresql" and config.cases >= TARGET_CASES
    return {
        "config": {"cases": config.cases, "requests": config.requests, "warmup": config.warmup,
                   "batch": BATCH, "seed": SEED, "data_version": DATA_VERSION},
        "data": data,
        "population": measured["population"],
        "target": {"p95_ms": TARGET_P95_MS, "vendor": "postgresql", "cases": TARGET_CASES, "applies": applies,
                   "met": met},
        "pages": measured["pages"],
    }
