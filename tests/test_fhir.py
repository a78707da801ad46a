"""The FHIR facade: every answer is a valid R4B resource, the CapabilityStatement is what the routes serve, the
fixed cast sees by token what it sees on the web (outsiders 404, searches never show others' cases), scopes hold."""

import json
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.test import Client
from django.urls import URLPattern
from django.utils import timezone
from fhir.resources.R4B import get_fhir_model_class

from teleexpertise.api.services import personal_token_create, personal_token_revoke
from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import services
from teleexpertise.cases.models import Case
from teleexpertise.fhir import urls as fhir_urls
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import report_save_draft
from tests.factories import consent, identity, nir

ALL = ["cases:read", "cases:write", "reports:write"]
CASE_TYPES = ("ServiceRequest", "Task")
S = Case.State


pytestmark = pytest.mark.usefixtures("local_documents")


@pytest.fixture
def answered(cast, django_capture_on_commit_callbacks):
    """An answered case whose signed version's PDF was rendered (the job runs on commit, inline in tests)."""
    with django_capture_on_commit_callbacks(execute=True):
        return cast.case_in("answered")


def parsed(response):
    """The body as the fhir.resources R4B model its resourceType names (raises if it is not a valid resource)."""
    assert response["Content-Type"].startswith("application/fhir+json"), response["Content-Type"]
    body = json.loads(response.content)
    return get_fhir_model_class(body["resourceType"]).model_validate_json(response.content)


def ok(client, url, **params):
    response = client.get(url, params)
    assert response.status_code == 200, response.content
    return parsed(response)


def ids(bundle) -> set[str]:
    return {entry.resource.id for entry in bundle.entry or ()}


def outsiders_case(cast) -> Case:
    return services.case_create(actor=cast.actor(cast.outsider), ins_nir=nir(), identity=identity(),
                                consent=consent(), question="Eczéma ?", network=cast.network, send=True)


# --- The CapabilityStatement is the routes ------------------------------------------------------------

_INSTANCE = {"GET": "read", "PUT": "update"}
_TYPE = {"GET": "search-type", "POST": "create"}


def _served_by_routes() -> set[tuple[str, str]]:
    """(type, interaction) for each method each route answers; ("", "transaction") for POST on the base URL."""
    served = set()
    for pattern in fhir_urls.urlpatterns:
        route, methods = str(pattern.pattern), set(pattern.callback.methods)
        assert isinstance(pattern, URLPattern)
        if route.endswith("/<str:pk>"):
            served |= {(route.split("/")[0], code) for method, code in _INSTANCE.items() if method in methods}
        elif route == "":
            served |= {("", "transaction")} if methods == {"POST"} else {("", "?")}
        elif "/" not in route and "<" not in route and route != "metadata":
            served |= {(route, code) for method, code in _TYPE.items() if method in methods}
    return served


def test_capability_statement_lists_exactly_what_the_routes_serve(cast):
    statement = parsed(Client().get("/fhir/metadata"))
    rest = statement.rest[0]
    listed = {(r.type, i.code) for r in rest.resource for i in r.interaction} | {("", i.code) for i in rest.interaction}
    assert listed == _served_by_routes()
    assert {"ServiceRequest", "Task", "Patient", "Practitioner", "PractitionerRole", "Organization", "Consent",
            "QuestionnaireResponse", "Composition", "DocumentReference", "AuditEvent", "Communication",
            "Binary"} == {r.type for r in rest.resource}
    writable = {(r.type, i.code) for r in rest.resource for i in r.interaction if i.code in ("create", "update")}
    assert writable == {("ServiceRequest", "create"), ("ServiceRequest", "update"), ("Task", "update"),
                        ("Communication", "create"), ("DocumentReference", "create")}
    assert {r.type for r in rest.resource if r.versioning == "versioned-update"} == {"ServiceRequest", "Task"}
    assert statement.fhirVersion == "4.3.0"


def test_every_listed_search_parameter_is_accepted_and_no_other(cast, fhir_for):
    client = fhir_for(cast.requester)
    statement = parsed(Client().get("/fhir/metadata"))
    case = cast.new_case()
    values = {"reference": f"Practitioner/{cast.requester.pk}", "number": "5", "date": "ge2020-01-01"}
    by_name = {"patient": f"Patient/{case.patient_id}", "entity": f"ServiceRequest/{case.pk}",
               "based-on": f"ServiceRequest/{case.pk}", "part-of": f"Task/{case.pk}",
               "related": f"ServiceRequest/{case.pk}"}
    token_values = {"ServiceRequest": "active", "Task": "requested"}
    for resource in statement.rest[0].resource:
        names = {p.name for p in resource.searchParam or ()}
        if not names:
            assert client.get(f"/fhir/{resource.type}").status_code == 404
            continue
        assert {"_count", "_offset"} <= names
        for param in resource.searchParam:
            value = token_values[resource.type] if param.type == "token" else values[param.type]
            response = client.get(f"/fhir/{resource.type}", {param.name: by_name.get(param.name, value)})
            assert response.status_code == 200, (resource.type, param.name, response.content)
        for include in resource.searchInclude or ():
            assert client.get(f"/fhir/{resource.type}", {"_include": include}).status_code == 200
        refused = client.get(f"/fhir/{resource.type}", {"_sort": "-_lastUpdated"})
        assert refused.status_code == 400
        assert parsed(refused).issue[0].code == "not-supported"


# --- Every resource parses and says what the case says -------------------------------------------------

def test_every_resource_of_an_answered_case_is_a_valid_r4b_resource(cast, fhir_for, answered):
    client = fhir_for(cast.requester)
    version = ReportVersion.objects.get(case=answered, status="signed")
    for url in (f"/fhir/ServiceRequest/{answered.pk}", f"/fhir/Task/{answered.pk}",
                f"/fhir/Patient/{answered.patient_id}", f"/fhir/Practitioner/{cast.requester.pk}",
                f"/fhir/Practitioner/{cast.expert.pk}", f"/fhir/Organization/{cast.hospital.pk}",
                f"/fhir/Composition/{version.pk}", f"/fhir/DocumentReference/{version.pk}"):
        resource = ok(client, url)
        assert resource.id == url.rsplit("/", 1)[1]
    for resource_type in ("ServiceRequest", "Task", "Composition", "DocumentReference"):
        bundle = ok(client, f"/fhir/{resource_type}")
        assert bundle.type == "searchset" and bundle.total == 1
        assert bundle.entry[0].resource.get_resource_type() == resource_type


def test_service_request_and_task_carry_the_case(cast, fhir_for, answered):
    client = fhir_for(cast.requester)
    request = ok(client, f"/fhir/ServiceRequest/{answered.pk}")
    assert (request.status, request.intent, request.priority) == ("completed", "order", "routine")
    assert request.subject.reference == f"Patient/{answered.patient_id}"
    assert request.requester.reference == f"Practitioner/{cast.requester.pk}"
    assert [p.reference for p in request.performer] == [f"Practitioner/{cast.expert.pk}"]
    assert request.reasonCode[0].text == answered.question
    assert request.identifier[0].value == answered.reference

    task = ok(client, f"/fhir/Task/{answered.pk}")
    assert (task.status, task.businessStatus.coding[0].code) == ("completed", "answered")
    assert task.focus.reference == f"ServiceRequest/{answered.pk}"
    assert task.owner.reference == f"Practitioner/{cast.expert.pk}"
    assert task.for_fhir.reference == f"Patient/{answered.patient_id}"


@pytest.mark.parametrize(("state", "request_status", "task_status"), [
    (S.DRAFT, "draft", "draft"), (S.SUBMITTED, "active", "requested"), (S.TAKEN, "active", "received"),
    (S.AWAITING_INFORMATION, "active", "on-hold"), (S.ACCEPTED, "active", "accepted"),
    (S.DECLINED, "revoked", "rejected"), (S.WITHDRAWN, "revoked", "cancelled"), (S.CLOSED, "completed", "completed"),
])
def test_states_map_to_request_and_task_statuses(cast, fhir_for, state, request_status, task_status):
    case = cast.case_in(state)
    client = fhir_for(cast.requester)
    assert ok(client, f"/fhir/ServiceRequest/{case.pk}").status == request_status
    task = ok(client, f"/fhir/Task/{case.pk}")
    assert (task.status, task.businessStatus.coding[0].code) == (task_status, state)
    assert ids(ok(client, "/fhir/Task", status=task_status)) == {str(case.pk)}
    assert ids(ok(client, "/fhir/ServiceRequest", status=request_status)) == {str(case.pk)}


def test_an_accepted_task_is_in_progress_once_the_expert_drafts_the_report(cast, fhir_for):
    case = cast.case_in(S.ACCEPTED)
    other = cast.case_in(S.ACCEPTED)
    report_save_draft(actor=cast.actor(cast.expert), case_id=case.pk,
                      data={"act_at": timezone.now(), "answer": "En cours.", "conclusion": ""})
    client = fhir_for(cast.expert)
    assert ok(client, f"/fhir/Task/{case.pk}").status == "in-progress"
    assert ids(ok(client, "/fhir/Task", status="in-progress")) == {str(case.pk)}
    assert ids(ok(client, "/fhir/Task", status="accepted")) == {str(other.pk)}
    assert ids(ok(client, "/fhir/Task", status="accepted,in-progress")) == {str(case.pk), str(other.pk)}


def test_a_searched_task_is_the_task_read(cast, fhir_for, answered):
    """A search builds each Task from its row's values, a read from the case: the same resource, whatever the
    state, reason, deadline, owner (an expert or a network's pool) and report (a draft shown to its author only)."""
    drafted = cast.case_in(S.ACCEPTED)
    report_save_draft(actor=cast.actor(cast.expert), case_id=drafted.pk,
                      data={"act_at": timezone.now(), "answer": "En cours.", "conclusion": ""})
    for state in (S.SUBMITTED, S.TAKEN, S.AWAITING_INFORMATION, S.DECLINED, S.WITHDRAWN, S.ACCEPTED):
        cast.case_in(state)
    for caller in (cast.expert, cast.requester):
        client = fhir_for(caller)
        found = json.loads(client.get("/fhir/Task", {"_count": 100}).content)["entry"]
        assert len(found) >= 7  # the expert does not see the request withdrawn before anyone took it
        for entry in found:
            task = entry["resource"]
            assert json.loads(client.get(f"/fhir/Task/{task['id']}").content) == task
    searched = {e["resource"]["id"]: e["resource"] for e in
                json.loads(fhir_for(cast.expert).get("/fhir/Task", {"_count": 100}).content)["entry"]}
    drafted_outputs = {o["type"]["coding"][0]["code"]: o for o in searched[str(drafted.pk)]["output"]}
    assert drafted_outputs["answer"]["valueString"] == "En cours." and "report" not in drafted_outputs
    assert searched[str(answered.pk)]["output"][0]["valueReference"]["reference"].startswith("Composition/")


def test_a_search_shows_a_participant_renamed_since_the_last_one(cast, fhir_for):
    """A search's texts are remembered under their rows, which hold the names they show: renaming the patient (the
    case's version does not move) gives a new text, never the old one."""
    case = cast.case_in(S.TAKEN)
    client = fhir_for(cast.expert)

    def shown():
        bundle = json.loads(client.get("/fhir/Task").content)
        return next(e["resource"]["for"]["display"] for e in bundle["entry"] if e["resource"]["id"] == str(case.pk))

    before = shown()
    assert shown() == before
    case.patient.used_name = "Nouveau-Nom"
    case.patient.save(update_fields=["used_name"])
    assert shown() == "NOUVEAU-NOM " + case.patient.first_names.split()[0]


def test_patient_sends_the_ins_only_when_the_identity_is_qualified(cast, fhir_for):
    case = cast.new_case()
    client = fhir_for(cast.requester)
    patient = ok(client, f"/fhir/Patient/{case.patient_id}")
    systems = {i.system for i in patient.identifier}
    qualified = case.patient.identity_status == case.patient.IdentityStatus.QUALIFIED
    assert ("urn:oid:1.2.250.1.213.1.4.8" in systems) == qualified
    case.patient.identity_status = case.patient.IdentityStatus.QUALIFIED
    case.patient.save(update_fields=["identity_status"])
    patient = ok(client, f"/fhir/Patient/{case.patient_id}")
    assert [(i.system, i.value) for i in patient.identifier] == [("urn:oid:1.2.250.1.213.1.4.8",
                                                                   case.patient.ins_nir)]
    assert patient.name[0].family == case.patient.birth_name


def test_practitioner_and_organization_carry_national_identifiers(cast, fhir_for, answered):
    client = fhir_for(cast.requester)
    expert = ok(client, f"/fhir/Practitioner/{cast.expert.pk}")
    assert {(i.system, i.value) for i in expert.identifier} == {
        ("urn:oid:1.2.250.1.71.4.2.1", "8" + cast.expert.rpps), ("https://rpps.esante.gouv.fr", cast.expert.rpps)}
    hospital = ok(client, f"/fhir/Organization/{cast.hospital.pk}")
    assert ("http://finess.sante.gouv.fr", cast.hospital.finess) in {(i.system, i.value) for i in hospital.identifier}


def test_document_reference_embeds_the_stored_pdf(cast, fhir_for, answered):
    version = ReportVersion.objects.get(case=answered, status="signed")
    document = ok(fhir_for(cast.requester), f"/fhir/DocumentReference/{version.pk}")
    pdf = document.content[0].attachment.data  # the model decodes base64Binary
    assert pdf.startswith(b"%PDF") and document.content[0].attachment.size == len(pdf)
    assert AuditEvent.objects.filter(action="report.pdf_download", object_id=str(version.pk),
                                     summary__startswith="FHIR").exists()


# --- Visibility: the fixed cast by token ----------------------------------------------------------------

def test_outsider_gets_404_on_every_case_derived_resource(cast, fhir_for, answered):
    version = ReportVersion.objects.get(case=answered, status="signed")
    outsider = fhir_for(cast.outsider)
    for url in (f"/fhir/ServiceRequest/{answered.pk}", f"/fhir/Task/{answered.pk}",
                f"/fhir/Patient/{answered.patient_id}", f"/fhir/Practitioner/{cast.expert.pk}",
                f"/fhir/Practitioner/{cast.requester.pk}", f"/fhir/Organization/{cast.hospital.pk}",
                f"/fhir/Composition/{version.pk}", f"/fhir/DocumentReference/{version.pk}",
                "/fhir/Task/not-a-uuid"):
        response = outsider.get(url)
        assert response.status_code == 404, url
        assert parsed(response).issue[0].code == "not-found"
    for resource_type in ("ServiceRequest", "Task", "Composition", "DocumentReference"):
        assert ok(outsider, f"/fhir/{resource_type}").total == 0
    assert ok(fhir_for(cast.admin), f"/fhir/Task/{answered.pk}").id == str(answered.pk)


def test_searches_never_include_others_cases(cast, fhir_for, answered):
    mine, theirs = cast.new_case(send=False), outsiders_case(cast)
    requester = fhir_for(cast.requester)
    for resource_type in CASE_TYPES:
        assert ids(ok(requester, f"/fhir/{resource_type}")) == {str(answered.pk), str(mine.pk)}
        # naming someone else's patient or requester filters within what is visible: nothing leaks
        assert ok(requester, f"/fhir/{resource_type}", patient=f"Patient/{theirs.patient_id}").total == 0
        assert ok(requester, f"/fhir/{resource_type}", requester=f"Practitioner/{cast.outsider.pk}").total == 0
    expert = fhir_for(cast.expert)  # the pool shows the outsider's submitted case, never the requester's draft
    assert ids(ok(expert, "/fhir/ServiceRequest")) == {str(answered.pk), str(theirs.pk)}
    assert ids(ok(expert, "/fhir/ServiceRequest", performer=f"Practitioner/{cast.expert.pk}")) == {str(answered.pk)}
    assert ids(ok(expert, "/fhir/Task", owner=f"Practitioner/{cast.expert.pk}")) == {str(answered.pk)}
    assert ids(ok(fhir_for(cast.outsider), "/fhir/Task")) == {str(theirs.pk)}


def test_search_pages_with_count_and_a_next_link(cast, fhir_for):
    cases = [cast.new_case() for _ in range(3)]
    client = fhir_for(cast.requester)
    first = ok(client, "/fhir/ServiceRequest", _count="2")
    assert (first.total, len(first.entry)) == (3, 2)
    following = urlsplit(next(link.url for link in first.link if link.relation == "next"))
    second = ok(client, following.path, **dict(parse_qsl(following.query)))
    assert (second.total, len(second.entry)) == (3, 1)
    assert not any(link.relation == "next" for link in second.link)
    assert ids(first) | ids(second) == {str(c.pk) for c in cases} and not ids(first) & ids(second)


@pytest.mark.parametrize("resource_type", ["ServiceRequest", "Task", "Consent"])
def test_count_zero_answers_the_total_without_entries(cast, fhir_for, resource_type):
    """FHIR's `_count=0`: how many match, and no resource (a client sizing a list before paging it)."""
    for _ in range(3):
        cast.new_case()
    bundle = ok(fhir_for(cast.requester), f"/fhir/{resource_type}", _count="0")
    assert (bundle.total, bundle.entry) == (3, None)
    assert [link.relation for link in bundle.link] == ["self"]


@pytest.mark.parametrize("value", ["²", "١٢", "-1", "1e3", "20 "])
def test_a_count_or_offset_that_is_not_ascii_digits_is_a_400(cast, fhir_for, value):
    client = fhir_for(cast.requester)
    for name in ("_count", "_offset"):
        response = client.get("/fhir/Task", {name: value})
        assert response.status_code == 400, (name, value, response.content)
        assert json.loads(response.content)["resourceType"] == "OperationOutcome"


def test_reads_and_searches_are_audited(cast, fhir_for, answered):
    client = fhir_for(cast.requester)
    ok(client, f"/fhir/Task/{answered.pk}")
    ok(client, "/fhir/ServiceRequest", status="completed")
    assert AuditEvent.objects.filter(action="case.view", case_id=answered.pk, summary="FHIR Task",
                                     actor_id=cast.requester.user.pk).exists()
    assert AuditEvent.objects.filter(action="case.list", summary="FHIR ServiceRequest?status=completed").exists()


# --- Tokens, scopes, errors ------------------------------------------------------------------------------

def test_token_and_scope_are_required(cast, fhir_for):
    case = cast.new_case()
    url = f"/fhir/ServiceRequest/{case.pk}"
    anonymous = Client().get(url)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"] == "Bearer"
    assert parsed(anonymous).issue[0].code == "login"
    assert Client(HTTP_AUTHORIZATION="Bearer tep_nope").get(url).status_code == 401
    write_only = fhir_for(cast.requester, scopes=["cases:write"])
    for target in (url, "/fhir/ServiceRequest"):
        refused = write_only.get(target)
        assert refused.status_code == 403 and parsed(refused).issue[0].code == "forbidden"
    token, secret = personal_token_create(user=cast.requester.user, name="Révoqué", scopes=ALL)
    revoked = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert revoked.get(url).status_code == 200
    personal_token_revoke(user=cast.requester.user, token_id=token.pk)
    assert revoked.get(url).status_code == 401


def test_errors_are_operation_outcomes(cast, fhir_for):
    client = fhir_for(cast.requester)
    cases = [
        (client.get("/fhir/ServiceRequest", {"patient": "Patient/oops"}), 400, "value"),
        (client.get("/fhir/ServiceRequest", {"status": "finished"}), 400, "value"),
        (client.get("/fhir/ServiceRequest", {"_count": "-1"}), 400, "value"),
        (client.delete("/fhir/ServiceRequest"), 405, "not-supported"),
        (client.put("/fhir/Patient/123", {}, content_type="application/fhir+json"), 405, "not-supported"),
        (client.get("/fhir/Device/123"), 404, "not-supported"),
        (client.get("/fhir/ServiceRequest", {"_format": "xml"}), 406, "not-supported"),
    ]
    for response, status, code in cases:
        assert response.status_code == status, response.content
        assert parsed(response).issue[0].code == code


def test_messages_follow_accept_language(cast):
    response = Client().get(f"/fhir/Task/{cast.new_case().pk}", HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 401 and "jeton" not in parsed(response).issue[0].diagnostics.lower()


def test_a_pending_pdf_answers_409_not_a_broken_document(cast, fhir_for):
    case = cast.case_in(S.ANSWERED)  # no on-commit capture: the PDF job never ran
    version = ReportVersion.objects.get(case=case, status="signed")
    response = fhir_for(cast.requester).get(f"/fhir/DocumentReference/{version.pk}")
    assert response.status_code == 409 and parsed(response).issue[0].code == "transient"
    assert ok(fhir_for(cast.requester), "/fhir/DocumentReference").total == 0
    assert ok(fhir_for(cast.requester), "/fhir/Composition").total == 1
