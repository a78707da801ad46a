"""Queries compiled once and run with new values (core/compiled.py) give what the plain ORM gives; the case
selector built on them still hides what is not the user's."""

import threading
import uuid
from datetime import UTC, date, datetime

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, connections
from django.db.models import Count, OuterRef, Prefetch, Q, Subquery
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import selectors, services
from teleexpertise.cases.models import Case, CaseTag
from teleexpertise.cases.selectors import CASE_PAGE_RELATED, case_for_user
from teleexpertise.core.compiled import CompiledInsert, CompiledQuery
from teleexpertise.directory.models import Network, NetworkMembership, Organisation
from teleexpertise.messaging.models import Message, Notification
from teleexpertise.messaging.services import message_create
from tests.factories import Cast, consent, identity, make_user, nir

SQLITE = connection.vendor == "sqlite"


def _fields(obj) -> dict:
    return {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}


def _assert_same_as_orm(compiled: CompiledQuery, **values) -> list:
    """The compiled rows are the rows of the definition's own queryset, field for field, in its order."""
    rows = compiled.all(**values)
    assert [_fields(r) for r in rows] == [_fields(r) for r in compiled.build(**values)]
    return rows


@pytest.fixture
def cases(cast):
    """Cases of several states, created one after the other (distinct created_at)."""
    return [cast.case_in(state) for state in ("draft", "submitted", "accepted", "closed")]


def _notifications(cast, cases):
    for case in cases:
        for who in (cast.requester, cast.expert, cast.colleague):
            Notification.objects.create(recipient=who.user, case=case, verb="À lire")


# --- Same rows as the ORM, for each supported type ---------------------------------------------------------

def test_uuid_values_give_the_querysets_rows_with_their_relations_joined(cast, cases, django_assert_num_queries):
    by_requester = CompiledQuery(
        lambda pid: Case.objects.filter(requester_id=pid).select_related("patient", "requester__profession")
        .order_by("created_at"), pid=uuid.UUID)
    with django_assert_num_queries(1):  # the relations come in the one query
        rows = by_requester.all(pid=cast.requester.pk)
        related = [(_fields(r.patient), _fields(r.requester.profession)) for r in rows]
    assert [r.pk for r in rows] == [c.pk for c in cases]
    expected = Case.objects.filter(requester=cast.requester).select_related("patient", "requester__profession")
    assert related == [(_fields(c.patient), _fields(c.requester.profession)) for c in expected.order_by("created_at")]
    assert by_requester.all(pid=cast.outsider.pk) == []


def test_int_values_take_each_calls_value(cast, cases):
    _notifications(cast, cases)
    to_user = CompiledQuery(lambda user: Notification.objects.filter(recipient_id=user).order_by("created_at", "pk"),
                            user=int)
    requesters = _assert_same_as_orm(to_user, user=cast.requester.user.pk)
    experts = _assert_same_as_orm(to_user, user=cast.expert.user.pk)
    assert requesters and experts
    assert {n.recipient_id for n in requesters} == {cast.requester.user.pk}
    assert {n.recipient_id for n in experts} == {cast.expert.user.pk}


def test_int_values_on_an_integer_column(cast, cases):
    by_actor = CompiledQuery(lambda actor: AuditEvent.objects.filter(actor_id=actor), actor=int)
    requesters = _assert_same_as_orm(by_actor, actor=cast.requester.user.pk)
    assert requesters and {e.actor_id for e in requesters} == {cast.requester.user.pk}
    assert _assert_same_as_orm(by_actor, actor=cast.expert.user.pk) != requesters


def test_str_values_take_each_calls_value(cast, cases):
    by_action = CompiledQuery(lambda action: AuditEvent.objects.filter(action=action).order_by("at", "id"),
                              action=str)
    created = _assert_same_as_orm(by_action, action="case.create")
    claimed = _assert_same_as_orm(by_action, action="case.claim")
    assert len(created) == 4 and len(claimed) == 2
    assert _assert_same_as_orm(by_action, action="no such action") == []


def test_datetime_values_take_each_calls_value(cast, cases):
    since = CompiledQuery(lambda t: Case.objects.filter(created_at__gte=t).order_by("-created_at"), t=datetime)
    assert [c.pk for c in _assert_same_as_orm(since, t=cases[1].created_at)] == [c.pk for c in cases[:0:-1]]
    assert [c.pk for c in _assert_same_as_orm(since, t=cases[3].created_at)] == [cases[3].pk]
    # Another time zone is the same instant (SQLite stores UTC text: the value must be converted).
    paris = timezone.localtime(cases[2].created_at)
    assert [c.pk for c in _assert_same_as_orm(since, t=paris)] == [cases[3].pk, cases[2].pk]


def test_several_values_and_a_value_used_several_times(cast, cases):
    """The visibility clause uses the professional three times (requester, expert, pool subquery)."""
    from teleexpertise.cases.selectors import _visible_to_professional

    visible = CompiledQuery(lambda pid, since: Case.objects.filter(_visible_to_professional(pid),
                                                                    created_at__gte=since).order_by("created_at"),
                            pid=uuid.UUID, since=datetime)
    start = cases[0].created_at
    for who in (cast.requester, cast.expert, cast.colleague, cast.outsider):
        _assert_same_as_orm(visible, pid=who.pk, since=start)
    assert len(visible.all(pid=cast.requester.pk, since=start)) == 4
    assert len(visible.all(pid=cast.requester.pk, since=cases[2].created_at)) == 2


def test_first_is_the_first_row_in_the_definitions_order_or_none(cast, cases):
    latest = CompiledQuery(lambda pid: Case.objects.filter(requester_id=pid).order_by("-created_at"), pid=uuid.UUID)
    assert latest.first(pid=cast.requester.pk).pk == cases[-1].pk
    assert latest.first(pid=cast.outsider.pk) is None


def test_the_definition_is_built_once_per_thread(cast, cases):
    built = []

    def build(pid):
        built.append(threading.get_ident())
        return Case.objects.filter(requester_id=pid)

    compiled = CompiledQuery(build, pid=uuid.UUID)
    for who in (cast.requester, cast.expert, cast.requester):
        compiled.all(pid=who.pk)
    assert built == [threading.get_ident()] * 2  # twice at first use: the values must be plain parameters


@pytest.mark.django_db(transaction=True)
def test_another_thread_compiles_its_own_and_gets_its_own_values():
    cast = Cast()
    mine, theirs = cast.new_case(), cast.new_case(to_network=False)
    built_on = []

    def build(pk):
        built_on.append(threading.get_ident())
        return Case.objects.filter(pk=pk).select_related("requester")

    by_pk = CompiledQuery(build, pk=uuid.UUID)
    assert by_pk.first(pk=mine.pk).pk == mine.pk  # compiled on this thread first
    results = {}

    def run():
        try:
            found = by_pk.first(pk=theirs.pk)
            results["found"] = (found.pk, found.requester.pk, found.expert_id)
        except Exception as exc:  # reported by the assert below
            results["error"] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert results == {"found": (theirs.pk, cast.requester.pk, cast.expert.pk)}
    assert by_pk.first(pk=mine.pk).pk == mine.pk
    me = threading.get_ident()  # each thread builds it twice at first use (the values must be plain parameters)
    assert len(built_on) == 4 and built_on[:2] == [me, me] and built_on[2] == built_on[3] != me


def test_prefetch_related_of_the_definition_is_honoured(cast, cases, django_assert_num_queries):
    for case, labels in zip(cases, (["a"], [], ["b", "c"], ["d"]), strict=True):
        CaseTag.objects.bulk_create(CaseTag(case=case, label=label) for label in labels)
    services.case_post_message(actor=cast.actor(cast.requester), case_id=cases[1].pk, body="Bonjour")
    tagged = CompiledQuery(
        lambda pid: Case.objects.filter(requester_id=pid).order_by("created_at").prefetch_related(
            "tags", Prefetch("messages", queryset=Message.objects.order_by("created_at"), to_attr="thread")),
        pid=uuid.UUID)
    with django_assert_num_queries(3):  # the cases, their tags, their messages
        rows = tagged.all(pid=cast.requester.pk)
        labels = [sorted(t.label for t in r.tags.all()) for r in rows]
        bodies = [[m.body for m in r.thread] for r in rows]
    assert labels == [["a"], [], ["b", "c"], ["d"]]
    assert bodies == [[m.body for m in Message.objects.filter(case=c).order_by("created_at")] for c in cases]
    assert "Bonjour" in bodies[1]


# --- Updates ----------------------------------------------------------------------------------------------

def test_update_changes_exactly_the_matched_rows_and_counts_them(cast, cases):
    _notifications(cast, cases)
    read = CompiledQuery(
        lambda user, case, now: Notification.objects.filter(recipient_id=user, case_id=case, read_at__isnull=True),
        user=int, case=uuid.UUID, now=datetime)
    before = dict(Notification.objects.values_list("pk", "read_at"))
    matched = set(read.build(user=cast.expert.user.pk, case=cases[1].pk, now=timezone.now())
                  .values_list("pk", flat=True))
    now = timezone.now()
    assert len(matched) >= 1
    assert read.update({"read_at": "now"}, user=cast.expert.user.pk, case=cases[1].pk, now=now) == len(matched)
    after = dict(Notification.objects.values_list("pk", "read_at"))
    assert {pk for pk, at in after.items() if at == now} == matched
    assert {pk: at for pk, at in after.items() if pk not in matched} == {
        pk: at for pk, at in before.items() if pk not in matched}
    assert read.update({"read_at": "now"}, user=cast.expert.user.pk, case=cases[1].pk, now=now) == 0  # all read
    assert read.update({"read_at": "now"}, user=cast.colleague.user.pk, case=cases[1].pk, now=now) >= 1


def test_update_filtered_across_a_relation(cast, cases):
    _notifications(cast, cases)
    other = cast.new_case(to_network=False)
    Case.objects.filter(pk=other.pk).update(requester=cast.outsider)
    Notification.objects.create(recipient=cast.expert.user, case=other, verb="À lire")
    relabel = CompiledQuery(lambda pid, verb: Notification.objects.filter(case__requester_id=pid),
                            pid=uuid.UUID, verb=str)
    expected = set(Notification.objects.filter(case__requester=cast.outsider).values_list("pk", flat=True))
    assert relabel.update({"verb": "verb"}, pid=cast.outsider.pk, verb="Relu") == len(expected) >= 1
    assert set(Notification.objects.filter(verb="Relu").values_list("pk", flat=True)) == expected


# --- Inserts ----------------------------------------------------------------------------------------------

def _audit_values(case, **overrides) -> dict:
    values = {"at": timezone.now(), "actor_id": 42, "actor_label": "Ada <ada@test.fr>", "action": "case.view",
              "kind": AuditEvent.Kind.READ, "object_type": "cases.case", "object_id": str(case.pk),
              "case_id": case.pk, "patient_id": case.patient_id, "ip": "192.0.2.7", "summary": "lu"}
    values.update(overrides)
    return values


def test_insert_stores_what_objects_create_stores_and_returns_the_pk(cast, cases):
    insert = CompiledInsert(AuditEvent)
    values = _audit_values(cases[0])
    made = insert.create(**values)
    plain = AuditEvent.objects.create(**values)
    stored = AuditEvent.objects.get(pk=made.pk)
    assert {**_fields(stored), "id": None} == {**_fields(AuditEvent.objects.get(pk=plain.pk)), "id": None}
    assert _fields(made) == _fields(stored) and not made._state.adding
    # The INSERT compiled by the first call takes the second call's values.
    second = insert.create(**_audit_values(cases[1], actor_id=None, ip=None, summary=""))
    assert second.pk != made.pk
    assert _fields(AuditEvent.objects.get(pk=second.pk)) == _fields(second)
    assert AuditEvent.objects.get(pk=second.pk).case_id == cases[1].pk


def test_insert_of_a_model_with_a_uuid_pk_returns_it_as_the_model_gives_it(cast, cases):
    made = CompiledInsert(Notification).create(recipient=cast.expert.user, case=cases[0], verb="À lire")
    stored = Notification.objects.get(pk=made.pk)
    assert made.pk == stored.pk and isinstance(made.pk, uuid.UUID)
    assert _fields(made) == _fields(stored)


# --- What a definition or a call may not do ---------------------------------------------------------------

@pytest.mark.parametrize(("model", "lookup", "value"), [(Organisation, "name__icontains", "CHU"),
                                                     (Organisation, "name__startswith", "CHU"),
                                                     (AuditEvent, "object_id__contains", 17),
                                                     (AuditEvent, "object_id__endswith", uuid.uuid4())])
def test_a_value_transformed_in_sql_is_refused_at_compile(db, model, lookup, value):
    compiled = CompiledQuery(lambda v: model.objects.filter(**{lookup: v}), v=type(value))
    with pytest.raises(ImproperlyConfigured, match="not a plain parameter"):
        compiled.all(v=value)


def test_a_value_also_used_transformed_is_refused_at_compile(db):
    Organisation.objects.create(name="Clinique", city="Lyon")
    compiled = CompiledQuery(lambda v: Organisation.objects.filter(Q(name=v) | Q(city__icontains=v)), v=str)
    with pytest.raises(ImproperlyConfigured):
        compiled.all(v="Lyo")


def test_iexact_matches_like_the_orm_or_is_refused(db):
    for name in ("CHU_A", "CHUxA"):
        Organisation.objects.create(name=name)
    compiled = CompiledQuery(lambda v: Organisation.objects.filter(name__iexact=v).order_by("name"), v=str)
    try:
        assert [o.name for o in compiled.all(v="chu_a")] == ["CHU_A"]
        assert compiled.all(v="%") == []
    except ImproperlyConfigured:
        pass


@pytest.mark.parametrize(("values", "error"), [
    ({"pid": None, "since": datetime(2024, 1, 1, tzinfo=UTC)}, ValueError),
    ({"pid": "", "since": datetime(2024, 1, 1, tzinfo=UTC)}, ValueError),
    ({"pid": "4b7a8f0e-8f5e-4d55-9a3c-1f0e2d3c4b5a", "since": datetime(2024, 1, 1, tzinfo=UTC)}, ValueError),
    ({"pid": uuid.uuid4(), "since": date(2024, 1, 1)}, ValueError),
    ({"pid": uuid.uuid4()}, TypeError),
    ({"pid": uuid.uuid4(), "since": datetime(2024, 1, 1, tzinfo=UTC), "other": 1}, TypeError),
    ({"pk": uuid.uuid4(), "since": datetime(2024, 1, 1, tzinfo=UTC)}, TypeError),
])
def test_bad_values_and_names_are_refused_before_any_query(db, values, error, django_assert_num_queries):
    compiled = CompiledQuery(lambda pid, since: Case.objects.filter(requester_id=pid, created_at__gte=since),
                             pid=uuid.UUID, since=datetime)
    with django_assert_num_queries(0):
        with pytest.raises(error):
            compiled.all(**values)
        with pytest.raises(error):
            compiled.update({"updated_at": "since"}, **values)


@pytest.mark.parametrize(("kind", "empty"), [(int, 0), (str, "")])
def test_empty_int_and_str_values_are_refused(db, kind, empty):
    compiled = CompiledQuery(lambda v: AuditEvent.objects.filter(**{"actor_id" if kind is int else "action": v}),
                             v=kind)
    with pytest.raises(ValueError):
        compiled.all(v=empty)


@pytest.mark.parametrize("build", [lambda pk: Case.objects.none(), lambda pk: Case.objects.filter(pk=pk).none(),
                                   lambda pk: Case.objects.filter(pk=pk, state__in=[])])
def test_an_empty_queryset_gives_nothing(cast, cases, build, django_assert_num_queries):
    compiled = CompiledQuery(build, pk=uuid.UUID)
    with django_assert_num_queries(0):
        assert compiled.all(pk=cases[0].pk) == []
        assert compiled.first(pk=cases[0].pk) is None
        assert compiled.update({"question": "pk"}, pk=cases[0].pk) == 0


# --- case_for_user ----------------------------------------------------------------------------------------

def test_case_for_user_finds_the_case_for_those_who_see_it(cast):
    draft, pooled = cast.case_in("draft"), cast.case_in("submitted")
    addressed = cast.new_case(to_network=False)
    seen = {"requester": [draft, pooled, addressed], "expert": [pooled, addressed], "colleague": [pooled],
            "dispatcher": [pooled]}
    for who, cases in seen.items():
        user = getattr(cast, who).user
        for case in cases:
            assert case_for_user(user, case.pk).pk == case.pk, (who, case.state)
            assert case_for_user(user, str(case.pk), related=()).pk == case.pk
    for case in (draft, pooled, addressed):
        assert _fields(case_for_user(cast.admin, case.pk)) == _fields(Case.objects.get(pk=case.pk))


def test_case_for_user_is_404_for_everyone_else(cast):
    draft, pooled = cast.case_in("draft"), cast.case_in("submitted")
    addressed_draft = cast.new_case(to_network=False, send=False)
    taken = cast.case_in("taken")  # out of the pool: the colleague no longer sees it
    nobody = make_user("nobody@test.fr")  # an account with no professional
    refused = [(cast.outsider.user, pooled), (cast.expert.user, draft), (cast.expert.user, addressed_draft),
               (cast.colleague.user, taken), (cast.colleague.user, draft), (nobody, pooled)]
    for user, case in refused:
        for related in ((), CASE_PAGE_RELATED):
            with pytest.raises(Http404):
                case_for_user(user, case.pk, related=related)
    for user in (cast.requester.user, cast.admin):
        for bad_id in ("not-a-uuid", 12345, "", uuid.uuid4()):
            with pytest.raises(Http404):
                case_for_user(user, bad_id)


def test_case_for_user_is_404_for_anonymous(cast):
    from django.contrib.auth.models import AnonymousUser

    with pytest.raises(Http404):
        case_for_user(AnonymousUser(), cast.case_in("submitted").pk)


def _walk(obj, path: str):
    for name in path.split("__"):
        obj = getattr(obj, name)
        if obj is None:
            return None
    return obj


@pytest.mark.parametrize("who", ["expert", "admin"])
def test_case_for_user_loads_the_page_relations_in_its_one_query(cast, who, django_assert_num_queries):
    case = cast.case_in("closed")
    user = cast.admin if who == "admin" else cast.expert.user
    with django_assert_num_queries(1):
        found = case_for_user(user, case.pk, with_closing=True)
        loaded = {path: _walk(found, path) for path in CASE_PAGE_RELATED}
        survey = found.closing_survey
    plain = Case.objects.get(pk=case.pk)
    assert {path: obj and _fields(obj) for path, obj in loaded.items()} == {
        path: (obj := _walk(plain, path)) and _fields(obj) for path in CASE_PAGE_RELATED}
    assert loaded["expert__organisation"] == cast.hospital and loaded["consent__informed_by"] is not None
    assert survey.pk == plain.closing_survey.pk


def test_case_for_user_with_no_related_reads_the_case_alone(cast, django_assert_num_queries):
    case = cast.case_in("accepted")
    with django_assert_num_queries(1):
        found = case_for_user(cast.expert.user, case.pk, related=())
    assert found._state.fields_cache == {}
    assert _fields(found) == _fields(Case.objects.get(pk=case.pk))
    with CaptureQueriesContext(connection) as reads:
        assert found.patient.pk == case.patient_id
    assert len(reads.captured_queries) == 1  # not joined: read when asked for


# --- Value rows, pages and counts ---------------------------------------------------------------------------

def _case_values(state):
    return (Case.objects.filter(state=state).order_by("created_at", "pk")
            .values("pk", "reference", "patient__birth_name"))


def test_value_rows_pages_and_counts_are_the_orms(cast):
    for _n in range(5):
        cast.case_in("submitted")
    cast.case_in("draft")
    compiled = CompiledQuery(_case_values, state=str)
    orm = list(_case_values("submitted"))
    assert compiled.all(state="submitted") == orm and len(orm) == 5
    assert compiled.count(state="submitted") == 5 and compiled.count(state="draft") == 1
    assert compiled.count(state="closed") == 0 and compiled.all(state="closed") == []
    for offset, limit in ((0, 2), (2, 2), (4, 2), (5, 2), (0, 100)):
        assert compiled.all(state="submitted", page=(offset, limit)) == orm[offset:offset + limit]


def test_a_count_ignores_the_select_lists_joins_and_annotations(cast):
    def build(state, user):
        unread = Message.objects.filter(case=OuterRef("pk")).exclude(author__user=user).values("case")
        return (Case.objects.filter(state=state).select_related("patient")
                .annotate(unread=Count("messages")).filter(pk__in=Subquery(Case.objects.values("pk")))
                .exclude(pk__in=unread[:0]).order_by("-updated_at"))

    for _n in range(3):
        cast.case_in("submitted")
    compiled = CompiledQuery(build, state=str, user=int)
    assert compiled.count(state="submitted", user=cast.expert.user.pk) == 3
    assert compiled.count(state="draft", user=cast.expert.user.pk) == 0


@pytest.mark.parametrize("page", [(-1, 10), (0, 0), (0, -5), ("0", 10), (0, None)])
def test_a_bad_page_is_refused_before_any_query(db, page, django_assert_num_queries):
    compiled = CompiledQuery(_case_values, state=str)
    compiled.all(state="submitted")  # compiled: what follows runs no query
    with django_assert_num_queries(0), pytest.raises(ValueError):
        compiled.all(state="submitted", page=page)


def test_a_sliced_definition_or_a_values_list_is_refused(db):
    with pytest.raises(ImproperlyConfigured):
        CompiledQuery(lambda state: _case_values(state)[:10], state=str).all(state="draft")
    with pytest.raises(ImproperlyConfigured):
        CompiledQuery(lambda state: Case.objects.filter(state=state).values_list("pk"), state=str).all(state="draft")


# --- cases_page: the API's list, compiled, is the selectors' list ------------------------------------------

def _searched_as_before(rows, query: str):
    """The text search as it was written before it was compiled: the lookups with the text as a value."""
    query = query.strip()
    if query.upper().startswith("TE-"):
        return rows.filter(reference__iexact=query)
    return rows.filter(Q(patient__birth_name__icontains=query) | Q(patient__used_name__icontains=query)
                       | Q(patient__first_names__icontains=query) | Q(reference__icontains=query))


def _orm_page(user, role, state, offset, limit, query=""):
    """What the API listed before the list was compiled: the selectors, then the role, values and a slice. One
    difference, a fix: an account without a professional asking for a role's cases got those with no one in that
    role (`expert_id=None` is `IS NULL`); it has no case in any role."""
    if role != "all" and not hasattr(user, "professional"):
        return 0, []
    if role == "pool":
        rows = selectors.pool_queue(user)
        rows = rows.filter(state=state) if state else rows
    else:
        rows = selectors.cases_listing(user, state=state)
        if role != "all":
            rows = rows.filter(**{f"{role}_id": getattr(getattr(user, "professional", None), "pk", None)})
    rows = _searched_as_before(rows, query) if query.strip() else rows
    rows = rows.prefetch_related(None).select_related(None).values(*PAGE_FIELDS)
    return rows.count(), list(rows[offset:offset + limit])


PAGE_FIELDS = ("pk", "reference", "state", "priority", "patient__birth_name", "expert_id", "updated_at", "unread")


@pytest.fixture
def listed(cast):
    """Cases in each state, to the network's pool or to the expert by name, with messages unread by some; the
    colleague also belongs to a second network (two network ids in their lists' SQL), whose pool has a case."""
    second = Network.objects.create(name="Dermatologie pédiatrique", specialty_id="SM15", organisation=cast.hospital)
    NetworkMembership.objects.create(network=second, professional=cast.colleague, role="member")
    cases = [cast.case_in(state) for state in ("draft", "submitted", "submitted", "taken", "accepted", "closed")]
    cases.append(cast.new_case(to_network=False))
    cases.append(services.case_create(actor=cast.actor(cast.requester), ins_nir=nir(), identity=identity(),
                                      consent=consent(), question="Angiome ?", network=second, send=True,
                                      priority=Case.Priority.URGENT))
    for case in cases[3:6]:
        message_create(actor=cast.requester.user, case=case, author=cast.requester, body="Une précision.")
    return cases


def test_cases_page_lists_what_the_selectors_list_for_every_user_role_and_state(cast, listed):
    nobody = make_user("nobody@test.fr")
    users = [cast.requester.user, cast.expert.user, cast.colleague.user, cast.dispatcher.user,
             cast.outsider.user, cast.admin, nobody]
    seen_some = set()
    for user in users:
        for role in selectors.LIST_ROLES:
            for state in ("", "submitted", "accepted"):
                for offset, limit in ((0, 25), (1, 2), (50, 5), (0, 1)):
                    expected = _orm_page(user, role, state, offset, limit)
                    assert selectors.cases_page(user, role=role, state=state, fields=PAGE_FIELDS, offset=offset,
                                                limit=limit) == expected, (user.email, role, state, offset)
                    if expected[0]:
                        seen_some.add((user.email, role))
    # the comparison was not between empty lists: each professional sees cases in the roles they have
    assert {("requester@test.fr", "requester"), ("expert@test.fr", "expert"), ("colleague@test.fr", "pool"),
            ("admin@test.fr", "all")} <= seen_some
    searched = set()
    for user in users:
        for role in selectors.LIST_ROLES:
            for query in ("duran", " Durand ", listed[1].reference.lower(), "TE-0000", "a%b_c", "\\"):
                for state in ("", "submitted"):
                    expected = _orm_page(user, role, state, 0, 25, query)
                    assert selectors.cases_page(user, role=role, state=state, fields=PAGE_FIELDS, offset=0, limit=25,
                                                query=query) == expected, (user.email, role, query, state)
                    searched |= {(user.email, role, query)} if expected[0] else set()
    assert {("colleague@test.fr", "pool", "duran"), ("requester@test.fr", "all", listed[1].reference.lower()),
            ("expert@test.fr", "expert", " Durand ")} <= searched
    colleague_pool = selectors.cases_page(cast.colleague.user, role="pool", state="", fields=PAGE_FIELDS, offset=0,
                                          limit=25)
    assert colleague_pool[0] == 3 and colleague_pool[1][0]["pk"] == listed[-1].pk  # both networks, urgent first
    unread = {row["pk"]: row["unread"] for row in selectors.cases_page(
        cast.expert.user, role="expert", state="", fields=PAGE_FIELDS, offset=0, limit=25)[1]}
    assert unread[listed[3].pk] == 1 and unread[listed[6].pk] == 0


def test_cases_page_refuses_an_unknown_role(cast):
    with pytest.raises(ValueError):
        selectors.cases_page(cast.expert.user, role="everyone", state="", fields=PAGE_FIELDS, offset=0, limit=5)


def test_the_columns_converters_are_worked_out_once_and_still_convert(cast, cases, monkeypatch):
    from django.db.models.sql.compiler import SQLCompiler

    calls = []
    original = SQLCompiler.get_converters
    monkeypatch.setattr(SQLCompiler, "get_converters", lambda self, expressions: calls.append(1) or original(
        self, expressions))
    compiled = CompiledQuery(lambda state: Case.objects.filter(state=state).select_related("patient"), state=str)
    values = CompiledQuery(_case_values, state=str)
    for _run in range(3):
        [case] = compiled.all(state="accepted")
        [row] = values.all(state="accepted", page=(0, 5))
        assert isinstance(case.pk, uuid.UUID) and isinstance(case.created_at, datetime)
        assert isinstance(case.patient.birth_date, date) and case.created_at.tzinfo is not None
        assert isinstance(row["pk"], uuid.UUID) and row["pk"] == case.pk
    assert len(calls) == 2  # one select each, worked out on its first run


# --- FHIR searches of cases: compiled, they answer what the ORM path answers --------------------------------

def _fhir_answer(client, url: str) -> dict:
    import json

    response = client.get(url)
    assert response.status_code == 200, response.content
    answer = json.loads(response.content)
    answer.pop("timestamp")
    return answer


def test_compiled_fhir_searches_answer_what_the_orm_answers(cast, listed, api_for, monkeypatch):
    """Every caller of the cast, the case-row types (ServiceRequest, Task) with references, status codes, a
    repeated parameter and pages: the same Bundle compiled and through the ORM (compilation turned off)."""
    from teleexpertise.fhir import compiled_search

    nobody = make_user("nobody@test.fr")
    expert, requester, patient = cast.expert.pk, cast.requester.pk, listed[4].patient_id
    searches = [f"/fhir/{kind}?{query}" for kind, queries in (
        ("Task", ("", f"owner=Practitioner/{expert}", f"requester={requester}", f"patient=Patient/{patient}",
                  "status=requested", "status=accepted,in-progress,received", f"owner={expert}&status=completed",
                  f"requester={requester}&requester={expert}", "_count=2", "_count=2&_offset=2", "_offset=50")),
        ("ServiceRequest", ("", f"performer=Practitioner/{expert}", "status=active", f"patient={patient}",
                            "_count=1&_offset=1")),
    ) for query in queries]
    callers = {who.email: api_for(who) for who in (cast.requester.user, cast.expert.user, cast.colleague.user,
                                                   cast.dispatcher.user, cast.outsider.user, cast.admin, nobody)}
    compiled = {(email, url): _fhir_answer(client, url) for email, client in callers.items() for url in searches}
    assert compiled_search._queries  # the searches above were compiled
    monkeypatch.setattr(compiled_search, "search_page", lambda *args: None)
    for (email, url), answer in compiled.items():
        assert answer == _fhir_answer(callers[email], url), (email, url)
    matched = {(email, url) for (email, url), answer in compiled.items() if answer["total"]}
    assert {("expert@test.fr", searches[1]), ("colleague@test.fr", searches[4]),
            ("admin@test.fr", searches[0])} <= matched  # not a comparison of empty Bundles


def test_compiled_fhir_searches_refuse_what_the_orm_refuses_and_stay_bounded(cast, listed, api_for, monkeypatch):
    from teleexpertise.fhir import compiled_search

    client = api_for(cast.expert.user)
    for url in ("/fhir/Task?owner=Practitioner/nope", "/fhir/Task?status=unknown", "/fhir/Task?status="):
        assert client.get(url).status_code == 400, url
    kept_codes = {dict(key[3]).get("status") for key in compiled_search._queries}
    assert not kept_codes & {"unknown", ""}  # refused codes kept nothing
    monkeypatch.setattr(compiled_search, "_queries", {})
    monkeypatch.setattr(compiled_search, "MAX_SHAPES", 2)
    answers = [client.get("/fhir/Task", {"status": status}) for status in ("requested", "received", "completed")]
    assert [a.status_code for a in answers] == [200, 200, 200] and len(compiled_search._queries) == 2
    dated = client.get("/fhir/Task", {"_lastUpdated": "ge2020-01-01"})  # a date parameter: the ORM path
    assert dated.status_code == 200 and len(compiled_search._queries) == 2
