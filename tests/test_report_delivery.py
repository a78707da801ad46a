"""Distribution of signed reports by e-mail / MSSanté, against a real SMTP server (aiosmtpd) on 127.0.0.1.

The jobs run inline (huey immediate mode); a huey retry lands in huey's schedule, and `_run_due_retries` plays
the consumer's part once the retry delay has passed, so the retry path tested is huey's own.
"""

import io
import socket
import zipfile
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy

import pypdf
import pytest
from aiosmtpd.controller import Controller
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from teleexpertise.audit.models import AuditEvent
from teleexpertise.documents import storage
from teleexpertise.patients.models import Patient
from teleexpertise.reports import cda, delivery, tasks, xdm
from teleexpertise.reports.models import RenderedReport, ReportDelivery, ReportVersion
from teleexpertise.reports.services import report_save_draft, report_sign
from tests.factories import make_professional

D = ReportDelivery.Status
CONCLUSION = "Naevus bénin : surveillance dermatologique annuelle."
SUBJECT = "Compte-rendu de téléexpertise"


# --- A real SMTP server -----------------------------------------------------------------------------------

def _header(message, name) -> str:
    # Django folds long headers right after "Name:", which the parser keeps as a leading space.
    return message[name].strip()


def _subject(message) -> str:
    return _header(message, "Subject")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpServer:
    """aiosmtpd on 127.0.0.1: started and stopped by the test, keeps every message it accepts, and answers
    550 to the addresses in `refused`."""

    def __init__(self):
        self.port = _free_port()
        self.received: list = []  # (envelope recipients, parsed message)
        self.refused: set[str] = set()
        self._controller = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # aiosmtpd hook
        if address in self.refused:
            return "550 5.1.1 Boite aux lettres inconnue"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd hook
        self.received.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default)))
        return "250 Message accepted for delivery"

    def start(self):
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self):
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def report_messages(self) -> list:
        """(envelope recipients, message) of the reports received (notification e-mails come here too)."""
        return [(rcpt, msg) for rcpt, msg in self.received if _subject(msg).startswith(SUBJECT)]

    def reports(self) -> dict:
        """Received reports by their one envelope recipient."""
        messages = self.report_messages()
        assert all(len(rcpt) == 1 for rcpt, _msg in messages)
        return {rcpt[0]: msg for rcpt, msg in messages}


@pytest.fixture
def smtp_down(settings):
    """The SMTP backend pointed at a port where nothing listens yet; `.start()` brings the server up."""
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", server.port, 5
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    yield server
    server.stop()


@pytest.fixture
def smtp(smtp_down):
    smtp_down.start()
    return smtp_down


@pytest.fixture(autouse=True)
def _sealed(tmp_path, settings):
    settings.DOCUMENT_STORAGE = "local"
    settings.DOCUMENT_ROOT = str(tmp_path / "documents")
    HUEY.storage.flush_schedule()
    yield
    HUEY.storage.flush_schedule()


def _scheduled_deliveries() -> int:
    return sum(task.name.endswith("send_report_delivery") for task in HUEY.scheduled())


def _run_due_retries(settings) -> int:
    """The consumer's scheduler and worker once the retry delay has passed: run the retries huey scheduled
    (notification e-mails retry too); returns how many were delivery jobs."""
    later = datetime.now(UTC).replace(tzinfo=None) + timedelta(seconds=settings.REPORT_DELIVERY_RETRY_DELAY + 1)
    due = HUEY.read_schedule(later)
    for task in due:
        HUEY.execute(task, timestamp=later)
    return sum(task.name.endswith("send_report_delivery") for task in due)


# --- Cases -------------------------------------------------------------------------------------------------

@pytest.fixture
def doctor(db):
    """A treating doctor in the directory with an MSSanté address (the factory gives one)."""
    return make_professional("medecin.traitant@test.fr", specialty="SM54", first="Jean", last="Traitant")


def _accepted_case(cast, *, treating_doctor=None, treating_doctor_name="", requester_mssante=None):
    case = cast.case_in("accepted")  # nothing ran on commit: no notification e-mail, no job
    Patient.objects.filter(pk=case.patient_id).update(treating_doctor=treating_doctor,
                                                      treating_doctor_name=treating_doctor_name)
    if requester_mssante is not None:
        type(cast.requester).objects.filter(pk=cast.requester.pk).update(mssante_email=requester_mssante)
    return case


def _sign(cast, case, capture, number=1, **data) -> ReportVersion:
    """Sign through the services; the PDF job and the delivery jobs it starts run on commit, inline."""
    expert = cast.actor(cast.expert)
    with capture(execute=True):
        report_save_draft(actor=expert, case_id=case.pk, data={
            "act_at": timezone.now(), "answer": "Lésion régulière, symétrique.", "conclusion": CONCLUSION, **data})
        report_sign(actor=expert, case_id=case.pk)
    return ReportVersion.objects.get(case=case, number=number)


def _stored_pdf(version) -> bytes:
    rendered = RenderedReport.objects.get(version=version)
    assert rendered.status == RenderedReport.Status.READY, rendered.error
    return b"".join(storage.read_all_verified(storage.blob_of(rendered)))


def _attachments(message) -> dict[str, tuple[str, bytes]]:
    return {part.get_filename(): (part.get_content_type(), part.get_content()) for part in message.iter_attachments()}


def _pdf_text(data: bytes) -> str:
    return " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


def _page(client_for, who, case) -> str:
    return client_for(who.user).get(reverse("cases:detail", args=[case.pk])).content.decode()


def _actions(case, action):
    return AuditEvent.objects.filter(case_id=case.pk, action=action)


# --- Tests -------------------------------------------------------------------------------------------------

def test_signed_report_reaches_the_requester_by_email_and_the_treating_doctor_by_mssante_with_xdm(
        cast, smtp, doctor, client_for, monkeypatch, django_capture_on_commit_callbacks):
    built = {}
    real_cda, real_xdm = cda.build_cda, xdm.build_xdm_zip
    monkeypatch.setattr(cda, "build_cda", lambda v, pdf: built.setdefault("cda", (pdf, real_cda(v, pdf)))[1])
    monkeypatch.setattr(xdm, "build_xdm_zip", lambda v, doc: built.setdefault("zip", (doc, real_xdm(v, doc)))[1])
    case = _accepted_case(cast, treating_doctor=doctor, requester_mssante="")
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    pdf = _stored_pdf(version)

    received = smtp.reports()
    assert set(received) == {"requester@test.fr", "medecin.traitant@x.mssante.fr"}
    filename = f"compte-rendu-{case.reference}-v1.pdf"
    for address, message in received.items():
        assert _subject(message) == f"{SUBJECT} {case.reference} (version 1)"
        assert message["To"] == address
        body = message.get_body(("plain",)).get_content()
        assert "Dr Anne DERMATO" in body and case.reference in body
        assert reverse("cases:detail", args=[case.pk]) in body
        assert "DURAND" not in body and "surveillance" not in body.lower()  # the report travels attached only
        content_type, data = _attachments(message)[filename]
        assert content_type == "application/pdf" and data == pdf
        assert CONCLUSION in _pdf_text(data)
    assert set(_attachments(received["requester@test.fr"])) == {filename}

    archive = _attachments(received["medecin.traitant@x.mssante.fr"])["IHE_XDM.ZIP"]
    assert archive[0] == "application/zip" and archive[1] == built["zip"][1]
    with zipfile.ZipFile(io.BytesIO(archive[1])) as xdm_zip:
        assert "IHE_XDM/SUBSET01/METADATA.XML" in xdm_zip.namelist()
        assert xdm_zip.read("IHE_XDM/SUBSET01/DOC0001.XML") == built["cda"][1]
    assert built["cda"][0] == pdf and built["zip"][0] == built["cda"][1]  # the CDA of this PDF, in the zip

    rows = {d.address: d for d in ReportDelivery.objects.filter(version=version)}
    assert rows["requester@test.fr"].channel == "email" and rows["requester@test.fr"].role == "requester"
    assert rows["medecin.traitant@x.mssante.fr"].channel == "mssante"
    for address, row in rows.items():
        assert row.status == D.SENT and row.attempts == 1 and row.sent_at and row.last_error == ""
        assert row.message_id == _header(received[address], "Message-ID")
    assert _actions(case, "report.delivery_queued").count() == 2
    assert _actions(case, "report.delivery_sent").count() == 2
    page = _page(client_for, cast.requester, case)
    assert page.count("envoyé le") == 2 and "MSSanté" in page and "Compte-rendu envoyé" in page


def test_requester_mssante_address_is_preferred_and_one_treating_doctor_who_is_the_requester_gets_one_message(
        cast, smtp, django_capture_on_commit_callbacks):
    case = _accepted_case(cast, treating_doctor=cast.requester)
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    assert list(smtp.reports()) == ["requester@x.mssante.fr"]
    row = ReportDelivery.objects.get(version=version)
    assert (row.role, row.channel, row.status) == ("requester", "mssante", D.SENT)
    assert "IHE_XDM.ZIP" in _attachments(smtp.reports()["requester@x.mssante.fr"])


def test_treating_doctor_outside_the_directory_gets_nothing_and_the_case_page_says_so(
        cast, smtp, client_for, django_capture_on_commit_callbacks):
    case = _accepted_case(cast, treating_doctor_name="Dr Jean HORS-ANNUAIRE")
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    assert list(smtp.reports()) == ["requester@x.mssante.fr"]
    assert ReportDelivery.objects.filter(version=version).count() == 1
    page = _page(client_for, cast.requester, case)
    assert "Dr Jean HORS-ANNUAIRE) n'a pas d'adresse connue" in page


def test_with_the_smtp_server_down_the_delivery_waits_then_is_sent_when_it_comes_back(
        cast, smtp_down, doctor, client_for, settings, django_capture_on_commit_callbacks):
    case = _accepted_case(cast, treating_doctor=doctor)
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    rendered = RenderedReport.objects.get(version=version)
    for row in ReportDelivery.objects.filter(version=version):
        assert row.status == D.QUEUED and row.attempts == 1
        assert "ConnectionRefusedError" in row.last_error
    assert _scheduled_deliveries() == 2  # huey holds one retry per delivery
    page = _page(client_for, cast.requester, case)
    assert "l'essai n° 1 a échoué" in page and "nouvel essai prévu" in page

    smtp_down.start()
    assert _run_due_retries(settings) == 2
    assert set(smtp_down.reports()) == {"requester@x.mssante.fr", "medecin.traitant@x.mssante.fr"}
    assert set(ReportDelivery.objects.filter(version=version).values_list("status", "attempts")) == {(D.SENT, 2)}
    assert _attachments(smtp_down.reports()["requester@x.mssante.fr"])[
        f"compte-rendu-{case.reference}-v1.pdf"][1] == _stored_pdf(version)
    assert RenderedReport.objects.get(version=version).storage_key == rendered.storage_key  # the PDF untouched
    assert not _actions(case, "report.delivery_failed").exists()


def test_after_the_last_retry_the_delivery_is_failed_and_the_sweep_sends_it_later(
        cast, smtp_down, client_for, settings, django_capture_on_commit_callbacks):
    case = _accepted_case(cast)
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    rounds = 0
    while _run_due_retries(settings):
        rounds += 1
    assert rounds == settings.REPORT_DELIVERY_RETRIES
    row = ReportDelivery.objects.get(version=version)
    assert row.status == D.FAILED and not row.permanent_error
    assert row.attempts == settings.REPORT_DELIVERY_RETRIES + 1
    assert "ConnectionRefusedError" in row.last_error
    failed = _actions(case, "report.delivery_failed").get()
    assert "ConnectionRefusedError" in failed.summary and failed.actor_label == "système"
    page = _page(client_for, cast.requester, case)
    assert "échec :" in page and "nouvel essai prévu" in page
    assert reverse("reports:delivery_retry", args=[row.pk]) in page
    assert CONCLUSION in _pdf_text(_stored_pdf(version))  # nothing lost

    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_report_deliveries.call_local()
    assert ReportDelivery.objects.get(pk=row.pk).attempts == row.attempts  # too soon after the last attempt

    smtp_down.start()
    ReportDelivery.objects.filter(pk=row.pk).update(last_attempt_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_report_deliveries.call_local()
    row.refresh_from_db()
    assert row.status == D.SENT and row.last_error == "" and row.attempts == settings.REPORT_DELIVERY_RETRIES + 2
    assert list(smtp_down.reports()) == ["requester@x.mssante.fr"]
    assert _actions(case, "report.delivery_failed").count() == 1
    assert _actions(case, "report.delivery_sent").count() == 1


def test_a_refused_address_fails_at_once_and_the_requester_resends_it(
        cast, smtp, doctor, client_for, django_capture_on_commit_callbacks):
    smtp.refused.add(doctor.mssante_email)
    case = _accepted_case(cast, treating_doctor=doctor)
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    row = ReportDelivery.objects.get(version=version, role="treating_doctor")
    assert row.status == D.FAILED and row.permanent_error and row.attempts == 1
    assert "550" in row.last_error and "SMTPRecipientsRefused" in row.last_error
    assert _scheduled_deliveries() == 0  # a refusal is not retried automatically...
    ReportDelivery.objects.filter(pk=row.pk).update(last_attempt_at=timezone.now() - timedelta(hours=1))
    assert row.pk not in delivery.due_for_retry()  # ...not even by the sweep
    page = _page(client_for, cast.requester, case)
    assert "550 5.1.1" in page and "pas de nouvel essai automatique" in page and "nouvel essai prévu" not in page
    assert reverse("reports:delivery_retry", args=[row.pk]) in page

    smtp.refused.clear()  # the address was fixed on the recipient's side
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.requester.user).post(reverse("reports:delivery_retry", args=[row.pk]))
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.status == D.SENT and row.attempts == 2 and not row.permanent_error
    assert _header(smtp.reports()[doctor.mssante_email], "Message-ID") == row.message_id
    retry = _actions(case, "report.delivery_retry").get()
    assert retry.actor_id == cast.requester.user.pk and retry.object_id == str(row.pk)


@pytest.mark.parametrize(("who", "status"), [("expert", 302), ("admin", 403), ("colleague", 404),
                                             ("dispatcher", 404), ("outsider", 404)])
def test_resend_is_for_the_requester_and_the_expert(cast, client_for, who, status, django_capture_on_commit_callbacks):
    case = _accepted_case(cast)
    version = _sign(cast, case, django_capture_on_commit_callbacks)  # locmem backend: sent at once
    row = ReportDelivery.objects.get(version=version)
    ReportDelivery.objects.filter(pk=row.pk).update(status=D.FAILED, last_error="SMTPDataError: 554 refusé")
    user = cast.admin if who == "admin" else getattr(cast, who).user
    response = client_for(user).post(reverse("reports:delivery_retry", args=[row.pk]))
    assert response.status_code == status
    assert _actions(case, "report.delivery_retry").exists() == (status == 302)
    assert ReportDelivery.objects.get(pk=row.pk).status == (D.QUEUED if status == 302 else D.FAILED)


def test_a_job_run_again_never_sends_twice(cast, smtp, django_capture_on_commit_callbacks):
    case = _accepted_case(cast)
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    row = ReportDelivery.objects.get(version=version)
    assert row.status == D.SENT and len(smtp.report_messages()) == 1
    tasks.send_report_delivery.call_local(row.pk)
    with django_capture_on_commit_callbacks(execute=True):
        tasks._after_pdf_ready(version)  # the PDF step replayed: no new row, no new job
    assert len(smtp.report_messages()) == 1 and ReportDelivery.objects.get(pk=row.pk).attempts == 1
    assert ReportDelivery.objects.filter(version=version).count() == 1
    assert _actions(case, "report.delivery_queued").count() == 1

    ReportDelivery.objects.filter(pk=row.pk).update(status=D.QUEUED, sending_until=timezone.now() + timedelta(
        minutes=5))  # another worker holds it
    tasks.send_report_delivery.call_local(row.pk)
    assert len(smtp.report_messages()) == 1 and ReportDelivery.objects.get(pk=row.pk).attempts == 1


def test_a_delivery_whose_job_was_lost_is_sent_by_the_sweep(cast, smtp, settings, django_capture_on_commit_callbacks):
    case = _accepted_case(cast)
    version = _sign(cast, case, django_capture_on_commit_callbacks)
    ReportDelivery.objects.filter(version=version).delete()
    (lost,) = delivery.deliveries_create(version)  # the row was written, its job died with the worker
    smtp.received.clear()
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_report_deliveries.call_local()
    assert ReportDelivery.objects.get(pk=lost.pk).status == D.QUEUED  # it may still be in the queue: wait
    ReportDelivery.objects.filter(pk=lost.pk).update(created_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        tasks.sweep_report_deliveries.call_local()
    assert ReportDelivery.objects.get(pk=lost.pk).status == D.SENT and len(smtp.report_messages()) == 1


def test_an_amendment_is_sent_as_its_own_version(cast, smtp, django_capture_on_commit_callbacks):
    case = _accepted_case(cast)
    _sign(cast, case, django_capture_on_commit_callbacks)
    smtp.received.clear()
    v2 = _sign(cast, case, django_capture_on_commit_callbacks, number=2, amendment_reason="Précision du suivi.")
    message = smtp.reports()["requester@x.mssante.fr"]
    assert _subject(message) == f"{SUBJECT} {case.reference} (version 2)"
    assert "remplace la version 1" in message.get_body(("plain",)).get_content()
    assert _attachments(message)[f"compte-rendu-{case.reference}-v2.pdf"][1] == _stored_pdf(v2)
    assert ReportDelivery.objects.get(version=v2).status == D.SENT


def test_case_page_reads_all_deliveries_in_one_query(cast, client_for, doctor, django_capture_on_commit_callbacks):
    case = _accepted_case(cast)
    _sign(cast, case, django_capture_on_commit_callbacks)  # locmem backend
    client = client_for(cast.expert.user)
    url = reverse("cases:detail", args=[case.pk])
    client.get(url)  # the first visit creates the read marker

    def count():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    Patient.objects.filter(pk=case.patient_id).update(treating_doctor=doctor)
    _sign(cast, case, django_capture_on_commit_callbacks, number=2, amendment_reason="Précision.")
    assert ReportDelivery.objects.filter(version__case=case).count() == 3
    assert count() == before


@pytest.mark.parametrize(("env", "name"), [({"EMAIL_USE_TLS": "1", "EMAIL_USE_SSL": "1"}, "EMAIL_USE_TLS"),
                                           ({"REPORT_DELIVERY_SWEEP_MINUTES": "7"}, "REPORT_DELIVERY_SWEEP_MINUTES")])
def test_contradictory_mail_settings_refuse_to_start(env, name):
    from tests.test_platform import PRODUCTION, _import_settings

    result = _import_settings(**PRODUCTION, **env)
    assert result.returncode != 0 and name in result.stderr
    assert _import_settings(**PRODUCTION, EMAIL_USE_SSL="1", EMAIL_PORT="465").returncode == 0
