"""Webhooks against a real HTTP receiver on 127.0.0.1: events of a case driven through the services, signed as
documented, retried on the row's schedule (driven with an advanced clock), failed, redelivered, disabled after
failures in a row; no other organisation's case and no patient data ever leave; the REST endpoints and scopes."""

import hashlib
import hmac
import ipaddress
import json
import socket
import ssl
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.core import mail
from django.test import Client
from django.utils import timezone

from teleexpertise.api.services import api_client_create, client_token_issue, personal_token_create
from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import selectors, services, workflow
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Network, NetworkMembership, Organisation
from teleexpertise.reports.services import report_save_draft, report_sign
from teleexpertise.webhooks import delivery, tasks
from teleexpertise.webhooks.events import case_events_muted, deliveries_create, event_payload
from teleexpertise.webhooks.models import (
    ACTION_EVENTS,
    EVENT_TYPES,
    SILENT_ACTIONS,
    WebhookDelivery,
    WebhookSubscription,
)
from tests.factories import luhn_number, make_professional, nir

D = WebhookDelivery.Status
QUESTION = "Lésion pigmentée du dos évolutive : exérèse ?"
REPLAY_WINDOW = 300  # seconds, as docs/webhooks.md advises


# --- A real receiver ---------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Receiver:
    """http.server on 127.0.0.1 in a thread: records every request (headers, raw body) and answers the statuses
    queued in `answers`, then 200. Not listening until `start()`, and again after `stop()`."""

    def __init__(self):
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/hooks/teleexpertise?source=test"
        self.requests: list[dict] = []
        self.answers: list[int] = []
        self.delay = 0.0
        self._server = None

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                time.sleep(receiver.delay)
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.end_headers()
                self.wfile.write(("reçu" if status < 300 else "panne du récepteur").encode())

            def log_message(self, *args):
                pass

        return Handler

    def start(self, tls: ssl.SSLContext | None = None):
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def receiver_down():
    receiver = Receiver()
    yield receiver
    receiver.stop()


@pytest.fixture
def receiver(receiver_down):
    receiver_down.start()
    return receiver_down


@pytest.fixture(autouse=True)
def _sealed(settings, tmp_path):
    settings.DOCUMENT_STORAGE = "local"
    settings.DOCUMENT_ROOT = str(tmp_path / "documents")
    settings.WEBHOOK_ALLOW_LOCAL_TARGETS = True
    settings.WEBHOOK_TIMEOUT = 5
    settings.WEBHOOK_RETRY_DELAYS = [60, 300, 1800, 7200, 43200]
    settings.WEBHOOK_DISABLE_AFTER = 10
    settings.SITE_URL = "https://teleexpertise.example.fr"


# --- Integrators --------------------------------------------------------------------------------------------

def verify(request: dict, secret: str) -> dict:
    """What an integrator does with a request: check the timestamp's age, then the signature over the raw body
    in constant time, and only then parse it."""
    headers = request["headers"]
    timestamp = int(headers["X-Teleexpertise-Timestamp"])
    assert abs(time.time() - timestamp) <= REPLAY_WINDOW
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + request["body"], hashlib.sha256).hexdigest()
    scheme, _sep, received = headers["X-Teleexpertise-Signature"].partition("=")
    assert scheme == "sha256" and hmac.compare_digest(expected, received)
    return json.loads(request["body"])


def _bearer(organisation, scopes=("webhooks:manage",)) -> tuple:
    """An organisation client of `organisation` and a client holding one of its access tokens."""
    client, secret = api_client_create(organisation=organisation, name=f"DPI {organisation.name}", scopes=scopes)
    _token, access = client_token_issue(client_id=client.client_id, client_secret=secret)
    return client, Client(HTTP_AUTHORIZATION=f"Bearer {access}")


def _subscribe(api, url, events=EVENT_TYPES, **extra) -> dict:
    answer = api.post("/api/webhooks", {"url": url, "events": list(events), **extra}, content_type="application/json")
    assert answer.status_code == 201, answer.json()
    return answer.json()


@pytest.fixture
def clinic(cast):
    """The requester's own practice, an organisation of its own (the cast's requester has none)."""
    practice = Organisation.objects.create(name="Cabinet du Parc", finess=luhn_number("75", 9), city="Lyon")
    type(cast.requester).objects.filter(pk=cast.requester.pk).update(organisation=practice)
    cast.requester.refresh_from_db()
    return practice


def _drive_lifecycle(cast, capture):
    """A request to the CHU's network, through the services, with the commits' side effects run as they would."""
    expert, requester = cast.actor(cast.expert), cast.actor(cast.requester)
    with capture(execute=True):
        case = cast.new_case(question=QUESTION)
    steps = [
        lambda: services.case_claim(actor=expert, case_id=case.pk),
        lambda: services.case_request_information(actor=expert, case_id=case.pk, question="Photo dermoscopique ?"),
        lambda: services.case_provide_information(actor=requester, case_id=case.pk, answer="Jointe au fil."),
        lambda: services.case_accept(actor=expert, case_id=case.pk, due_at=timezone.now() + timedelta(days=2),
                                     patient_informed=True),
        lambda: report_save_draft(actor=expert, case_id=case.pk, data={
            "act_at": timezone.now(), "answer": "Lésion bénigne.", "conclusion": "Surveillance annuelle."}),
        lambda: report_sign(actor=expert, case_id=case.pk),
        lambda: services.case_close(actor=requester, case_id=case.pk, usefulness="yes", avoided=["visit"]),
    ]
    for step in steps:
        with capture(execute=True):
            step()
    return Case.objects.select_related("patient").get(pk=case.pk)


LIFECYCLE_AT_THE_CHU = ["case.submitted", "case.claimed", "case.information_requested", "case.information_provided",
                        "case.accepted", "case.answered", "case.closed"]


# --- Events -------------------------------------------------------------------------------------------------

def test_every_workflow_action_is_an_event_or_deliberately_silent():
    actions = {t.action for t in workflow.TRANSITIONS}
    assert actions == (set(ACTION_EVENTS) - {"create"}) | SILENT_ACTIONS
    assert not set(ACTION_EVENTS) & SILENT_ACTIONS


def test_a_case_driven_through_the_services_sends_its_events_in_order_signed_without_patient_data(
        cast, clinic, receiver, django_capture_on_commit_callbacks):
    _chu, chu_api = _bearer(cast.hospital)
    chu = _subscribe(chu_api, receiver.url, contact_email="dsi@chu.test")
    case = _drive_lifecycle(cast, django_capture_on_commit_callbacks)

    bodies = [verify(request, chu["secret"]) for request in receiver.requests]
    assert [body["type"] for body in bodies] == LIFECYCLE_AT_THE_CHU  # the draft was the requester's alone
    assert [body["case"]["state"] for body in bodies] == ["submitted", "taken", "awaiting_information", "taken",
                                                          "accepted", "answered", "closed"]
    occurred = [body["occurred_at"] for body in bodies]
    assert occurred == sorted(occurred) and all(at.endswith("Z") for at in occurred)
    assert bodies[0]["case"] == {
        "id": str(case.pk), "reference": case.reference, "state": "submitted",
        "links": {"api": f"https://teleexpertise.example.fr/api/cases/{case.pk}",
                  "fhir_service_request": f"https://teleexpertise.example.fr/fhir/ServiceRequest/{case.pk}",
                  "fhir_task": f"https://teleexpertise.example.fr/fhir/Task/{case.pk}"}}
    assert set(bodies[0]) == {"id", "type", "occurred_at", "case"}
    assert len({body["id"] for body in bodies}) == len(bodies)

    first = receiver.requests[0]
    assert first["path"] == "/hooks/teleexpertise?source=test"
    assert first["headers"]["Content-Type"] == "application/json"
    assert first["headers"]["X-Teleexpertise-Event"] == "case.submitted"
    logged = WebhookDelivery.objects.get(pk=first["headers"]["X-Teleexpertise-Delivery"])
    assert logged.status == D.DELIVERED and logged.attempts == 1 and logged.last_status_code == 200
    assert logged.delivered_at is not None and str(logged.event_id) == bodies[0]["id"]
    assert AuditEvent.objects.filter(action="webhook.delivered", case_id=case.pk).count() == len(bodies)

    # Nothing of the patient or of the clinical exchange, in what was sent nor in what is kept.
    sent = b" ".join(r["body"] for r in receiver.requests).decode() + json.dumps(
        list(WebhookDelivery.objects.values_list("payload", flat=True)), ensure_ascii=False)
    patient = case.patient
    for secret_text in (patient.birth_name, patient.first_names, patient.ins_nir, QUESTION, "Photo dermoscopique",
                        "Lésion bénigne", str(patient.pk), patient.birth_date.isoformat()):
        assert secret_text not in sent


def test_the_requesters_organisation_receives_the_draft_and_the_whole_lifecycle(
        cast, clinic, receiver, django_capture_on_commit_callbacks):
    _client, api = _bearer(clinic)
    subscription = _subscribe(api, receiver.url, events=["case.created", "case.submitted", "case.closed"])
    _drive_lifecycle(cast, django_capture_on_commit_callbacks)
    assert [verify(r, subscription["secret"])["type"] for r in receiver.requests] == [
        "case.created", "case.submitted", "case.closed"]  # only what it asked for


def test_an_organisation_never_receives_another_organisations_case(cast, receiver, django_capture_on_commit_callbacks):
    other = Organisation.objects.create(name="Clinique Ailleurs", finess=luhn_number("75", 9), city="Nantes")
    colleague = make_professional("ailleurs@test.fr", specialty="SM15", first="Eve", last="Ailleurs",
                                  organisation=other)
    elsewhere = Network.objects.create(name="Dermatologie Ailleurs", specialty_id="SM15", organisation=other)
    NetworkMembership.objects.create(network=elsewhere, professional=colleague, role="member")
    _client, api = _bearer(other)
    _subscribe(api, receiver.url)
    _drive_lifecycle(cast, django_capture_on_commit_callbacks)
    assert receiver.requests == [] and not WebhookDelivery.objects.exists()

    # Transferred to its network's pool, the case becomes one its professionals see: from then on only.
    case = cast.case_in("taken")
    with django_capture_on_commit_callbacks(execute=True):
        services.case_transfer(actor=cast.actor(cast.expert), case_id=case.pk, note="Hors de mon champ",
                               network=elsewhere)
    assert [body["type"] for body in receiver.events()] == ["case.transferred"]


@pytest.mark.parametrize("state", [s for s in Case.State.values])
def test_organisations_seeing_is_cases_visible_to_of_their_professionals(cast, clinic, state):
    staff_pro = make_professional("staff@test.fr", organisation=Organisation.objects.create(
        name="Plateforme", finess=luhn_number("75", 9), city="Paris"))
    type(staff_pro.user).objects.filter(pk=staff_pro.user_id).update(is_staff=True)  # sees all: must not count
    case = cast.case_in(state)
    expected = {pro.organisation_id for pro in type(cast.requester).objects.filter(
        organisation__isnull=False, user__is_active=True, user__is_staff=False).select_related("user")
        if selectors.cases_visible_to(pro.user).filter(pk=case.pk).exists()}
    assert set(selectors.organisations_seeing(case).values_list("organisation_id", flat=True)) == expected
    assert clinic.pk in expected  # the requester's practice always sees its own request


# --- Retries, failure, redelivery, lease ----------------------------------------------------------------------

def _one_delivery(cast, api, receiver, capture, events=("case.submitted",), **extra):
    subscription = _subscribe(api, receiver.url, events=events, **extra)
    with capture(execute=True):
        cast.new_case()
    return subscription, WebhookDelivery.objects.get(subscription_id=subscription["id"])


def test_a_500_is_retried_on_its_schedule_and_then_delivered(cast, receiver, django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    receiver.answers = [500]
    subscription, row = _one_delivery(cast, api, receiver, django_capture_on_commit_callbacks)
    assert row.status == D.PENDING and row.attempts == 1 and row.last_status_code == 500
    assert row.last_error == "HTTP 500 : panne du récepteur"
    assert timedelta(seconds=55) < row.next_attempt_at - row.last_attempt_at <= timedelta(seconds=60)

    now = timezone.now()
    assert delivery.due_ids(now=now) == []  # not before its delay
    later = row.next_attempt_at + timedelta(seconds=1)
    assert delivery.due_ids(now=later) == [row.pk]
    tasks.send_webhook_delivery.call_local(row.pk, now=later)

    row.refresh_from_db()
    assert row.status == D.DELIVERED and row.attempts == 2 and row.last_status_code == 200 and row.last_error == ""
    first, second = receiver.requests
    assert first["headers"]["X-Teleexpertise-Delivery"] == second["headers"]["X-Teleexpertise-Delivery"] == str(row.pk)
    assert first["body"] == second["body"]
    verify(second, subscription["secret"])
    assert delivery.due_ids(now=later + timedelta(days=1)) == []


def test_the_periodic_sweep_sends_what_is_due_and_what_a_lost_job_left(cast, receiver,
                                                                        django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    subscription = _subscribe(api, receiver.url, events=["case.submitted"])
    case = cast.new_case()
    # The rows are written but their jobs wait for a commit the test never makes: lost jobs, for this test.
    (row,) = deliveries_create(event_payload(event_type="case.submitted", case=case, occurred_at=timezone.now()),
                               case)
    assert receiver.requests == []
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_webhook_deliveries.call_local()
    row.refresh_from_db()
    assert row.status == D.DELIVERED and len(receiver.requests) == 1
    verify(receiver.requests[0], subscription["secret"])


def test_a_lease_keeps_a_second_job_from_sending_the_same_delivery(cast, receiver_down,
                                                                    django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    _subscription, row = _one_delivery(cast, api, receiver_down, django_capture_on_commit_callbacks)
    later = row.next_attempt_at + timedelta(seconds=1)
    assert delivery.claim(row.pk, now=later) is not None
    assert delivery.claim(row.pk, now=later) is None  # held
    assert delivery.due_ids(now=later) == []
    assert delivery.claim(row.pk, now=later + timedelta(minutes=5)) is not None  # a dead worker's lease expires
    assert WebhookDelivery.objects.get(pk=row.pk).attempts == 3


def test_receiver_down_fails_after_the_retries_is_logged_and_redelivered(cast, receiver_down, settings,
                                                                          django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_DELAYS = [60, 300]
    _client, api = _bearer(cast.hospital)
    subscription, row = _one_delivery(cast, api, receiver_down, django_capture_on_commit_callbacks)
    clock = timezone.now()
    for expected_attempts in (2, 3):
        clock += timedelta(seconds=301)
        assert delivery.due_ids(now=clock) == [row.pk]
        tasks.send_webhook_delivery.call_local(row.pk, now=clock)
        row.refresh_from_db()
        assert row.attempts == expected_attempts
    assert row.status == D.FAILED and row.next_attempt_at is None and row.last_status_code is None
    assert "ConnectionRefusedError" in row.last_error
    assert delivery.due_ids(now=clock + timedelta(days=1)) == []
    assert AuditEvent.objects.filter(action="webhook.delivery_failed", object_id=str(row.pk)).count() == 1

    log = api.get(f"/api/webhooks/{subscription['id']}/deliveries?status=failed").json()
    assert log["count"] == 1 and log["items"][0]["id"] == str(row.pk) and log["items"][0]["attempts"] == 3
    assert log["items"][0]["payload"]["type"] == "case.submitted"
    assert api.get(f"/api/webhooks/{subscription['id']}").json()["consecutive_failures"] == 1

    receiver_down.start()
    with django_capture_on_commit_callbacks(execute=True):
        again = api.post(f"/api/webhooks/{subscription['id']}/deliveries/{row.pk}/redeliver")
    assert again.status_code == 202, again.json()
    resent = WebhookDelivery.objects.get(pk=again.json()["id"])
    assert resent.status == D.DELIVERED and resent.redelivery_of_id == row.pk and resent.event_id == row.event_id
    (request,) = receiver_down.requests
    assert request["headers"]["X-Teleexpertise-Delivery"] == str(resent.pk)
    assert verify(request, subscription["secret"])["id"] == str(row.event_id)
    assert api.get(f"/api/webhooks/{subscription['id']}").json()["consecutive_failures"] == 0
    assert AuditEvent.objects.filter(action="webhook.redeliver", object_id=str(resent.pk)).exists()


def test_a_pending_delivery_is_not_redelivered(cast, receiver_down, django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    subscription, row = _one_delivery(cast, api, receiver_down, django_capture_on_commit_callbacks)
    refused = api.post(f"/api/webhooks/{subscription['id']}/deliveries/{row.pk}/redeliver")
    assert refused.status_code == 409 and refused.json()["code"] == "delivery_pending"


def test_a_receiver_too_slow_to_answer_is_a_failed_attempt(cast, receiver, settings,
                                                           django_capture_on_commit_callbacks):
    settings.WEBHOOK_TIMEOUT = 1
    receiver.delay = 1.5
    _client, api = _bearer(cast.hospital)
    _subscription, row = _one_delivery(cast, api, receiver, django_capture_on_commit_callbacks)
    assert row.status == D.PENDING and row.last_error == "Pas de réponse dans le délai (1 s)."


def test_failed_deliveries_in_a_row_disable_the_subscription_audited_and_its_contact_told(
        cast, receiver_down, settings, django_capture_on_commit_callbacks):
    settings.WEBHOOK_RETRY_DELAYS = []  # one attempt each
    settings.WEBHOOK_DISABLE_AFTER = 2
    _client, api = _bearer(cast.hospital)
    subscription = _subscribe(api, receiver_down.url, events=["case.submitted"], contact_email="dsi@chu.test")
    for _n in range(2):
        with django_capture_on_commit_callbacks(execute=True):
            cast.new_case()
    state = api.get(f"/api/webhooks/{subscription['id']}").json()
    assert state["active"] is False and state["consecutive_failures"] == 2 and state["disabled_at"]
    assert "2 envois en échec consécutifs" in state["disabled_reason"]
    assert AuditEvent.objects.filter(action="webhook.disabled", object_id=subscription["id"]).count() == 1
    (notice,) = [m for m in mail.outbox if m.to == ["dsi@chu.test"]]
    assert subscription["id"] in notice.body and receiver_down.url in notice.body

    with django_capture_on_commit_callbacks(execute=True):
        cast.new_case()
    assert WebhookDelivery.objects.count() == 2  # nothing recorded for a disabled subscription

    receiver_down.start()
    turned_on = api.patch(f"/api/webhooks/{subscription['id']}", {"active": True}, content_type="application/json")
    assert turned_on.status_code == 200
    assert turned_on.json()["active"] is True and turned_on.json()["consecutive_failures"] == 0
    with django_capture_on_commit_callbacks(execute=True):
        cast.new_case()
    assert len(receiver_down.requests) == 1


# --- Where the platform agrees to send ----------------------------------------------------------------------

def test_only_public_https_addresses_outside_development(cast, receiver, settings, django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    subscription, _row = _one_delivery(cast, api, receiver, django_capture_on_commit_callbacks)
    settings.WEBHOOK_ALLOW_LOCAL_TARGETS = False
    for url in (receiver.url, "http://example.org/hook", "https://127.0.0.1/hook", "https://10.1.2.3/hook",
                "https://localhost/hook", "https://user:pw@example.org/hook", "ftp://example.org/"):
        refused = api.post("/api/webhooks", {"url": url, "events": ["case.closed"]}, content_type="application/json")
        assert refused.status_code == 422 and list(refused.json()["fields"]) == ["url"], url
    assert api.post("/api/webhooks", {"url": "https://example.org/hook", "events": ["case.closed"]},
                    content_type="application/json").status_code == 201

    # Saved while allowed, or a name that resolves to a private address: each attempt checks the address it
    # would connect to, and sends nothing.
    host = socket.gethostname()
    if ipaddress.ip_address(socket.getaddrinfo(host, 443)[0][4][0]).is_global:
        pytest.skip("this machine's name resolves to a public address")
    before = len(receiver.requests)
    for url, error in ((f"https://localhost:{receiver.port}/hook", "L'adresse doit être une adresse publique"),
                       (f"https://{host}:{receiver.port}/hook", f"Le nom {host} désigne une adresse non publique")):
        WebhookSubscription.objects.filter(pk=subscription["id"]).update(url=url)
        with django_capture_on_commit_callbacks(execute=True):
            cast.new_case()
        row = WebhookDelivery.objects.filter(subscription_id=subscription["id"]).order_by("-created_at").first()
        assert row.status == D.PENDING and row.last_error.startswith(error), row.last_error
    assert len(receiver.requests) == before


def _certificate_for_localhost(folder) -> tuple[str, str]:
    """A self-signed certificate for the name localhost (certificate and key files)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "localhost.pem", folder / "localhost.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_https_receivers_certificate_is_verified_against_the_name(cast, receiver_down, tmp_path, monkeypatch,
                                                                   django_capture_on_commit_callbacks):
    cert, key = _certificate_for_localhost(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    receiver_down.start(tls=tls)
    _client, api = _bearer(cast.hospital)
    subscription = _subscribe(api, f"https://localhost:{receiver_down.port}/hook", events=["case.submitted"])
    with django_capture_on_commit_callbacks(execute=True):
        cast.new_case()
    refused = WebhookDelivery.objects.get()
    assert refused.status == D.PENDING and "CERTIFICATE_VERIFY_FAILED" in refused.last_error
    assert receiver_down.requests == []

    monkeypatch.setenv("SSL_CERT_FILE", cert)  # the platform's machine now trusts this certificate
    tasks.send_webhook_delivery.call_local(refused.pk, now=refused.next_attempt_at)
    refused.refresh_from_db()
    assert refused.status == D.DELIVERED
    (request,) = receiver_down.requests
    assert request["headers"]["Host"] == f"localhost:{receiver_down.port}"
    verify(request, subscription["secret"])


def test_replaying_history_sends_no_event(cast, receiver, django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    _subscribe(api, receiver.url)
    with case_events_muted(), django_capture_on_commit_callbacks(execute=True):
        cast.case_in("accepted")
    assert not WebhookDelivery.objects.exists() and receiver.requests == []


# --- The REST endpoints -------------------------------------------------------------------------------------

def test_rest_endpoints_scopes_and_404_for_another_clients_webhooks(cast, clinic, receiver):
    chu_client, chu = _bearer(cast.hospital)
    created = _subscribe(chu, receiver.url, events=["case.closed", "case.submitted"], description="Production")
    assert created["secret"].startswith("whsec_") and created["events"] == ["case.submitted", "case.closed"]
    assert WebhookSubscription.objects.get(pk=created["id"]).secret == created["secret"]
    listed = chu.get("/api/webhooks").json()
    assert [w["id"] for w in listed] == [created["id"]] and "secret" not in listed[0]
    assert "secret" not in chu.get(f"/api/webhooks/{created['id']}").json()
    rotated = chu.post(f"/api/webhooks/{created['id']}/secret").json()
    assert rotated["secret"] != created["secret"]

    changed = chu.patch(f"/api/webhooks/{created['id']}", {"events": ["case.answered"], "description": "Prod"},
                        content_type="application/json").json()
    assert changed["events"] == ["case.answered"] and changed["description"] == "Prod"
    unknown = chu.post("/api/webhooks", {"url": receiver.url, "events": ["case.deleted"]},
                       content_type="application/json")
    assert unknown.status_code == 422 and unknown.json()["code"] == "invalid"
    assert {e.action for e in AuditEvent.objects.filter(object_id=created["id"])} >= {
        "webhook.create", "webhook.rotate_secret", "webhook.update"}

    # Another organisation's client sees none of it.
    _other, clinic_api = _bearer(clinic)
    assert clinic_api.get("/api/webhooks").json() == []
    for method, path in (("get", ""), ("patch", ""), ("delete", ""), ("post", "/secret"), ("get", "/deliveries")):
        answer = getattr(clinic_api, method)(f"/api/webhooks/{created['id']}{path}", {} if method == "patch" else None,
                                             content_type="application/json")
        assert answer.status_code == 404 and answer.json()["code"] == "not_found", (method, path)
    row = WebhookDelivery.objects.create(subscription_id=created["id"], event_id=created["id"],
                                         event_type="case.answered", case_id=created["id"], status=D.FAILED,
                                         payload={"case": {"reference": "TE-X"}})
    assert clinic_api.post(f"/api/webhooks/{created['id']}/deliveries/{row.pk}/redeliver").status_code == 404

    # Scopes: a client token without webhooks:manage, and a personal token, are refused.
    _reader, reader = _bearer(cast.hospital, scopes=["cases:read"])
    refused = reader.get("/api/webhooks")
    assert refused.status_code == 403 and refused.json()["code"] == "insufficient_scope"
    _token, personal = personal_token_create(user=cast.expert.user, name="Perso", scopes=["cases:read"])
    mine = Client(HTTP_AUTHORIZATION=f"Bearer {personal}").get("/api/webhooks")
    assert mine.status_code == 403 and mine.json()["code"] == "insufficient_scope"
    with pytest.raises(Exception, match="webhooks:manage"):
        personal_token_create(user=cast.expert.user, name="Perso", scopes=["webhooks:manage"])
    assert Client(HTTP_AUTHORIZATION="Bearer tec_nope").get("/api/webhooks").status_code == 401

    assert chu.delete(f"/api/webhooks/{created['id']}").status_code == 204
    assert not WebhookSubscription.objects.filter(pk=created["id"]).exists()
    assert AuditEvent.objects.filter(action="webhook.delete", object_id=created["id"]).exists()
    assert chu_client.webhooks.count() == 0


def test_openapi_document_lists_the_webhook_endpoints(client):
    schema = client.get("/api/openapi.json").json()
    for path in ("/api/webhooks", "/api/webhooks/{webhook_id}", "/api/webhooks/{webhook_id}/deliveries",
                 "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"):
        assert path in schema["paths"]
    assert "X-Teleexpertise-Signature" in schema["info"]["description"]


def test_staff_resend_from_the_admin_is_audited(cast, receiver, client_for, django_capture_on_commit_callbacks):
    _client, api = _bearer(cast.hospital)
    _subscription, row = _one_delivery(cast, api, receiver, django_capture_on_commit_callbacks)
    admin = client_for(cast.admin)
    assert admin.get("/admin/webhooks/webhookdelivery/").status_code == 200
    page = admin.get(f"/admin/webhooks/webhooksubscription/{row.subscription_id}/change/").content.decode()
    assert WebhookSubscription.objects.get(pk=row.subscription_id).secret not in page
    with django_capture_on_commit_callbacks(execute=True):
        done = admin.post("/admin/webhooks/webhookdelivery/", {"action": "resend", "_selected_action": [row.pk]})
    assert done.status_code == 302
    resent = WebhookDelivery.objects.get(redelivery_of=row)
    assert resent.status == D.DELIVERED and len(receiver.requests) == 2
    event = AuditEvent.objects.get(action="webhook.redeliver")
    assert event.actor_id == cast.admin.pk


def test_a_case_created_by_a_client_is_emitted_once_per_subscription(cast, clinic, receiver,
                                                                      django_capture_on_commit_callbacks):
    _client, api = _bearer(clinic)
    _subscribe(api, receiver.url, events=["case.created"])
    _subscribe(api, receiver.url, events=["case.created", "case.submitted"])
    with django_capture_on_commit_callbacks(execute=True):
        cast.new_case(send=False, patient_ins=nir())
    events = receiver.events()
    assert [e["type"] for e in events] == ["case.created", "case.created"]
    assert events[0]["id"] == events[1]["id"]  # one event, one delivery per subscription
    assert len({r["headers"]["X-Teleexpertise-Delivery"] for r in receiver.requests}) == 2


def test_subscriptions_for_an_event_are_the_active_ones_asking_for_it_of_organisations_seeing_the_case(cast, clinic):
    """Each condition alone keeps a subscription out: inactive, revoked client, another event, an organisation that
    does not see the case."""
    from teleexpertise.webhooks.events import subscriptions_for

    elsewhere = Organisation.objects.create(name="Clinique du Lac", finess=luhn_number("69", 9), city="Annecy")

    def subscription(organisation, events=("case.submitted",), **fields):
        client, _secret = api_client_create(organisation=organisation, name=f"DPI {organisation.name}",
                                            scopes=["cases:read"])
        return WebhookSubscription.objects.create(client=client, url="https://dpi.example/hook", events=list(events),
                                                  secret="s" * 32, **fields)

    told = [subscription(clinic), subscription(cast.hospital, events=("case.created", "case.submitted"))]
    subscription(clinic, active=False)
    revoked = subscription(cast.hospital)
    type(revoked.client).objects.filter(pk=revoked.client_id).update(revoked_at=timezone.now())
    subscription(clinic, events=("case.closed",))
    subscription(elsewhere)
    case = cast.new_case()  # the clinic's requester, to the CHU's network: both see it
    payload = event_payload(event_type="case.submitted", case=case, occurred_at=timezone.now())
    assert {s.pk for s in subscriptions_for(payload, case)} == {s.pk for s in told}
    draft = cast.case_in("draft")  # the CHU's network does not see a draft
    payload = event_payload(event_type="case.submitted", case=draft, occurred_at=timezone.now())
    assert [s.pk for s in subscriptions_for(payload, draft)] == [told[0].pk]
    WebhookSubscription.objects.all().delete()
    assert subscriptions_for(payload, case) == []
