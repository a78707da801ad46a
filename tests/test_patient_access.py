"""The patient reads the signed report through a personal link, with the birth date as second factor."""

import hashlib
import html
import io
import json
import logging
import re
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.core.logging import JsonFormatter, RedactPatientLinks
from teleexpertise.documents import storage
from teleexpertise.reports import patient_views
from teleexpertise.reports.models import PatientAccessLink, RenderedReport, ReportVersion
from teleexpertise.reports.patient_access import patient_link_create, patient_link_revoke
from teleexpertise.reports.services import report_save_draft, report_sign

BIRTH = {"day": "12", "month": "05", "year": "1984"}  # tests.factories.identity()
WRONG = {"day": "13", "month": "05", "year": "1984"}
EMAIL = "marie.durand@example.fr"
ANSWER = "Aspect de naevus atypique, sans signe de gravité."
CONCLUSION = "Exérèse conseillée, sans urgence."
INTERNAL = "Coupure réseau pendant la lecture des photos"  # technical incidents: not for the patient


pytestmark = pytest.mark.usefixtures("local_documents")


@pytest.fixture
def answered(cast, django_capture_on_commit_callbacks):
    """A case answered with a full report whose PDF was rendered (the job runs on commit, inline in tests)."""
    case = cast.case_in("accepted")
    expert = cast.actor(cast.expert)
    with django_capture_on_commit_callbacks(execute=True):
        report_save_draft(actor=expert, case_id=case.pk, data={
            "act_at": timezone.now(), "answer": ANSWER, "conclusion": CONCLUSION,
            "treatments": "Aucun traitement.", "exams": "Dermoscopie de contrôle.", "orientation": "consultation",
            "consultation_at": timezone.now() + timedelta(days=20), "technical_incidents": INTERNAL})
        report_sign(actor=expert, case_id=case.pk)
    mail.outbox.clear()  # the professionals' notifications
    return case


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _send(cast, case, channel="email", recipient=EMAIL):
    link, url = patient_link_create(actor=cast.actor(cast.requester), case_id=case.pk, channel=channel,
                                    recipient=recipient)
    return link, url, url.rsplit("/", 1)[1]


def _path(token, name="link"):
    return reverse(f"patient:{name}", args=[token])


def _verify(client, token, data=BIRTH):
    return client.post(_path(token), data)


def _events(link, action=None):
    events = AuditEvent.objects.filter(object_type="reports.patientaccesslink", object_id=str(link.pk))
    return events.filter(action=action) if action else events


# --- The requester sends the link ----------------------------------------------------------------------

def test_the_requester_mails_the_link_and_only_its_hash_is_stored(cast, client_for, answered):
    client = client_for(cast.requester.user)
    response = client.post(reverse("reports:patient_link_new", args=[answered.pk]),
                           {"channel": "email", "recipient": f"  {EMAIL} "})
    assert response.status_code == 302
    assert response["Location"].endswith(f"{answered.get_absolute_url()}#patient-access-title")
    [message] = mail.outbox
    assert message.to == [EMAIL]
    assert message.subject == "Votre compte-rendu de téléexpertise"
    token = re.search(r"http://127\.0\.0\.1:8000/p/([A-Za-z0-9_-]{43})\b", message.body).group(1)
    assert "Paul GÉNÉRALISTE" in message.body
    for secret in ("DURAND", ANSWER, CONCLUSION, answered.reference):  # no medical data in a message
        assert secret not in message.body
    link = PatientAccessLink.objects.get()
    assert link.recipient == EMAIL and link.created_by == cast.requester and link.sent_at is not None
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert abs(link.expires_at - (link.created_at + timedelta(days=30))) < timedelta(seconds=1)
    _open_fully(Client(), token)  # the patient's side writes sessions, audit rows, last access: still no token
    assert _tables_containing(token) == []
    page = _text(client.get(answered.get_absolute_url()))
    assert "Actif jusqu'au" in page
    assert EMAIL in page and "Révoquer" in page


def _open_fully(client, token):
    assert client.get(_path(token)).status_code == 200
    assert _verify(client, token).status_code == 302
    assert client.get(_path(token)).status_code == 200
    assert client.get(_path(token, "pdf")).status_code == 200


def _tables_containing(text: str) -> list[str]:
    """Every table of the database, every row, every column, searched for the text."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            if any(text in str(value) for row in cursor.fetchall() for value in row):
                found.append(table)
    return found


def test_sms_goes_to_a_french_mobile_and_to_the_console_in_development(cast, client_for, answered, capsys):
    client = client_for(cast.requester.user)
    response = client.post(reverse("reports:patient_link_new", args=[answered.pk]),
                           {"channel": "sms", "recipient": "06.39.98.12.34"})
    assert response.status_code == 302
    link = PatientAccessLink.objects.get()
    assert link.recipient == "+33639981234" and link.recipient_display == "06 39 98 12 34"
    out = capsys.readouterr().out
    assert "SMS to +33639981234" in out
    token = re.search(r"/p/([A-Za-z0-9_-]{43})", out).group(1)
    assert link.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert not mail.outbox


@pytest.mark.parametrize(("channel", "recipient", "error"), [
    ("email", "marie.durand@", "Saisissez une adresse électronique valide"),
    ("sms", "01 99 00 12 34", "Saisissez un numéro de mobile français (06 ou 07)"),
    ("sms", "+44 7700 900123", "Saisissez un numéro de mobile français (06 ou 07)"),
])
def test_a_wrong_recipient_is_refused_in_french_and_kept(cast, client_for, answered, channel, recipient, error):
    response = client_for(cast.requester.user).post(reverse("reports:patient_link_new", args=[answered.pk]),
                                                    {"channel": channel, "recipient": recipient})
    assert response.status_code == 400
    content = _text(response)
    assert error in content and f'value="{recipient}"' in content
    assert not PatientAccessLink.objects.exists() and not mail.outbox


def test_without_an_sms_gateway_only_email_is_offered(cast, client_for, answered, settings):
    settings.PATIENT_LINK_SMS_CONSOLE = False
    client = client_for(cast.requester.user)
    page = _text(client.get(answered.get_absolute_url()))
    assert 'value="email"' in page and 'value="sms"' not in page
    response = client.post(reverse("reports:patient_link_new", args=[answered.pk]),
                           {"channel": "sms", "recipient": "06 39 98 12 34"})
    assert response.status_code == 400 and not PatientAccessLink.objects.exists()


class BrokenSender:
    channels = ("email",)

    def send_email(self, *, to, subject, body):
        raise ConnectionRefusedError(f"relay down while sending {body}")


def test_a_failed_send_disables_the_link_and_says_so(cast, client_for, answered, settings):
    settings.PATIENT_LINK_SENDER = "tests.test_patient_access.BrokenSender"
    client = client_for(cast.requester.user)
    response = client.post(reverse("reports:patient_link_new", args=[answered.pk]),
                           {"channel": "email", "recipient": EMAIL}, follow=True)
    assert "Le message n'a pas pu être envoyé au patient" in _text(response)
    link = PatientAccessLink.objects.get()
    assert link.status == PatientAccessLink.Status.SEND_FAILED
    event = _events(link, "patient_link.send_failed").get()
    assert event.summary == "ConnectionRefusedError" and event.actor_id == cast.requester.user.pk
    assert "Envoi impossible" in _text(response)


@pytest.mark.parametrize(("who", "status"), [("requester", 302), ("expert", 403), ("admin", 403),
                                             ("colleague", 404), ("dispatcher", 404), ("outsider", 404)])
def test_only_the_requester_gives_access(cast, client_for, answered, who, status):
    user = cast.admin if who == "admin" else getattr(cast, who).user
    response = client_for(user).post(reverse("reports:patient_link_new", args=[answered.pk]),
                                     {"channel": "email", "recipient": EMAIL})
    assert response.status_code == status
    assert PatientAccessLink.objects.exists() == (who == "requester")
    if status == 403:
        assert "Seul le professionnel requérant" in _text(response)


@pytest.mark.parametrize(("who", "status"), [("requester", 302), ("expert", 403), ("admin", 403),
                                             ("colleague", 404), ("outsider", 404)])
def test_only_the_requester_revokes(cast, client_for, answered, who, status):
    link, _url, token = _send(cast, answered)
    user = cast.admin if who == "admin" else getattr(cast, who).user
    response = client_for(user).post(reverse("reports:patient_link_revoke", args=[answered.pk, link.pk]))
    assert response.status_code == status
    link.refresh_from_db()
    assert (link.revoked_at is not None) == (who == "requester")
    if who == "requester":
        assert link.revoked_by == cast.requester
        assert _events(link, "patient_link.revoke").get().actor_id == cast.requester.user.pk


def test_anonymous_requests_for_the_requester_pages_go_to_login(cast, answered, client):
    link, _url, _token = _send(cast, answered)
    for url in (reverse("reports:patient_link_new", args=[answered.pk]),
                reverse("reports:patient_link_revoke", args=[answered.pk, link.pk])):
        response = client.post(url, {"channel": "email", "recipient": EMAIL})
        assert response.status_code == 302 and reverse("account_login") in response["Location"]
    assert PatientAccessLink.objects.count() == 1 and PatientAccessLink.objects.get().revoked_at is None


def test_the_services_refuse_the_expert_and_a_case_without_signed_report(cast, answered):
    with pytest.raises(WorkflowError, match="Seul le professionnel requérant"):
        patient_link_create(actor=cast.actor(cast.expert), case_id=answered.pk, channel="email", recipient=EMAIL)
    link, _url, _token = _send(cast, answered)
    with pytest.raises(WorkflowError, match="Seul le professionnel requérant"):
        patient_link_revoke(actor=cast.actor(cast.expert), link_id=link.pk)
    accepted = cast.case_in("accepted")
    with pytest.raises(WorkflowError, match="une fois le compte-rendu signé"):
        patient_link_create(actor=cast.actor(cast.requester), case_id=accepted.pk, channel="email",
                            recipient=EMAIL)


def test_a_link_of_another_case_is_not_found(cast, client_for, answered):
    other = cast.case_in("answered")
    link, _url, _token = _send(cast, other)
    response = client_for(cast.requester.user).post(reverse("reports:patient_link_revoke",
                                                            args=[answered.pk, link.pk]))
    assert response.status_code == 404


def test_the_panel_is_the_requesters(cast, client_for, answered):
    _send(cast, answered)
    assert "Donner l'accès au patient" in _text(client_for(cast.requester.user).get(
        answered.get_absolute_url()))
    expert_page = _text(client_for(cast.expert.user).get(answered.get_absolute_url()))
    assert 'id="patient-access-title"' not in expert_page and "Révoquer" not in expert_page
    assert "Accès au compte-rendu envoyé au patient" in expert_page  # the timeline is the case's, for its readers
    accepted = cast.case_in("accepted")
    page = _text(client_for(cast.requester.user).get(accepted.get_absolute_url()))
    assert "une fois celui-ci signé" in page and 'name="recipient"' not in page


# --- The patient opens it ------------------------------------------------------------------------------

def test_nothing_shows_before_the_birth_date(cast, answered, client):
    _link, _url, token = _send(cast, answered)
    response = client.get(_path(token))
    assert response.status_code == 200
    content = _text(response)
    assert "Votre date de naissance" in content
    for secret in ("DURAND", "Marie", ANSWER, CONCLUSION, answered.reference, "DERMATO", "GÉNÉRALISTE"):
        assert secret not in content, secret
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Robots-Tag"] == "noindex, nofollow"
    assert '<meta name="robots" content="noindex, nofollow">' in content
    assert client.get(_path(token, "pdf"))["Location"] == _path(token)  # no PDF either


def test_the_right_birth_date_shows_the_report_in_plain_french_and_its_pdf(cast, answered, client):
    _link, _url, token = _send(cast, answered)
    response = _verify(client, token)
    assert response.status_code == 302 and response["Location"] == _path(token)
    response = client.get(_path(token))
    content = _text(response)
    assert response["Cache-Control"] == "no-store" and response["Referrer-Policy"] == "same-origin"
    for shown in ("DURAND Marie", "Paul GÉNÉRALISTE", "Anne DERMATO", ANSWER, CONCLUSION, "Aucun traitement.",
                  "Dermoscopie de contrôle.", "Le spécialiste vous propose une consultation en personne.",
                  "Rendez-vous fixé par le spécialiste", "Télécharger le compte-rendu (PDF)"):
        assert shown in content, shown
    assert INTERNAL not in content and answered.question not in content
    pdf = client.get(_path(token, "pdf"))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert pdf["Cache-Control"] == "no-store"
    version = ReportVersion.objects.get(case=answered)
    stored = b"".join(storage.read_all_verified(storage.blob_of(RenderedReport.objects.get(version=version))))
    assert pdf.content == stored and stored.startswith(b"%PDF")
    assert pdf["Content-Disposition"] == f'attachment; filename="compte-rendu-{answered.reference}-v1.pdf"'


def test_the_patient_reads_the_latest_signed_version(cast, answered, client, django_capture_on_commit_callbacks):
    _link, _url, token = _send(cast, answered)
    expert = cast.actor(cast.expert)
    with django_capture_on_commit_callbacks(execute=True):
        report_save_draft(actor=expert, case_id=answered.pk, data={
            "act_at": timezone.now(), "answer": "Naevus bénin après relecture.", "conclusion": "Simple surveillance.",
            "orientation": "none", "amendment_reason": "Relecture des photos."})
        report_sign(actor=expert, case_id=answered.pk)
    _verify(client, token)
    content = _text(client.get(_path(token)))
    assert "Naevus bénin après relecture." in content and "vous lisez la version 2" in content
    assert ANSWER not in content
    assert client.get(_path(token, "pdf"))["Content-Disposition"].endswith('-v2.pdf"')


def test_a_pdf_not_ready_yet_is_announced(cast, answered, client):
    _link, _url, token = _send(cast, answered)
    RenderedReport.objects.filter(version__case=answered).update(status=RenderedReport.Status.PENDING)
    _verify(client, token)
    assert "Le PDF du compte-rendu est en préparation" in _text(client.get(_path(token)))
    response = client.get(_path(token, "pdf"), follow=True)
    assert "Le PDF est en préparation" in _text(response)
    assert not AuditEvent.objects.filter(action="patient_link.pdf_download").exists()
    RenderedReport.objects.filter(version__case=answered).update(status=RenderedReport.Status.FAILED)
    assert "n'est pas disponible pour le moment" in _text(client.get(_path(token)))


def test_the_verified_state_is_for_that_link_and_lasts_fifteen_minutes(cast, answered, client, monkeypatch):
    _first, _url, token = _send(cast, answered)
    _second, _url2, other = _send(cast, answered, recipient="autre@example.fr")
    _verify(client, token)
    assert ANSWER in _text(client.get(_path(token)))
    assert ANSWER not in _text(client.get(_path(other)))  # the other link asks its own date
    later = time.time() + 15 * 60 + 1
    monkeypatch.setattr(patient_views.time, "time", lambda: later)
    content = _text(client.get(_path(token)))
    assert ANSWER not in content and "Votre date de naissance" in content


def test_ending_the_consultation_closes_the_access_on_this_device(cast, answered, client):
    _link, _url, token = _send(cast, answered)
    _verify(client, token)
    response = client.post(_path(token, "end"), follow=True)
    content = _text(response)
    assert "Consultation terminée" in content and ANSWER not in content


def test_wrong_birth_dates_count_and_lock_the_link(cast, answered, client):
    link, _url, token = _send(cast, answered)
    for remaining in (4, 3, 2):
        response = _verify(client, token, WRONG)
        assert response.status_code == 400
        assert f"Il vous reste {remaining} essais" in _text(response)
    response = _verify(client, token, WRONG)
    assert "il vous reste un seul essai" in _text(response)
    response = _verify(client, token, WRONG)
    assert response.status_code == 403
    content = _text(response)
    assert "Ce lien a été bloqué" in content and "contactez le médecin" in content
    link.refresh_from_db()
    assert link.failed_attempts == 5 and link.locked_at is not None
    assert _verify(client, token).status_code == 403  # the right date no longer opens it
    assert ANSWER not in _text(client.get(_path(token)))
    assert _events(link, "patient_link.verify_failed").count() == 5
    assert _events(link, "patient_link.lock").count() == 1
    assert not _events(link, "patient_link.verify").exists()


def test_the_case_page_shows_a_locked_link(cast, client_for, answered, client, settings):
    settings.PATIENT_LINK_MAX_ATTEMPTS = 1
    link, _url, token = _send(cast, answered)
    assert _verify(client, token, WRONG).status_code == 403
    page = _text(client_for(cast.requester.user).get(answered.get_absolute_url()))
    assert "Verrouillé (trop de dates de naissance erronées)" in page


def test_a_date_that_does_not_exist_does_not_count(cast, answered, client):
    link, _url, token = _send(cast, answered)
    response = _verify(client, token, {"day": "31", "month": "02", "year": "1984"})
    assert response.status_code == 400 and "Cette date n'existe pas" in _text(response)
    response = _verify(client, token, {"day": "12", "month": "05", "year": "84"})
    assert "Saisissez l'année sur quatre chiffres" in _text(response)
    link.refresh_from_db()
    assert link.failed_attempts == 0


def _neutral(response, status):
    content = _text(response)
    assert response.status_code == status
    assert "Lien non valable" in content and ANSWER not in content and "DURAND" not in content
    assert response["Cache-Control"] == "no-store"


def test_unknown_expired_and_revoked_links_get_the_same_neutral_page(cast, answered, client):
    _neutral(client.get(_path("x" * 43)), 404)
    expired, _url, expired_token = _send(cast, answered)
    PatientAccessLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    _neutral(client.get(_path(expired_token)), 410)
    _neutral(_verify(client, expired_token), 410)
    revoked, _url, revoked_token = _send(cast, answered)
    _verify(client, revoked_token)
    assert ANSWER in _text(client.get(_path(revoked_token)))
    patient_link_revoke(actor=cast.actor(cast.requester), link_id=revoked.pk)
    _neutral(client.get(_path(revoked_token)), 410)  # revocation wins over a verified session
    _neutral(client.get(_path(revoked_token, "pdf")), 410)
    assert [e.summary for e in _events(expired, "patient_link.refused")] == [
        f"patient via lien {expired.pk} : accès refusé (expired)"] * 2
    assert AuditEvent.objects.filter(action="patient_link.unknown", case_id=None).count() == 1


def test_too_many_failures_from_one_address_are_refused(cast, answered, client, settings):
    settings.PATIENT_LINK_IP_FAILURES = 3
    _link, _url, token = _send(cast, answered)
    for _ in range(3):
        client.get(_path("unknown-token"))
    response = client.get(_path(token))
    assert response.status_code == 429 and "Trop d'essais" in _text(response)
    assert Client(REMOTE_ADDR="192.0.2.10").get(_path(token)).status_code == 200  # another address


def test_a_professional_without_second_factor_may_open_a_patient_link(cast, answered):
    """The TOTP middleware sends professionals to enrol everywhere but on the patient's pages."""
    _link, _url, token = _send(cast, answered)
    client = Client()
    client.force_login(cast.outsider.user)
    assert client.get(reverse("cases:inbox"))["Location"] == reverse("mfa_activate_totp")
    assert client.get(_path(token)).status_code == 200


def test_every_patient_access_is_audited_under_the_link(cast, client_for, answered, client):
    link, _url, token = _send(cast, answered)
    client.get(_path(token))
    _verify(client, token, WRONG)
    _verify(client, token)
    client.get(_path(token))
    client.get(_path(token, "pdf"))
    events = list(AuditEvent.objects.filter(case_id=answered.pk, action__startswith="patient_link.")
                  .order_by("at", "id"))
    assert [e.action for e in events] == ["patient_link.create", "patient_link.open", "patient_link.verify_failed",
                                          "patient_link.verify", "patient_link.report_view",
                                          "patient_link.pdf_download"]
    version = ReportVersion.objects.get(case=answered)
    for event in events[1:]:
        assert event.actor_id is None and event.actor_label == f"patient via lien <{link.pk}>"
        assert event.summary.startswith(f"patient via lien {link.pk} : ")
        assert event.ip == "127.0.0.1" and event.patient_id == answered.patient_id
        assert token not in event.summary
    assert [e.kind for e in events[1:]] == ["R", "E", "E", "R", "R"]
    assert events[4].object_id == str(version.pk) and events[5].object_id == str(version.pk)
    link.refresh_from_db()
    assert link.last_access_at is not None
    page = _text(client_for(cast.requester.user).get(answered.get_absolute_url()))
    assert "Date de naissance erronée (lien patient)" in page  # the timeline names what happened
    assert "patient via lien" in page  # and who: the access history lists the patient's reads


def test_the_token_never_reaches_the_logs(cast, answered, client):
    """Django logs every 4xx with its path (and the request as a field): the token is masked on the way out."""
    _link, _url, token = _send(cast, answered)
    [handler] = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]  # settings'
    buffer = io.StringIO()
    previous = handler.setStream(buffer)
    try:
        assert _verify(client, token, WRONG).status_code == 400
    finally:
        handler.setStream(previous)
    err = buffer.getvalue()
    assert "Bad Request: /p/[masqué]" in err and token not in err
    line = json.loads(next(line for line in err.splitlines() if "Bad Request" in line))
    assert line["request"] == "<WSGIRequest: POST '/p/[masqué]'>"


def test_access_log_lines_are_masked():
    """gunicorn's access log (request line and referer) goes through the same filter (gunicorn_conf.py)."""
    token = "Ab3_x-" * 7
    record = logging.LogRecord("gunicorn.access", logging.INFO, "", 0, '%(h)s "%(r)s" %(s)s "%(f)s"', ({
        "h": "192.0.2.1", "r": f"GET /p/{token}/pdf HTTP/1.1", "s": "200", "f": f"https://te.example.fr/p/{token}"},),
        None)
    assert RedactPatientLinks().filter(record)
    line = JsonFormatter().format(record)
    assert token not in line
    assert json.loads(line)["message"] == ('192.0.2.1 "GET /p/[masqué]/pdf HTTP/1.1" 200 '
                                           '"https://te.example.fr/p/[masqué]"')
