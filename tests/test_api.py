"""The REST API: the whole lifecycle through it alone, the fixed cast's visibility by token, tokens and scopes,
the error shape."""

import io
import time
import uuid
from datetime import timedelta

import pypdf
import pytest
from django.test import Client
from django.utils import timezone
from lxml import etree

from teleexpertise.api.models import ApiToken
from teleexpertise.api.services import api_client_create, personal_token_create
from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.models import Case, ClosingSurvey
from teleexpertise.directory.models import Network
from teleexpertise.documents.models import Document
from tests.conftest import use_redis_cache
from tests.documents.hostile import jpeg_bytes
from tests.factories import make_professional, nir

ALL = ["cases:read", "cases:write", "reports:write"]


pytestmark = pytest.mark.usefixtures("local_documents")


def _new_case_body(cast, **overrides) -> dict:
    body = {
        "patient": {"ins_nir": nir(), "birth_name": "DURAND", "first_names": "Marie Claire", "sex": "F",
                    "birth_date": "1984-05-12", "birth_place_code": "75123", "identity_status": "validated"},
        "consent": {"status": "given", "given_by": "patient",
                    "informed_at": (timezone.now() - timedelta(minutes=5)).isoformat(),
                    "explained_interest": True, "explained_practicalities": True, "explained_right_to_refuse": True},
        "question": "Lésion pigmentée du dos évolutive : exérèse ?",
        "context": "Apparue il y a 6 mois.",
        "network_id": str(cast.network.pk),
    }
    body.update(overrides)
    return body


def _post(client, url, body=None, **extra):
    return client.post(url, body or {}, content_type="application/json", **extra)


def test_the_whole_lifecycle_runs_through_the_rest_api_alone(cast, api_for, django_capture_on_commit_callbacks):
    requester, expert = api_for(cast.requester), api_for(cast.expert)

    created = _post(requester, "/api/cases", _new_case_body(cast))
    assert created.status_code == 201, created.json()
    case_id = created.json()["id"]
    assert created.json()["state"] == "draft" and created.json()["consent_status"] == "given"
    assert "submit" in created.json()["actions"]

    photo = io.BytesIO(jpeg_bytes())
    photo.name = "dos.jpg"
    uploaded = requester.post(f"/api/cases/{case_id}/documents", {"file": photo, "kind": "photo"})
    assert uploaded.status_code == 201, uploaded.json()
    assert uploaded.json()["category"] == "photo"

    assert _post(requester, f"/api/cases/{case_id}/submit").json()["state"] == "submitted"
    pool = expert.get("/api/cases", {"role": "pool"}).json()
    assert [row["id"] for row in pool["items"]] == [case_id]

    assert _post(expert, f"/api/cases/{case_id}/claim").json()["state"] == "taken"
    message = _post(expert, f"/api/cases/{case_id}/messages", {"body": "Bien reçu, je regarde."})
    assert message.status_code == 201
    due = (timezone.now() + timedelta(days=2)).isoformat()
    accepted = _post(expert, f"/api/cases/{case_id}/accept", {"due_at": due, "patient_informed": True})
    assert accepted.json()["state"] == "accepted", accepted.json()

    draft = expert.put(f"/api/cases/{case_id}/report", {
        "act_at": timezone.now().isoformat(), "answer": "Naevus bénin.", "conclusion": "Surveillance annuelle."},
        content_type="application/json")
    assert draft.status_code == 200, draft.json()
    assert draft.json()["status"] == "draft"
    with django_capture_on_commit_callbacks(execute=True):  # the PDF job runs once the signature commits
        signed = _post(expert, f"/api/cases/{case_id}/report/sign")
    assert signed.status_code == 200 and signed.json()["status"] == "signed", signed.json()
    version_id = signed.json()["id"]

    case = requester.get(f"/api/cases/{case_id}").json()
    assert case["state"] == "answered" and case["reports"][0]["pdf_ready"] is True
    assert [d["name"] for d in case["documents"]] == ["dos.jpg"]
    pdf = requester.get(f"/api/reports/{version_id}/pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert "Naevus bénin." in pypdf.PdfReader(io.BytesIO(pdf.content)).pages[0].extract_text()
    cda = requester.get(f"/api/reports/{version_id}/cda")
    assert cda.status_code == 200
    assert etree.fromstring(cda.content).tag == "{urn:hl7-org:v3}ClinicalDocument"

    thread = requester.get(f"/api/cases/{case_id}/messages").json()
    assert "Bien reçu, je regarde." in [m["body"] for m in thread]
    closed = _post(requester, f"/api/cases/{case_id}/close", {"usefulness": "yes", "avoided": ["visit"]})
    assert closed.json()["state"] == "closed", closed.json()
    assert ClosingSurvey.objects.get(case_id=case_id).avoided_visit is True
    # Every step was audited as the web pages audit it, under the token's user.
    actions = set(AuditEvent.objects.filter(case_id=case_id).values_list("action", flat=True))
    assert {"case.create", "document.add", "case.submit", "case.claim", "case.accept", "report.sign",
            "report.pdf_download", "report.cda_download", "case.view", "case.close"} <= actions
    assert AuditEvent.objects.filter(case_id=case_id, action="case.claim", actor_id=cast.expert.user.pk).exists()


def test_expert_decline_request_information_and_transfer(cast, api_for):
    expert, requester = api_for(cast.expert), api_for(cast.requester)
    asked = cast.case_in("taken")
    response = _post(expert, f"/api/cases/{asked.pk}/request-information", {"question": "Une photo de près ?"})
    assert response.json()["state"] == "awaiting_information"
    answered = _post(requester, f"/api/cases/{asked.pk}/provide-information", {"answer": "Jointe."})
    assert answered.json()["state"] == "taken"

    declined = cast.case_in("taken")
    empty = _post(expert, f"/api/cases/{declined.pk}/decline", {"reason": "  "})
    assert empty.status_code == 422 and list(empty.json()["fields"]) == ["reason"]
    assert _post(expert, f"/api/cases/{declined.pk}/decline", {"reason": "Hors champ"}).json()["state"] == "declined"

    moved = cast.case_in("taken")
    transferred = _post(expert, f"/api/cases/{moved.pk}/transfer",
                        {"note": "Plutôt pour ma collègue.", "expert_id": str(cast.colleague.pk)})
    assert transferred.status_code == 204  # no longer the expert's case: nothing of it is sent back
    assert Case.objects.get(pk=moved.pk).expert_id == cast.colleague.pk


# --- The fixed cast by token ----------------------------------------------------------------------------

def _case_urls(case, version_id) -> list[tuple[str, str]]:
    base = f"/api/cases/{case.pk}"
    return [("get", base), ("get", f"{base}/messages"), ("post", f"{base}/messages"), ("post", f"{base}/submit"),
            ("post", f"{base}/claim"), ("post", f"{base}/decline"), ("post", f"{base}/accept"),
            ("post", f"{base}/request-information"), ("post", f"{base}/provide-information"),
            ("post", f"{base}/transfer"), ("post", f"{base}/withdraw"), ("post", f"{base}/close"),
            ("post", f"{base}/documents"), ("put", f"{base}/report"), ("post", f"{base}/report/sign"),
            ("get", f"/api/reports/{version_id}/pdf"), ("get", f"/api/reports/{version_id}/cda")]


_VALID_BODIES = {"messages": {"body": "x"}, "decline": {"reason": "x"}, "request-information": {"question": "x"},
                 "provide-information": {"answer": "x"}, "transfer": {"note": "x", "network_id": None},
                 "withdraw": {"reason": "x"}, "close": {"usefulness": "yes", "avoided": ["none"]},
                 "report": {"act_at": "2026-01-05T10:00:00+01:00"}, "accept": {
                     "due_at": "2030-01-01T10:00:00+01:00", "patient_informed": True}}


def test_outsider_gets_404_on_every_case_resource(cast, api_for, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        case = cast.case_in("answered")
    version_id = case.report_versions.get().pk
    outsider = api_for(cast.outsider)
    for method, url in _case_urls(case, version_id):
        body = _VALID_BODIES.get(url.rsplit("/", 1)[-1], {})
        response = getattr(outsider, method)(url, body, content_type="application/json")
        assert response.status_code == 404, (method, url, response.content)
        assert response.json()["code"] == "not_found"
    assert outsider.get("/api/cases").json()["count"] == 0
    # The requester still sees it: the 404 is about who asks, not a broken URL.
    assert api_for(cast.requester).get(f"/api/cases/{case.pk}").status_code == 200


def test_lists_never_include_others_cases(cast, api_for):
    mine = cast.case_in("submitted")
    addressed = cast.new_case(to_network=False)  # to the expert by name
    draft = cast.case_in("draft")
    ids = {role: {row["id"] for row in api_for(getattr(cast, role)).get("/api/cases", {"limit": 100})
                  .json()["items"]} for role in ("requester", "expert", "colleague", "outsider")}
    assert ids["requester"] == {str(mine.pk), str(addressed.pk), str(draft.pk)}
    assert ids["expert"] == {str(mine.pk), str(addressed.pk)}  # the pool and what is addressed; not drafts
    assert ids["colleague"] == {str(mine.pk)}
    assert ids["outsider"] == set()
    searched = api_for(cast.outsider).get("/api/cases", {"q": "DURAND"}).json()
    assert searched["count"] == 0 and searched["items"] == []


def test_list_filters_and_pagination(cast, api_for):
    cases = [cast.case_in("submitted") for _ in range(3)]
    cast.case_in("draft")
    requester = api_for(cast.requester)
    page = requester.get("/api/cases", {"state": "submitted", "limit": 2, "offset": 0}).json()
    rest = requester.get("/api/cases", {"state": "submitted", "limit": 2, "offset": 2}).json()
    assert page["count"] == 3 and len(page["items"]) == 2 and len(rest["items"]) == 1
    assert {r["id"] for r in page["items"] + rest["items"]} == {str(c.pk) for c in cases}
    bad = requester.get("/api/cases", {"limit": 1000, "state": "nope"})
    assert bad.status_code == 422 and set(bad.json()["fields"]) == {"limit", "state"}
    misspelt = requester.get("/api/cases", {"stat": "closed"})  # ignoring it would list every case
    assert misspelt.status_code == 422 and list(misspelt.json()["fields"]) == ["stat"]


def test_a_search_narrows_every_role_the_pool_included(cast, api_for):
    durand = cast.new_case()  # the cast's patients are all DURAND
    other = cast.new_case()  # another pooled case, another patient
    other.patient.birth_name = "LEFEBVRE"
    other.patient.save(update_fields=["birth_name"])
    colleague = api_for(cast.colleague)
    assert colleague.get("/api/cases", {"role": "pool"}).json()["count"] == 2
    for role in ("pool", "all"):
        searched = colleague.get("/api/cases", {"role": role, "q": "duran"}).json()
        assert [row["id"] for row in searched["items"]] == [str(durand.pk)], role
    assert colleague.get("/api/cases", {"role": "pool", "q": durand.reference}).json()["count"] == 1


def test_an_account_without_a_professional_has_no_case_in_a_role(cast, api_for):
    cast.case_in("submitted")  # unassigned: no expert, in the pool
    cast.case_in("accepted")
    admin = api_for(cast.admin)
    assert admin.get("/api/cases").json()["count"] == 2  # staff see every case
    for role in ("requester", "expert", "pool"):
        for query in ({}, {"q": "a"}):
            listed = admin.get("/api/cases", {"role": role, **query}).json()
            assert (listed["count"], listed["items"]) == (0, []), (role, query)


# --- Tokens, scopes, rate limit --------------------------------------------------------------------------

def test_revoked_token_is_refused_from_the_next_call(cast, client_for):
    _token, secret = personal_token_create(user=cast.requester.user, name="DPI", scopes=ALL)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/cases").status_code == 200
    page = client_for(cast.requester)
    token = ApiToken.objects.get(user=cast.requester.user)
    assert page.post(f"/api-tokens/{token.pk}/revoke").status_code == 302
    refused = api.get("/api/cases")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
    assert refused["WWW-Authenticate"] == "Bearer"
    # Someone else's token cannot be revoked by guessing its id.
    other, _secret = personal_token_create(user=cast.expert.user, name="x", scopes=ALL)
    assert page.post(f"/api-tokens/{other.pk}/revoke").status_code == 404
    assert ApiToken.objects.get(pk=other.pk).revoked_at is None


def test_account_page_shows_the_token_once_and_stores_only_its_hash(cast, client_for):
    page = client_for(cast.requester)
    response = page.post("/api-tokens/", {"name": "Logiciel du cabinet", "scopes": ["cases:read"]})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret.startswith("tep_") and secret in response.content.decode()
    token = ApiToken.objects.get(user=cast.requester.user)
    assert secret not in (token.token_hash, token.prefix) and len(token.token_hash) == 64
    assert secret not in page.get("/api-tokens/").content.decode()
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/cases").status_code == 200
    assert AuditEvent.objects.filter(action="api_token.create", actor_id=cast.requester.user.pk).exists()


def test_missing_scope_is_refused_and_changes_nothing(cast, api_for):
    reader = api_for(cast.requester, scopes=["cases:read"])
    refused = _post(reader, "/api/cases", _new_case_body(cast))
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    assert not Case.objects.exists()
    case = cast.case_in("accepted")
    no_report = api_for(cast.expert, scopes=["cases:read", "cases:write"])
    response = _post(no_report, f"/api/cases/{case.pk}/report/sign")
    assert response.status_code == 403 and "reports:write" in response.json()["message"]


def test_expired_token_is_refused(cast):
    token, secret = personal_token_create(user=cast.requester.user, name="DPI", scopes=ALL, days=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert Client(HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/cases").status_code == 401


@pytest.fixture(params=["test cache", "redis"])
def rate_cache(request, settings):
    """The settings' cache, and Redis as in production (counted there in one round trip per call)."""
    if request.param == "redis":
        use_redis_cache(settings)
    return request.param


def _clear_of_the_window_edge(seconds: int, margin: float = 10) -> None:
    """The limit counts in fixed windows: calls straddling a window's end start again from zero (CI once saw the
    4th call of a 3/min limit let through at hh:mm:59.9). Wait for the next window when this one is nearly over."""
    left = seconds - time.time() % seconds
    if left < margin:
        time.sleep(left + 0.05)


def test_rate_limit_per_token(cast, api_for, settings, rate_cache):
    settings.API_RATE_LIMIT = "3/min"
    api, other = api_for(cast.requester), api_for(cast.expert)
    _clear_of_the_window_edge(60)
    assert [api.get("/api/cases").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/api/cases")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited"
    assert int(limited["Retry-After"]) >= 1
    assert other.get("/api/cases").status_code == 200  # one budget per token


def test_organisation_client_acts_for_its_professionals_only(cast):
    client, secret = api_client_create(organisation=cast.hospital, name="DPI du CHU", scopes=["cases:read"])
    api = Client()
    issued = api.post("/api/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                           "client_secret": secret})
    assert issued.status_code == 200, issued.json()
    body = issued.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "cases:read" and body["expires_in"] == 3600
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {body['access_token']}"}
    case = cast.case_in("submitted")
    as_expert = api.get(f"/api/cases/{case.pk}", HTTP_X_ON_BEHALF_OF=cast.expert.rpps, **bearer)
    assert as_expert.status_code == 200  # the expert works at the CHU
    outside = api.get(f"/api/cases/{case.pk}", HTTP_X_ON_BEHALF_OF=cast.requester.rpps, **bearer)
    assert outside.status_code == 403 and outside.json()["code"] == "on_behalf_of_required"
    assert api.get("/api/cases", **bearer).status_code == 403
    wider = api.post("/api/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                          "client_secret": secret, "scope": "cases:write"})
    assert wider.status_code == 400 and wider.json()["code"] == "invalid_scope"
    wrong = api.post("/api/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                          "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_client"


def test_revoking_a_client_revokes_its_tokens(cast):
    from django.core.management import call_command

    client, secret = api_client_create(organisation=cast.hospital, name="DPI", scopes=ALL)
    api = Client()
    token = api.post("/api/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                          "client_secret": secret}).json()["access_token"]
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}", "HTTP_X_ON_BEHALF_OF": cast.expert.rpps}
    assert api.get("/api/cases", **headers).status_code == 200
    call_command("api_client_revoke", client.client_id, stdout=io.StringIO())
    assert api.get("/api/cases", **headers).status_code == 401
    again = api.post("/api/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                          "client_secret": secret})
    assert again.status_code == 401


# --- Error shape -----------------------------------------------------------------------------------------

def test_validation_errors_name_the_field_in_the_callers_language(cast, api_for):
    requester = api_for(cast.requester)
    body = _new_case_body(cast)
    body["patient"]["ins_nir"] = "123"
    body["consent"]["explained_right_to_refuse"] = False
    del body["question"]
    missing = _post(requester, "/api/cases", body)
    assert missing.status_code == 422
    assert missing.json()["code"] == "invalid" and list(missing.json()["fields"]) == ["question"]
    body["question"] = "Exérèse ?"
    invalid = _post(requester, "/api/cases", body)
    fields = invalid.json()["fields"]
    assert invalid.status_code == 422 and set(fields) == {"patient.ins_nir", "consent.explained_right_to_refuse"}
    assert "informé" in fields["consent.explained_right_to_refuse"][0]
    english = _post(requester, "/api/cases", body, HTTP_ACCEPT_LANGUAGE="en")
    assert english.json()["fields"]["consent.explained_right_to_refuse"][0].startswith("The patient")
    assert not Case.objects.exists()


def test_a_recipient_or_treating_doctor_outside_the_choices_is_refused_on_its_field(cast, api_for):
    """The ids a request names are checked against the same choices as the web form's lists."""
    requester = api_for(cast.requester)
    closed = Network.objects.create(name="Fermé", specialty_id="SM15", organisation=cast.hospital, is_active=False)
    gone = make_professional("gone@test.fr", specialty="SM15", first="Ex", last="Pert")
    gone.user.is_active = False
    gone.user.save()
    unknown = str(uuid.uuid4())
    for overrides, field in [
        ({"network_id": str(closed.pk)}, "network_id"),
        ({"network_id": unknown}, "network_id"),
        ({"network_id": None, "expert_id": str(cast.requester.pk)}, "expert_id"),  # not oneself
        ({"network_id": None, "expert_id": str(cast.dispatcher.pk)}, "expert_id"),  # not a doctor or midwife
        ({"network_id": None, "expert_id": str(gone.pk)}, "expert_id"),  # account closed
        ({"network_id": None, "expert_id": unknown}, "expert_id"),
    ]:
        refused = _post(requester, "/api/cases", _new_case_body(cast, **overrides))
        assert refused.status_code == 422, (overrides, refused.json())
        assert list(refused.json()["fields"]) == [field], overrides
    body = _new_case_body(cast)
    body["patient"]["treating_doctor_id"] = str(cast.dispatcher.pk)  # not a doctor
    refused = _post(requester, "/api/cases", body)
    assert refused.status_code == 422 and list(refused.json()["fields"]) == ["patient.treating_doctor_id"]
    assert not Case.objects.exists()
    body["patient"]["treating_doctor_id"] = str(gone.pk)  # a doctor of the directory, whatever their account
    created = _post(requester, "/api/cases", _new_case_body(cast, network_id=None, expert_id=str(cast.expert.pk),
                                                            patient=body["patient"]))
    assert created.status_code == 201, created.json()
    case = Case.objects.select_related("patient").get()
    assert case.expert == cast.expert and case.patient.treating_doctor == gone


def test_workflow_refusal_and_unknown_token_errors(cast, api_for):
    case = cast.case_in("draft")
    refused = _post(api_for(cast.requester), f"/api/cases/{case.pk}/close", {"usefulness": "yes", "avoided": ["none"]})
    assert refused.status_code == 409 and refused.json()["code"] == "action_refused"
    assert refused.json()["message"]
    nobody = Client(HTTP_AUTHORIZATION="Bearer tep_nothing").get("/api/cases")
    assert nobody.status_code == 401 and set(nobody.json()) == {"code", "message", "fields"}
    assert Client().get("/api/cases").status_code == 401


def test_upload_errors_name_the_file_field_and_leave_nothing(cast, api_for):
    case = cast.case_in("draft")
    requester = api_for(cast.requester)
    missing = requester.post(f"/api/cases/{case.pk}/documents", {"kind": "photo"})
    assert missing.status_code == 422 and list(missing.json()["fields"]) == ["file"]
    fake = io.BytesIO(b"MZ\x90\x00 not a photo")
    fake.name = "photo.jpg"
    refused = requester.post(f"/api/cases/{case.pk}/documents", {"file": fake, "kind": "photo"})
    assert refused.status_code == 422 and list(refused.json()["fields"]) == ["file"], refused.json()
    assert not Document.objects.exists()


def test_openapi_document_and_docs_are_served(client):
    schema = client.get("/api/openapi.json").json()
    assert "/api/cases/{case_id}/claim" in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/api/cases/{case_id}/documents"]["post"]["requestBody"]["content"]
    assert client.get("/api/docs").status_code == 200


def test_a_list_page_costs_the_same_queries_whatever_its_length(cast, api_for):
    """No per-row query (the rows' patient and professionals come in the page's one query)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = api_for(cast.expert)
    cast.case_in("accepted")
    api.get("/api/cases")  # the token's first use is recorded once
    with CaptureQueriesContext(connection) as one:
        assert len(api.get("/api/cases").json()["items"]) == 1
    for _ in range(6):
        cast.case_in("accepted")
    with CaptureQueriesContext(connection) as seven:
        assert len(api.get("/api/cases").json()["items"]) == 7
    assert len(seven.captured_queries) == len(one.captured_queries)
