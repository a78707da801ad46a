"""The only reads of cases and patients for a user. What is not theirs does not exist for them (404)."""

import uuid
from datetime import UTC, datetime

from django.db.models import Case as SqlCase
from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    Exists,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Upper
from django.http import Http404
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.models import Case, CaseAlert, FollowUp
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.core.paging import page_total
from teleexpertise.directory.models import NetworkMembership, Professional
from teleexpertise.directory.selectors import network_roles
from teleexpertise.messaging.models import Message, ReadMarker
from teleexpertise.patients.models import Patient

S = Case.State
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _pooled_for(professional_id, networks=None) -> Q:
    """The pool of the professional's networks. `networks`: their ids, read beforehand for lists: PostgreSQL then
    finds the pool's cases by the case_pool_queue index; with `IN (subquery)` as an arm of the visibility OR, it
    read every unassigned case (7,000 rows at 10,000 cases, bench/README.md `api`)."""
    if networks is None:
        networks = NetworkMembership.objects.filter(professional_id=professional_id).values("network_id")
    return Q(network_id__in=networks, expert__isnull=True, state=S.SUBMITTED)


def _network_ids(user) -> list:
    return list(network_roles(getattr(user, "professional", None)))


def cases_visible_to(user):
    """Requester: all theirs; expert: what is addressed or assigned to them; network: its pool; admin: all."""
    sight = sight_of(user)
    return Case.objects.none() if sight is None else cases_in_sight(*sight)


def sight_of(user) -> tuple[bool, object, list] | None:
    """What decides which cases the user sees: (staff, professional id, network ids); None: no case at all."""
    if not user.is_authenticated:
        return None
    if user.is_staff:
        return True, None, []
    pid = _professional_id(user)
    return None if pid is None else (False, pid, _network_ids(user))


def cases_in_sight(staff: bool, pid, networks: list):
    """`cases_visible_to` from `sight_of`'s answer; compiled queries call it with stand-in values."""
    return Case.objects.all() if staff else Case.objects.filter(_visible_to_professional(pid, networks=networks))


def _professional_id(user):
    return getattr(getattr(user, "professional", None), "pk", None)


def _visible_to_professional(pid, networks=None) -> Q:
    return Q(requester_id=pid) | (Q(expert_id=pid) & ~Q(state=S.DRAFT)) | _pooled_for(pid, networks)


def organisations_seeing(case: Case):
    """Ids of the organisations one of whose professionals (with an active account) sees `case` through
    `cases_visible_to` — the same three clauses; a staff account's sight of everything does not count, so an
    organisation never sees more because one of its professionals is also a platform administrator."""
    seeing = Q(pk=case.requester_id)
    if case.expert_id and case.state != S.DRAFT:
        seeing |= Q(pk=case.expert_id)
    if case.is_pooled:
        seeing |= Q(memberships__network_id=case.network_id)
    return (Professional.objects.filter(seeing, user__is_active=True, organisation__isnull=False)
            .values("organisation_id").distinct())


# What the case page (and the API's case answer) shows of a case's people, organisations and forms.
CASE_PAGE_RELATED = ("patient__treating_doctor", "consent__informed_by", "requester__profession",
                     "requester__specialty", "requester__organisation", "expert__profession", "expert__specialty",
                     "expert__organisation", "network__organisation", "network__specialty", "request_form")


def case_for_user(user, pk, *, with_closing: bool = False, related: tuple[str, ...] = CASE_PAGE_RELATED) -> Case:
    """The case if this user may see it, else 404; `with_closing` joins its closing survey and follow-up.

    `related`: the rows joined to it, the case page's by default; a caller that reads less names what it reads
    (`()` for the case alone): building and planning the thirteen-table join costs more than running it.
    """
    pk = _uuid_or_404(pk)
    joined = (*related, *(("closing_survey", "follow_up") if with_closing else ()))
    if not user.is_authenticated:
        raise Http404
    if user.is_staff:
        case = _case_query(joined, staff=True).first(pk=pk)
    else:
        pid = _professional_id(user)
        case = _case_query(joined, staff=False).first(pk=pk, pid=pid) if pid is not None else None
    if case is None:
        raise Http404
    return case


def _uuid_or_404(pk) -> uuid.UUID:
    if isinstance(pk, uuid.UUID):
        return pk
    try:
        return uuid.UUID(str(pk))
    except ValueError:
        raise Http404 from None


_case_queries: dict[tuple, CompiledQuery] = {}


def _case_query(joined: tuple[str, ...], *, staff: bool) -> CompiledQuery:
    """One compiled query per set of joined rows, for staff (every case) or for a professional (theirs)."""
    key = (joined, staff)
    if key not in _case_queries:
        # No .first()/.get(): on PostgreSQL their LIMIT makes planning this many-table join take ~15 ms instead
        # of ~4 ms (execution is 0.3 ms; measured by bench/inbox). pk is unique, so at most one row comes back.
        def build(pk, pid=None):
            queryset = Case.objects.filter(pk=pk) if staff else Case.objects.filter(_visible_to_professional(pid),
                                                                                       pk=pk)
            queryset = queryset.order_by()
            return queryset.select_related(*joined) if joined else queryset  # no name would follow every key

        _case_queries[key] = CompiledQuery(build, pk=uuid.UUID) if staff else CompiledQuery(build, pk=uuid.UUID,
                                                                                             pid=uuid.UUID)
    return _case_queries[key]


def patient_for_user(user, pk) -> Patient:
    if not cases_visible_to(user).filter(patient_id=pk).exists() and not user.is_staff:
        raise Http404
    patient = Patient.objects.select_related("treating_doctor").filter(pk=pk).first()
    if patient is None:
        raise Http404
    return patient


def patient_cases_for_user(user, patient):
    return _with_listing(cases_visible_to(user).filter(patient=patient), user).order_by("-updated_at")


# --- Inboxes: a fixed number of queries whatever the number of cases or messages -----------------------

def _with_listing(queryset, user):
    return _with_unread(queryset.select_related("patient", "requester", "expert", "network").prefetch_related("tags"),
                        user)


def _with_unread(queryset, user):
    """`unread`: the messages of others since the user's read marker. `user`: the user or their id."""
    read_at = ReadMarker.objects.filter(case=OuterRef("case"), user=user).values("read_at")[:1]  # per message row
    unread = (Message.objects.filter(case=OuterRef("pk"))
              .exclude(author__user=user)
              .filter(created_at__gt=Coalesce(Subquery(read_at), Value(_EPOCH, output_field=DateTimeField())))
              .order_by().values("case").annotate(n=Count("pk")).values("n"))
    return queryset.annotate(unread=Coalesce(Subquery(unread, output_field=IntegerField()), 0))


def _urgency_order():
    now = timezone.now()
    overdue_first = SqlCase(When(state=S.ACCEPTED, due_at__lt=now, then=Value(0)), default=Value(1),
                            output_field=IntegerField())
    return [overdue_first, _urgent_first()]


def inbox_requests(user, *, state: str = ""):
    pid = getattr(getattr(user, "professional", None), "pk", None)
    qs = Case.objects.filter(requester_id=pid)
    if state:
        qs = qs.filter(state=state)
    # In the same query: whether the follow-up of a closed case waits for the requester's answer.
    waiting = FollowUp.objects.filter(case=OuterRef("pk"), answered_at__isnull=True)
    return _with_listing(qs, user).annotate(follow_up_waiting=Exists(waiting)).order_by("-updated_at")


def inbox_expert(user, *, include_closed: bool = False):
    pid = getattr(getattr(user, "professional", None), "pk", None)
    qs = Case.objects.filter(expert_id=pid).exclude(state=S.DRAFT)
    if not include_closed:
        qs = qs.filter(state__in=Case.OPEN_STATES)
    return _with_listing(qs, user).order_by(*_urgency_order(), "due_at", "submitted_at")


def _urgent_first():
    return SqlCase(When(priority=Case.Priority.URGENT, then=Value(0)), default=Value(1), output_field=IntegerField())


def _pool_order() -> tuple:
    return _urgent_first(), "submitted_at", "pk"  # urgent first, then by escalation deadline; pages stay stable


LIST_ORDER = ("-updated_at", "pk")  # the newest change first


def pool_queue(user, *, tag: str = ""):
    """The pool: urgent first, then by escalation deadline (submitted_at + the priority's delay, so oldest first).

    Rows say whether the dispatchers were alerted for the case (unclaimed too long, or on call unacknowledged).
    """
    pid = getattr(getattr(user, "professional", None), "pk", None)
    qs = Case.objects.filter(_pooled_for(pid, _network_ids(user)))
    if tag:
        qs = qs.filter(tags__label=tag)
    escalated = CaseAlert.objects.filter(case=OuterRef("pk"), kind__in=[CaseAlert.Kind.POOL_ESCALATION,
                                                                        CaseAlert.Kind.ONCALL_DISPATCHERS])
    return _with_listing(qs, user).annotate(escalated=Exists(escalated)).order_by(*_pool_order())


def network_load(user):
    """Members of the user's networks with their open cases (any network): who can take one more."""
    pid = getattr(getattr(user, "professional", None), "pk", None)
    mine = NetworkMembership.objects.filter(professional_id=pid).values("network_id")
    return (NetworkMembership.objects.filter(network_id__in=mine, professional__profession__may_be_expert=True)
            .select_related("network", "professional")
            .annotate(open_cases=Count("professional__expert_cases",
                                       filter=Q(professional__expert_cases__state__in=Case.OPEN_STATES)))
            .order_by("network__name", "open_cases", "professional__last_name"))


def search_cases(user, query: str):
    return _with_listing(search_in(cases_visible_to(user), query), user).order_by("-updated_at")


def search_in(queryset, query: str):
    """The cases of `queryset` whose reference (TE-…) is `query`, or whose patient's names or reference hold it."""
    query = query.strip()
    return _matching(queryset, query, by_reference=_is_reference(query))


def _is_reference(query: str) -> bool:
    return query.upper().startswith("TE-")


def _matching(queryset, query: str, *, by_reference: bool):
    # The text as an expression, not a value: the SQL then escapes its wildcards itself and the text stays a plain
    # parameter, so `cases_page` can compile a search (a value would be sent as the pattern '%text%').
    text = Value(query, output_field=CharField())
    if by_reference:  # iexact, written out: SQLite's iexact would escape the value into a pattern
        return queryset.alias(reference_upper=Upper("reference")).filter(reference_upper=Upper(text))
    return queryset.filter(Q(patient__birth_name__icontains=text) | Q(patient__used_name__icontains=text)
                           | Q(patient__first_names__icontains=text) | Q(reference__icontains=text))


# --- The case page --------------------------------------------------------------------------------------

def case_thread(case):
    return (Message.objects.filter(case=case).select_related("author__profession", "author__specialty")
            .prefetch_related("documents"))


# The thread as software reads it (the API): each message and its author, oldest first; no attachments.
_thread_messages = CompiledQuery(
    lambda case: Message.objects.filter(case_id=case).select_related("author").order_by("created_at", "pk"),
    case=uuid.UUID)


def case_thread_messages(case) -> list[Message]:
    return _thread_messages.all(case=case.pk)


def case_timeline(case):
    """Every change to the case, oldest first; reads are listed apart (access history)."""
    return AuditEvent.objects.filter(case_id=case.pk).exclude(kind=AuditEvent.Kind.READ).order_by("at", "id")


def case_access_history(case, limit: int = 50):
    return AuditEvent.objects.filter(case_id=case.pk, kind=AuditEvent.Kind.READ).order_by("-at", "-id")[:limit]


# --- Live updates: small answers polled by static/js/live.js; stamps only, no patient data --------------

def live_stamp(case: Case) -> str:
    """Changes whenever the case page would show something new (every service moves updated_at)."""
    return f"{case.state}|{case.updated_at.isoformat()}|{case.expert_id}|{case.oncall_stage}"


def case_live_state(user, pk) -> dict:
    """What the open case page compares to know whether to refresh itself; 404 like the page."""
    row = (cases_visible_to(user).filter(pk=pk).order_by()
           .values("state", "updated_at", "expert_id", "oncall_stage", "reference").first())
    if row is None:
        raise Http404
    stamp = live_stamp(Case(**{k: row[k] for k in ("state", "updated_at", "expert_id", "oncall_stage")}))
    return {"stamp": stamp, "state": row["state"], "state_label": str(Case.State(row["state"]).label),
            "open": row["state"] in Case.OPEN_STATES, "reference": row["reference"]}


def inbox_live_state(user) -> dict:
    """One aggregate over the user's own cases, pool included, and the requests waiting for their acknowledgement."""
    pid = getattr(getattr(user, "professional", None), "pk", None)
    mine = Case.objects.filter(Q(requester_id=pid) | (Q(expert_id=pid) & ~Q(state=S.DRAFT)) | _pooled_for(pid))
    paged = Q(expert_id=pid, state=S.SUBMITTED, oncall_stage__in=[Case.OncallStage.EXPERT, Case.OncallStage.BACKUP])
    row = mine.order_by().aggregate(n=Count("pk"), last=Max("updated_at"), paged=Count("pk", filter=paged))
    last = row["last"].isoformat() if row["last"] else ""
    return {"stamp": f"{row['n']}|{last}|{row['paged']}", "paged": row["paged"]}


def cases_listing(user, *, state: str = "", query: str = ""):
    """Every case this user may see, as list rows (unread counts in the same query), newest change first."""
    qs = search_cases(user, query) if query.strip() else _with_listing(cases_visible_to(user), user)
    if state:
        qs = qs.filter(state=state)
    return qs.order_by(*LIST_ORDER)


# --- The API's list: compiled once per shape ----------------------------------------------------------------

LIST_ROLES = ("all", "requester", "expert", "pool")
_page_queries: dict[tuple, CompiledQuery] = {}


def cases_page(user, *, role: str, state: str, fields: tuple[str, ...], offset: int, limit: int,
               query: str = "") -> tuple[int, list]:
    """The cases of `cases_listing` (role "all"), of them those the user requested or is the expert of, or the
    pool of `pool_queue`, as the `fields` of each row (`unread` among them) for one page, and how many there are;
    `query` searches them as `search_in` does.

    Compiled once per shape: the role, a state or not, a search or not (by reference or by text), staff or not,
    and how many networks the user belongs to (their ids as parameters: PostgreSQL then reads the pool through its
    index, see `_pooled_for`)."""
    if role not in LIST_ROLES:
        raise ValueError(f"role: one of {LIST_ROLES}")
    if not user.is_authenticated:
        return 0, []
    staff, pid = user.is_staff, _professional_id(user)
    if pid is None and not (staff and role == "all"):
        return 0, []  # no professional: no case of theirs, no network
    # The networks' ids, where the SQL reads them: a professional's sight, or the pool (staff see every case).
    networks = _network_ids(user) if pid is not None and (role == "pool" or not staff) else []
    with_pid = pid is not None and role != "pool"  # the pool is the networks' alone
    query = query.strip()
    search = ("reference" if _is_reference(query) else "text") if query else ""
    values = {"user": user.pk, **({"pid": pid} if with_pid else {}), **({"state": state} if state else {}),
              **({"query": query} if query else {}), **{f"network{i}": network for i, network in enumerate(networks)}}
    compiled = _page_query(role, staff=staff, with_pid=with_pid, with_state=bool(state), search=search,
                           networks=len(networks), fields=fields)
    rows = compiled.all(page=(offset, limit), **values)
    return page_total(rows, offset, limit, lambda: compiled.count(**values)), rows


def _page_query(role, *, staff, with_pid, with_state, search, networks, fields) -> CompiledQuery:
    key = (role, staff, with_pid, with_state, search, networks, fields)
    if key not in _page_queries:
        def build(user, pid=None, state=None, query=None, **ids):
            network_ids = [ids[f"network{i}"] for i in range(networks)]
            if role == "pool":
                rows, order = Case.objects.filter(_pooled_for(pid, network_ids)), _pool_order()
            else:
                rows, order = (Case.objects.all() if staff else
                               Case.objects.filter(_visible_to_professional(pid, network_ids))), LIST_ORDER
                if role != "all":
                    rows = rows.filter(**{f"{role}_id": pid})
            if with_state:
                rows = rows.filter(state=state)
            if search:
                rows = _matching(rows, query, by_reference=search == "reference")
            return _with_unread(rows, user).order_by(*order).values(*fields)

        types = {"user": int, **({"pid": uuid.UUID} if with_pid else {}), **({"state": str} if with_state else {}),
                 **({"query": str} if search else {}),
                 **{f"network{i}": uuid.UUID for i in range(networks)}}
        _page_queries[key] = CompiledQuery(build, **types)
    return _page_queries[key]
