"""The FHIR facade's write side: the whole lifecycle through FHIR alone, versions (If-Match), scopes, the fixed
cast's visibility on every write, the transaction Bundle (success and rollback), the streamed attachment data;
every resource the server sends back is parsed with fhir.resources' R4B models (`parsed`)."""

import base64
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from fhir.resources.R4B.binary import Binary
from PIL import Image

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import services
from teleexpertise.cases.models import Case, ClosingSurvey
from teleexpertise.documents.models import Document
from teleexpertise.fhir import body as fhir_body
from teleexpertise.fhir.resources import NETWORK_SYSTEM, TASK_PARAMETER_SYSTEM, case_states_system
from teleexpertise.fhir.writes import (
    BIRTH_PLACE_EXTENSION,
    CONSENT_IMPOSSIBLE_REASON,
    CONSENT_INFORMATION,
    IDENTITY_STATUS_EXTENSION,
)
from teleexpertise.messaging.models import Message
from teleexpertise.patients.models import Patient
from teleexpertise.reports.models import ReportVersion
from tests.documents.hostile import jpeg_bytes
from tests.factories import nir
from tests.test_fhir import parsed

FHIR_JSON = "application/fhir+json"
S = Case.State


pytestmark = pytest.mark.usefixtures("local_documents")


# --- Building FHIR input ----------------------------------------------------------------------------------

def patient_resource(ins: str | None = None, resource_id: str = "p") -> dict:
    return {"resourceType": "Patient", "id": resource_id,
            "identifier": [{"system": "urn:oid:1.2.250.1.213.1.4.8", "value": ins or nir()}],
            "name": [{"use": "official", "family": "DURAND", "given": ["Marie", "Claire"]}],
            "gender": "female", "birthDate": "1984-05-12",
            "extension": [{"url": IDENTITY_STATUS_EXTENSION, "valueCode": "validated"},
                          {"url": BIRTH_PLACE_EXTENSION, "valueCode": "75123"}]}


def consent_resource(patient_reference: str = "#p", resource_id: str = "c", told: bool = True) -> dict:
    return {"resourceType": "Consent", "id": resource_id, "status": "active",
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                                  "code": "treatment"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
            "patient": {"reference": patient_reference}, "performer": [{"reference": patient_reference}],
            "dateTime": (timezone.now() - timedelta(minutes=5)).isoformat(),
            "extension": [{"url": CONSENT_INFORMATION, "extension": [
                {"url": "interest", "valueBoolean": True}, {"url": "practicalities", "valueBoolean": True},
                {"url": "right-to-refuse", "valueBoolean": told}]}]}


def network_performer(cast) -> dict:
    return {"type": "HealthcareService", "identifier": {"system": NETWORK_SYSTEM, "value": str(cast.network.pk)}}


def service_request(cast, status: str = "draft", **overrides) -> dict:
    resource = {"resourceType": "ServiceRequest", "status": status, "intent": "order", "priority": "routine",
                "contained": [patient_resource(), consent_resource()], "subject": {"reference": "#p"},
                "supportingInfo": [{"reference": "#c"}], "performer": [network_performer(cast)],
                "reasonCode": [{"text": "Lésion pigmentée du dos évolutive : exérèse ?"}],
                "note": [{"text": "Apparue il y a 6 mois."}]}
    resource.update(overrides)
    return resource


def document_resource(related: str, data: bytes, *, kind: str = "photo", title: str = "dos.jpg",
                      category: str | None = None) -> dict:
    resource = {"resourceType": "DocumentReference", "status": "current",
                "type": {"coding": [{"system": "https://teleexpertise.fr/fhir/CodeSystem/document-kind",
                                     "code": kind}]},
                "context": {"related": [{"reference": related}]},
                "content": [{"attachment": {"contentType": "image/jpeg", "title": title,
                                            "data": base64.b64encode(data).decode()}}]}
    if category:
        resource["category"] = [{"coding": [{"system": "https://teleexpertise.fr/fhir/CodeSystem/attached-to",
                                             "code": category}]}]
    return resource


def parameter(code: str, **value) -> dict:
    return {"type": {"coding": [{"system": TASK_PARAMETER_SYSTEM, "code": code}]}, **value}


# --- Calling ----------------------------------------------------------------------------------------------

def post(client, url: str, resource: dict, **extra):
    return client.post(url, json.dumps(resource), content_type=FHIR_JSON, **extra)


def read(client, url: str) -> tuple[dict, str]:
    """The resource as JSON (checked with its R4B model) and its ETag."""
    response = client.get(url)
    assert response.status_code == 200, response.content
    parsed(response)
    return json.loads(response.content), response.get("ETag", "")


def searched_task(client, case_id) -> dict:
    """The Task of this case as a search answers it (read from the case's row, not as `read` builds it)."""
    response = client.get("/fhir/Task", {"_count": "100"})
    assert response.status_code == 200, response.content
    parsed(response)
    return next(e["resource"] for e in json.loads(response.content)["entry"] if e["resource"]["id"] == str(case_id))


def put(client, url: str, resource: dict, etag: str):
    return client.put(url, json.dumps(resource), content_type=FHIR_JSON, HTTP_IF_MATCH=etag)


def change_task(client, case_id, change, expected: int = 200) -> dict:
    """Read the Task, let `change` edit it, send it back with the ETag read; the answer's resource."""
    task, etag = read(client, f"/fhir/Task/{case_id}")
    change(task)
    response = put(client, f"/fhir/Task/{case_id}", task, etag)
    assert response.status_code == expected, response.content
    return json.loads(parsed(response).model_dump_json()) if response.content else {}


def issues(response) -> list:
    return parsed(response).issue


# --- The whole lifecycle through FHIR alone ----------------------------------------------------------------

def test_the_whole_lifecycle_runs_through_the_fhir_api_alone(cast, fhir_for, django_capture_on_commit_callbacks):
    requester, expert = fhir_for(cast.requester), fhir_for(cast.expert)

    created = post(requester, "/fhir/ServiceRequest", service_request(cast))
    assert created.status_code == 201, created.content
    request = parsed(created)
    case_id = request.id
    assert created["Location"].endswith(f"/fhir/ServiceRequest/{case_id}")
    assert created["ETag"] == f'W/"{request.meta.versionId}"'
    assert request.status == "draft" and request.subject.reference.startswith("Patient/")
    case = Case.objects.select_related("consent", "patient").get(pk=case_id)
    assert (case.network_id, case.consent.status, case.patient.identity_status) == (
        cast.network.pk, "given", "validated")
    assert [r.reference for r in request.supportingInfo] == [f"Consent/{case.consent_id}"]

    photo = jpeg_bytes()
    uploaded = post(requester, "/fhir/DocumentReference", document_resource(f"ServiceRequest/{case_id}", photo))
    assert uploaded.status_code == 201, uploaded.content
    attachment = parsed(uploaded)
    assert attachment.content[0].attachment.url == f"Binary/{attachment.id}"
    assert attachment.context.related[0].reference == f"ServiceRequest/{case_id}"
    stored = Document.objects.get(pk=attachment.id)
    raw = requester.get(f"/fhir/Binary/{attachment.id}")
    assert raw.status_code == 200 and raw["Content-Type"] == "image/jpeg"
    content = b"".join(raw.streaming_content)
    assert len(content) == stored.size and Image.open(io.BytesIO(content)).size == (64, 48)
    as_json = requester.get(f"/fhir/Binary/{attachment.id}", HTTP_ACCEPT=FHIR_JSON)
    binary = Binary.model_validate_json(b"".join(as_json.streaming_content))
    assert binary.data == content and binary.contentType == "image/jpeg"

    sent = change_request(requester, case_id, status="active")
    assert sent["status"] == "active"
    task, _etag = read(expert, f"/fhir/Task/{case_id}")  # the pool sees it
    assert task["status"] == "requested" and task["owner"]["identifier"]["value"] == str(cast.network.pk)

    def claim(task):
        task["status"], task["owner"] = "received", {"reference": f"Practitioner/{cast.expert.pk}"}

    assert change_task(expert, case_id, claim)["status"] == "received"

    def ask(task):
        task["status"], task["statusReason"] = "on-hold", {"text": "Une photo de près ?"}

    assert change_task(expert, case_id, ask)["status"] == "on-hold"
    seen, _etag = read(requester, f"/fhir/Task/{case_id}")
    assert seen["statusReason"]["text"] == "Une photo de près ?"
    closer = post(requester, "/fhir/DocumentReference", document_resource(
        f"ServiceRequest/{case_id}", jpeg_bytes(), title="près.jpg", category="information"))
    assert closer.status_code == 201, closer.content

    def answer(task):
        task["status"] = "received"
        task["input"] = [parameter("information-response", valueString="Photo de près jointe.")]

    assert change_task(requester, case_id, answer)["status"] == "received"

    def accept(task):
        task["status"] = "accepted"
        task["restriction"] = {"period": {"end": (timezone.now() + timedelta(days=2)).isoformat()}}
        task["input"] = [parameter("patient-informed", valueBoolean=True)]

    accepted = change_task(expert, case_id, accept)
    assert accepted["status"] == "accepted" and accepted["restriction"]["period"]["end"]

    for client, resource in ((expert, {"basedOn": [{"reference": f"ServiceRequest/{case_id}"}]}),
                             (requester, {"partOf": [{"reference": f"Task/{case_id}"}]})):
        text = "Bien reçu." if client is expert else "Merci !"
        message = post(client, "/fhir/Communication", {"resourceType": "Communication", "status": "completed",
                                                       **resource, "payload": [{"contentString": text}]})
        assert message.status_code == 201, message.content
        assert parsed(message).payload[0].contentString == text
    thread = parsed(requester.get("/fhir/Communication", {"based-on": f"ServiceRequest/{case_id}"}))
    assert [e.resource.payload[0].contentString for e in thread.entry] == [
        "Une photo de près ?", "Photo de près jointe.", "Bien reçu.", "Merci !"]
    assert thread.entry[2].resource.sender.reference == f"Practitioner/{cast.expert.pk}"
    assert thread.entry[2].resource.recipient[0].reference == f"Practitioner/{cast.requester.pk}"

    def write(task):
        task["status"] = "in-progress"
        task["output"] = [parameter("act-at", valueDateTime=timezone.now().isoformat()),
                          parameter("answer", valueString="Naevus bénin."),
                          parameter("conclusion", valueString="Surveillance annuelle.")]

    drafted = change_task(expert, case_id, write)
    assert drafted["status"] == "in-progress"
    assert {o["type"]["coding"][0]["code"] for o in drafted["output"]} == {"act-at", "answer", "conclusion",
                                                                         "orientation"}
    assert "output" not in read(requester, f"/fhir/Task/{case_id}")[0]  # the draft is the expert's own
    for client in (expert, requester):  # a search shows each caller the Task its read shows
        assert searched_task(client, case_id) == read(client, f"/fhir/Task/{case_id}")[0]

    with django_capture_on_commit_callbacks(execute=True):  # the PDF job runs once the signature commits
        signed = change_task(expert, case_id, lambda task: task.update(status="completed"))
    assert signed["status"] == "completed"
    report = next(o for o in signed["output"] if o["type"]["coding"][0]["code"] == "report")
    for client in (expert, requester):
        assert searched_task(client, case_id) == read(client, f"/fhir/Task/{case_id}")[0]
    composition, _etag = read(requester, f"/fhir/{report['valueReference']['reference']}")
    assert "Naevus bénin." in json.dumps(composition, ensure_ascii=False)
    documents = parsed(requester.get("/fhir/DocumentReference", {"related": f"ServiceRequest/{case_id}"}))
    assert documents.total == 3  # the two photos and the signed report (its PDF embedded)
    assert {e.resource.content[0].attachment.contentType for e in documents.entry} == {"image/jpeg",
                                                                                       "application/pdf"}

    def close(task):
        task["businessStatus"] = {"coding": [{"system": case_states_system(), "code": "closed"}]}
        task["input"] = [parameter("closing-usefulness", valueCode="yes"),
                         parameter("closing-avoided", valueCode="visit")]

    closed = change_task(requester, case_id, close)
    assert closed["status"] == "completed" and closed["businessStatus"]["coding"][0]["code"] == "closed"
    assert ClosingSurvey.objects.get(case_id=case_id).avoided_visit is True

    # Every step was audited as the web pages audit it, under the token's user.
    actions = set(AuditEvent.objects.filter(case_id=case_id).values_list("action", flat=True))
    assert {"case.create", "consent.record", "document.add", "document.download", "case.submit", "case.claim",
            "case.request_information", "case.provide_information", "case.accept", "message.create",
            "report.save_draft", "report.sign", "case.close"} <= actions
    assert AuditEvent.objects.filter(case_id=case_id, action="case.claim", actor_id=cast.expert.user.pk).exists()


def change_request(client, case_id, **changes) -> dict:
    resource, etag = read(client, f"/fhir/ServiceRequest/{case_id}")
    resource.update(changes)
    response = put(client, f"/fhir/ServiceRequest/{case_id}", resource, etag)
    assert response.status_code == 200, response.content
    return json.loads(parsed(response).model_dump_json())


def test_expert_declines_transfers_and_the_requester_withdraws(cast, fhir_for):
    expert, requester = fhir_for(cast.expert), fhir_for(cast.requester)
    declined = cast.case_in(S.TAKEN)
    refused = change_task(expert, declined.pk, lambda t: t.update(status="rejected"), expected=422)
    assert refused["issue"][0]["expression"] == ["Task.statusReason"]
    rejected = change_task(expert, declined.pk, lambda t: t.update(status="rejected",
                                                                    statusReason={"text": "Hors de mon champ"}))
    assert rejected["status"] == "rejected" and rejected["statusReason"]["text"] == "Hors de mon champ"

    moved = cast.case_in(S.TAKEN)
    change_task(expert, moved.pk, lambda t: t.update(owner={"reference": f"Practitioner/{cast.colleague.pk}"},
                                                     statusReason={"text": "Plutôt pour ma collègue."}),
                expected=204)  # no longer the expert's: nothing of it is sent back
    assert Case.objects.get(pk=moved.pk).expert_id == cast.colleague.pk

    to_pool = cast.case_in(S.TAKEN)
    pooled = change_task(expert, to_pool.pk, lambda t: t.update(owner=network_performer(cast), status="requested",
                                                                statusReason={"text": "Pour l'équipe."}))
    assert pooled["status"] == "requested"  # the expert is a member: the pool still shows it to them
    assert pooled["owner"]["identifier"]["value"] == str(cast.network.pk)
    dispatcher = fhir_for(cast.dispatcher)  # the case is back in the pool: its dispatcher assigns it
    assigned = change_task(dispatcher, to_pool.pk, lambda t: t.update(
        owner={"reference": f"Practitioner/{cast.colleague.pk}"}, status="received"), expected=204)
    assert assigned == {} and Case.objects.get(pk=to_pool.pk).expert_id == cast.colleague.pk

    withdrawn = cast.case_in(S.SUBMITTED)
    task = change_task(requester, withdrawn.pk, lambda t: t.update(status="cancelled",
                                                                    statusReason={"text": "Patient guéri"}))
    assert task["status"] == "cancelled"
    assert read(requester, f"/fhir/ServiceRequest/{withdrawn.pk}")[0]["status"] == "revoked"


def test_service_errors_name_the_fhir_element_in_the_callers_language(cast, fhir_for):
    expert = fhir_for(cast.expert)
    case = cast.case_in(S.TAKEN)

    def too_late(task):
        task["status"] = "accepted"
        task["restriction"] = {"period": {"end": (timezone.now() + timedelta(days=9)).isoformat()}}
        task["input"] = [parameter("patient-informed", valueBoolean=True)]

    refused = change_task(expert, case.pk, too_late, expected=422)
    assert refused["issue"][0]["expression"] == ["Task.restriction.period.end"]
    assert "7 jours" in refused["issue"][0]["diagnostics"]
    task, etag = read(expert, f"/fhir/Task/{case.pk}")
    too_late(task)
    english = expert.put(f"/fhir/Task/{case.pk}", json.dumps(task), content_type=FHIR_JSON, HTTP_IF_MATCH=etag,
                         HTTP_ACCEPT_LANGUAGE="en")
    assert "7 days" in issues(english)[0].diagnostics
    # A workflow refusal is 409 with the table's sentence; a change the workflow does not know is 422.
    not_theirs = change_task(expert, case.pk, lambda t: t.update(status="cancelled", statusReason={"text": "x"}),
                             expected=409)
    assert not_theirs["issue"][0]["code"] == "business-rule" and "rôle" in not_theirs["issue"][0]["diagnostics"]
    unknown = change_task(expert, case.pk, lambda t: t.update(status="completed"), expected=422)
    assert unknown["issue"][0]["expression"] == ["Task.status"]
    early = change_task(fhir_for(cast.requester), cast.case_in(S.ACCEPTED).pk, lambda t: t.update(
        businessStatus={"coding": [{"system": case_states_system(), "code": "closed"}]}), expected=422)
    assert early["issue"][0]["expression"] == ["Task.businessStatus"]
    assert Case.objects.get(pk=case.pk).state == S.TAKEN

    requester = fhir_for(cast.requester)
    bad = service_request(cast)
    bad["contained"][0]["identifier"][0]["value"] = "123"
    bad["contained"][1] = consent_resource(told=False)
    response = post(requester, "/fhir/ServiceRequest", bad)
    assert response.status_code == 422
    assert {e for i in issues(response) for e in i.expression} == {"ServiceRequest.contained[0].identifier",
                                                                  "ServiceRequest.contained[1].extension"}
    structure = post(requester, "/fhir/ServiceRequest", {"resourceType": "ServiceRequest", "intent": "order"})
    assert structure.status_code == 400 and issues(structure)[0].code == "structure"
    assert not Case.objects.filter(requester=cast.requester, state=S.DRAFT).exists()


def test_a_consent_that_could_not_be_collected_is_read_as_the_read_side_serves_it(cast, fhir_for):
    consent = consent_resource()
    del consent["performer"]
    consent["extension"].append({"url": CONSENT_IMPOSSIBLE_REASON, "valueCodeableConcept": {
        "coding": [{"system": "https://teleexpertise.fr/fhir/CodeSystem/consent-impossible-reason",
                    "code": "emergency", "display": "Urgence"}], "text": "Patient inconscient"}})
    resource = service_request(cast, status="active", contained=[patient_resource(), consent])
    response = post(fhir_for(cast.requester), "/fhir/ServiceRequest", resource)
    assert response.status_code == 201, response.content
    recorded = Case.objects.select_related("consent").get(pk=parsed(response).id).consent
    assert (recorded.status, recorded.impossible_reason, recorded.impossible_detail) == (
        "impossible", "emergency", "Patient inconscient")
    refused = consent_resource()
    refused["status"] = "rejected"
    draft = post(fhir_for(cast.requester), "/fhir/ServiceRequest",
                 service_request(cast, contained=[patient_resource(), refused]))
    assert Case.objects.select_related("consent").get(pk=parsed(draft).id).consent.status == "refused"
    sent = change_task(fhir_for(cast.requester), parsed(draft).id, lambda t: t.update(status="requested"),
                       expected=409)
    assert "refusé" in sent["issue"][0]["diagnostics"]


def test_a_placer_identifier_makes_creation_idempotent(cast, fhir_for):
    requester = fhir_for(cast.requester)
    resource = service_request(cast, status="active",
                               identifier=[{"system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}])
    first = post(requester, "/fhir/ServiceRequest", resource)
    again = post(requester, "/fhir/ServiceRequest", resource)
    assert (first.status_code, again.status_code) == (201, 200)
    assert parsed(first).id == parsed(again).id and parsed(first).status == "active"
    assert Case.objects.filter(requester=cast.requester).count() == 1


# --- Versions --------------------------------------------------------------------------------------------

def test_a_stale_if_match_gets_412_and_a_missing_one_428(cast, fhir_for):
    expert = fhir_for(cast.expert)
    case = cast.case_in(S.TAKEN)
    task, etag = read(expert, f"/fhir/Task/{case.pk}")
    assert etag == f'W/"{task["meta"]["versionId"]}"'
    post(fhir_for(cast.requester), "/fhir/Communication", {
        "resourceType": "Communication", "status": "completed",
        "basedOn": [{"reference": f"ServiceRequest/{case.pk}"}], "payload": [{"contentString": "Une précision."}]})
    task.update(status="on-hold", statusReason={"text": "Photo ?"})
    stale = put(expert, f"/fhir/Task/{case.pk}", task, etag)
    assert stale.status_code == 412 and issues(stale)[0].code == "conflict"
    missing = expert.put(f"/fhir/Task/{case.pk}", json.dumps(task), content_type=FHIR_JSON)
    assert missing.status_code == 428 and issues(missing)[0].code == "required"
    assert Case.objects.get(pk=case.pk).state == S.TAKEN
    fresh = read(expert, f"/fhir/Task/{case.pk}")[1]
    assert fresh != etag and put(expert, f"/fhir/Task/{case.pk}", task, fresh).status_code == 200
    assert read(expert, f"/fhir/ServiceRequest/{case.pk}")[1] == read(expert, f"/fhir/Task/{case.pk}")[1]


# --- Scopes and the fixed cast ---------------------------------------------------------------------------

def test_writes_need_their_scope_and_change_nothing_without_it(cast, fhir_for):
    reader = fhir_for(cast.requester, scopes=["cases:read"])
    refused = post(reader, "/fhir/ServiceRequest", service_request(cast))
    assert refused.status_code == 403 and "cases:write" in issues(refused)[0].diagnostics
    assert not Case.objects.exists()

    case = cast.case_in(S.ACCEPTED)
    no_report = fhir_for(cast.expert, scopes=["cases:read", "cases:write"])

    def write(task):
        task["status"] = "in-progress"
        task["output"] = [parameter("act-at", valueDateTime=timezone.now().isoformat()),
                          parameter("answer", valueString="Bénin.")]

    response = change_task(no_report, case.pk, write, expected=403)
    assert "reports:write" in response["issue"][0]["diagnostics"]
    assert not ReportVersion.objects.filter(case=case).exists()
    report_only = fhir_for(cast.expert, scopes=["cases:read", "reports:write"])
    assert change_task(report_only, case.pk, write)["status"] == "in-progress"
    pooled = cast.case_in(S.SUBMITTED)
    change_task(report_only, pooled.pk, lambda t: t.update(status="received"), expected=403)


def test_outsider_gets_404_on_every_write(cast, fhir_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        case = cast.case_in(S.ANSWERED)
    draft = cast.case_in(S.DRAFT)
    message = services.case_post_message(actor=cast.actor(cast.requester), case_id=case.pk, body="Merci.")
    outsider = fhir_for(cast.outsider)
    photo = document_resource(f"ServiceRequest/{case.pk}", jpeg_bytes())
    calls = [
        put(outsider, f"/fhir/Task/{case.pk}", {"resourceType": "Task", "id": str(case.pk), "status": "completed",
                                                "intent": "order"}, 'W/"1"'),
        put(outsider, f"/fhir/ServiceRequest/{draft.pk}", {**service_request(cast), "id": str(draft.pk)}, 'W/"1"'),
        post(outsider, "/fhir/Communication", {"resourceType": "Communication", "status": "completed",
                                               "basedOn": [{"reference": f"ServiceRequest/{case.pk}"}],
                                               "payload": [{"contentString": "Bonjour"}]}),
        post(outsider, "/fhir/DocumentReference", photo),
    ]
    for response in calls:
        assert response.status_code == 404, response.content
        assert issues(response)[0].code == "not-found"
    document = Document.objects.create(
        case=case, kind="photo", category="photo", media_type="image/jpeg", name="x.jpg", size=1, sha256="0" * 64,
        storage_key="aa/bb/nothing", key_id="test-1", wrapped_key=b"x", uploaded_by=cast.requester)
    for url in (f"/fhir/Binary/{document.pk}", f"/fhir/DocumentReference/{document.pk}",
                f"/fhir/Communication/{message.pk}"):
        assert outsider.get(url).status_code == 404, url
    assert parsed(outsider.get("/fhir/Communication")).total == 0
    assert not Message.objects.filter(case=case, author=cast.outsider).exists()
    assert Document.objects.filter(case=case).count() == 1
    assert Case.objects.get(pk=draft.pk).question == draft.question


def test_a_pooled_case_is_claimed_once(cast, fhir_for):
    case = cast.case_in(S.SUBMITTED)
    expert, colleague = fhir_for(cast.expert), fhir_for(cast.colleague)
    task, etag = read(colleague, f"/fhir/Task/{case.pk}")
    change_task(expert, case.pk, lambda t: t.update(status="received"))
    task["status"] = "received"
    late = put(colleague, f"/fhir/Task/{case.pk}", task, etag)
    assert late.status_code == 404  # taken: no longer in the colleague's pool, so not theirs to see


# --- Transaction Bundle ----------------------------------------------------------------------------------

def _bundle(cast, *documents: bytes) -> dict:
    patient, consent = patient_resource(resource_id="p1"), consent_resource("urn:uuid:patient", "c1")
    request = service_request(cast, status="active", contained=[], subject={"reference": "urn:uuid:patient"},
                              supportingInfo=[{"reference": "urn:uuid:consent"}])
    entries = [("urn:uuid:patient", patient), ("urn:uuid:consent", consent), ("urn:uuid:request", request)]
    entries += [(f"urn:uuid:{uuid.uuid4()}", document_resource("urn:uuid:request", data, title=f"photo-{n}.jpg"))
                for n, data in enumerate(documents)]
    return {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": url, "resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}
        for url, resource in entries]}


def _stored_files(settings) -> list[Path]:
    root = Path(settings.DOCUMENT_ROOT)
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def test_a_transaction_bundle_makes_the_request_with_its_patient_consent_and_documents(cast, fhir_for, settings):
    response = post(fhir_for(cast.requester), "/fhir/", _bundle(cast, jpeg_bytes(), jpeg_bytes()))
    assert response.status_code == 200, response.content
    bundle = parsed(response)
    assert bundle.type == "transaction-response"
    assert [e.response.status for e in bundle.entry] == ["201 Created"] * 5
    case = Case.objects.select_related("patient", "consent").get(requester=cast.requester)
    assert case.state == S.SUBMITTED and case.consent.status == "given"
    assert [e.response.location for e in bundle.entry[:3]] == [
        f"Patient/{case.patient_id}", f"Consent/{case.consent_id}", f"ServiceRequest/{case.pk}"]
    assert bundle.entry[2].response.etag == read(fhir_for(cast.requester), f"/fhir/ServiceRequest/{case.pk}")[1]
    assert sorted(Document.objects.filter(case=case).values_list("name", flat=True)) == ["photo-0.jpg",
                                                                                         "photo-1.jpg"]
    assert len(_stored_files(settings)) == 2


def test_a_bad_document_rolls_the_whole_bundle_back(cast, fhir_for, settings):
    ins = nir()
    bundle = _bundle(cast, jpeg_bytes(), b"MZ\x90\x00 not a photo")
    bundle["entry"][0]["resource"]["identifier"][0]["value"] = ins
    response = post(fhir_for(cast.requester), "/fhir/", bundle)
    assert response.status_code == 422, response.content
    issue = issues(response)[0]
    assert issue.expression == ["Bundle.entry[4].resource.content[0].attachment.data"]
    assert issue.diagnostics.startswith("Bundle.entry[4] (DocumentReference) : ")
    assert not Case.objects.exists() and not Document.objects.exists()
    assert not Patient.objects.filter(ins_nir=ins).exists()
    assert _stored_files(settings) == []  # the first photo's file went with the rollback
    assert AuditEvent.objects.filter(action="fhir.transaction_refused").exists()


def test_a_bundle_entry_error_names_the_entry(cast, fhir_for):
    bundle = _bundle(cast)
    bundle["entry"][1]["resource"]["dateTime"] = (timezone.now() + timedelta(days=2)).isoformat()
    response = post(fhir_for(cast.requester), "/fhir/", bundle)
    assert response.status_code == 422
    assert issues(response)[0].expression == ["Bundle.entry[1].resource.dateTime"]
    del bundle["entry"][1]
    bundle["entry"][1]["resource"]["supportingInfo"] = []
    response = post(fhir_for(cast.requester), "/fhir/", bundle)
    assert response.status_code == 422 and not Case.objects.exists()


# --- The streamed body -----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
def test_attachment_data_is_decoded_across_any_chunk_boundary(chunk, settings):
    data = bytes(range(256)) * 40
    encoded = base64.encodebytes(data).decode().replace("/", "\\/")  # line breaks and escaped slashes, as sent
    document = {"resourceType": "DocumentReference", "description": 'a "data": \\"quoted\\" text',
                "content": [{"attachment": {"data": encoded, "title": "data"}}]}
    raw = json.dumps(document).replace("\\\\/", "\\/").encode()
    reader = fhir_body._Reader()
    for start in range(0, len(raw), chunk):
        reader.feed(raw[start:start + chunk])
    body = fhir_body.Body(reader.resource(), reader.spools)
    token = body.resource["content"][0]["attachment"]["data"]
    assert body.resource["description"] == 'a "data": \\"quoted\\" text'
    assert body.resource["content"][0]["attachment"]["title"] == "data"
    spool = body.take(token)
    with spool.open() as plain:
        assert plain.read() == data
    spool.discard()
    assert body.take(token) is None


def test_invalid_attachment_data_is_refused_and_spools_nothing(cast, fhir_for, settings):
    case = cast.case_in(S.DRAFT)
    fake = document_resource(f"ServiceRequest/{case.pk}", b"MZ\x90\x00 not a photo")
    refused = post(fhir_for(cast.requester), "/fhir/DocumentReference", fake)
    assert refused.status_code == 422 and issues(refused)[0].expression == [
        "DocumentReference.content[0].attachment.data"]
    english = post(fhir_for(cast.requester), "/fhir/DocumentReference", fake, HTTP_ACCEPT_LANGUAGE="en")
    assert english.status_code == 422 and issues(english)[0].diagnostics != issues(refused)[0].diagnostics
    assert AuditEvent.objects.filter(action="document.refused", case_id=case.pk).count() == 2
    broken = document_resource(f"ServiceRequest/{case.pk}", b"")
    broken["content"][0]["attachment"]["data"] = "not*base64"
    response = post(fhir_for(cast.requester), "/fhir/DocumentReference", broken)
    assert response.status_code == 400 and issues(response)[0].code == "structure"
    settings.DOCUMENT_MAX_FILE_BYTES = 1000
    large = post(fhir_for(cast.requester), "/fhir/DocumentReference",
                 document_resource(f"ServiceRequest/{case.pk}", b"x" * 2000))
    assert large.status_code == 413
    assert _stored_files(settings) == [] and not Document.objects.exists()


def test_document_references_are_searched_by_last_update_across_reports_and_attachments(cast, fhir_for):
    """An attachment last changed when uploaded (a signed report when signed): one `_lastUpdated` for both."""
    client = fhir_for(cast.requester)
    assert post(client, "/fhir/", _bundle(cast, jpeg_bytes())).status_code == 200
    document = Document.objects.get(case__requester=cast.requester)
    day = document.uploaded_at.astimezone(ZoneInfo("Europe/Paris")).date()

    def found(value):
        bundle = parsed(client.get("/fhir/DocumentReference", {"_lastUpdated": value}))
        return [entry.resource.id for entry in bundle.entry or ()]

    assert found(f"eq{day.isoformat()}") == [str(document.pk)]
    assert found(f"lt{day.isoformat()}") == [] and found(f"gt{day.isoformat()}") == []
    assert client.get("/fhir/DocumentReference", {"_lastUpdated": "hier"}).status_code == 400


# --- Malformed input the models trip on ----------------------------------------------------------------------

def test_a_contained_resource_of_no_type_is_a_400_not_a_crash(cast, fhir_for):
    """fhir_core's own check raises TypeError on a resourceType that is not text: still the caller's error."""
    resource = service_request(cast)
    resource["contained"][0]["resourceType"] = ["Patient"]
    response = post(fhir_for(cast.requester), "/fhir/ServiceRequest", resource)
    assert response.status_code == 400, response.content
    assert parsed(response).issue[0].expression == ["ServiceRequest"]
    assert not Case.objects.filter(requester=cast.requester).exists()


def test_a_document_whose_request_is_malformed_is_a_400(cast, fhir_for):
    case = cast.case_in(S.TAKEN)
    resource = document_resource(f"ServiceRequest/{case.pk}", jpeg_bytes())
    resource["context"]["related"] = [[{"reference": f"ServiceRequest/{case.pk}"}]]
    response = post(fhir_for(cast.requester), "/fhir/DocumentReference", resource)
    assert response.status_code == 400, response.content
    assert not Document.objects.filter(case=case).exists()


def test_an_audit_event_id_in_other_digits_is_a_404(cast, fhir_for):
    assert fhir_for(cast.requester).get("/fhir/AuditEvent/\u00b2").status_code == 404
