"""The PDF of every signed report version: rendered in the background, stored encrypted, served to readers only."""

import base64
import io
from datetime import timedelta

import pypdf
import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.documents import storage
from teleexpertise.reports import pdf, tasks
from teleexpertise.reports.models import RenderedReport, ReportVersion
from teleexpertise.reports.services import report_save_draft, report_sign

R = RenderedReport.Status


pytestmark = pytest.mark.usefixtures("local_documents")


@pytest.fixture
def answered(cast, django_capture_on_commit_callbacks):
    """An answered case whose version 1 PDF was rendered by the job (run on commit, inline in tests)."""
    with django_capture_on_commit_callbacks(execute=True):
        return cast.case_in("answered")


def _version(case, number=1) -> ReportVersion:
    return ReportVersion.objects.select_related("rendered").get(case=case, number=number)


def _stored_pdf(version) -> bytes:
    rendered = RenderedReport.objects.get(version=version)
    assert rendered.status == R.READY, rendered.error
    return b"".join(storage.read_all_verified(storage.blob_of(rendered)))


def _text(data: bytes) -> tuple[int, str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return len(reader.pages), " ".join(page.extract_text() for page in reader.pages)


def _amend(cast, case, django_capture_on_commit_callbacks):
    expert = cast.actor(cast.expert)
    with django_capture_on_commit_callbacks(execute=True):
        report_save_draft(actor=expert, case_id=case.pk, data={
            "act_at": timezone.now(), "answer": "Bénin, confirmé.", "conclusion": "Surveillance annuelle.",
            "orientation": "consultation", "consultation_at": timezone.now() + timedelta(days=10),
            "hospitalisation": "avoided", "amendment_reason": "Ajout de la consultation de contrôle."})
        report_sign(actor=expert, case_id=case.pk)
    return _version(case, 2)


def test_signed_version_gets_a_stored_encrypted_pdf_with_the_mandatory_mentions(cast, answered):
    version = _version(answered)
    data = _stored_pdf(version)
    assert data.startswith(b"%PDF")
    rendered = version.rendered
    assert rendered.size == len(data) and rendered.rendered_at and rendered.key_id
    pages, text = _text(data)
    assert 1 <= pages <= 2
    patient = answered.patient
    for mention in (answered.reference, patient.birth_name.upper(), patient.ins_display,
                    patient.get_identity_status_display(), "Paul GÉNÉRALISTE", "Anne DERMATO", cast.expert.rpps,
                    cast.requester.rpps, "Lésion pigmentée du dos évolutive", "Bénin.", "Surveillance.",
                    timezone.localtime(version.act_at).strftime("%d/%m/%Y %H:%M"), "version 1",
                    "Dermatologie"):
        assert mention in text, mention


def test_pdf_is_pdf_a_3b(answered):
    reader = pypdf.PdfReader(io.BytesIO(_stored_pdf(_version(answered))))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert 'pdfaid:part="3"' in xmp and 'pdfaid:conformance="B"' in xmp


def test_amendment_has_its_own_pdf_naming_the_reason_and_the_replaced_version(cast, answered,
                                                                              django_capture_on_commit_callbacks):
    v2 = _amend(cast, answered, django_capture_on_commit_callbacks)
    pages, text = _text(_stored_pdf(v2))
    assert "Ajout de la consultation de contrôle." in text
    assert "remplace la version 1" in text
    assert "Hospitalisation évitée" in text
    assert _stored_pdf(_version(answered, 1)) != _stored_pdf(v2)


def test_a_ready_pdf_is_not_rendered_again(answered, monkeypatch):
    version = _version(answered)
    key = version.rendered.storage_key
    monkeypatch.setattr(pdf, "render_report_pdf", lambda v: pytest.fail("rendered twice"))
    tasks.render_report_pdf.call_local(version.pk)
    assert RenderedReport.objects.get(version=version).storage_key == key


@pytest.mark.parametrize(("who", "allowed"), [("requester", True), ("expert", True), ("admin", True),
                                              ("colleague", False), ("dispatcher", False), ("outsider", False)])
def test_download_is_for_readers_of_the_case_and_audited(cast, client_for, answered, who, allowed):
    version = _version(answered)
    user = cast.admin if who == "admin" else getattr(cast, who).user
    response = client_for(user).get(reverse("reports:pdf", args=[version.pk]))
    downloads = AuditEvent.objects.filter(action="report.pdf_download", object_id=str(version.pk))
    if not allowed:
        assert response.status_code == 404
        assert not downloads.exists()
        return
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="compte-rendu-{answered.reference}-v1.pdf"'
    assert response["Cache-Control"] == "private, no-store"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response.content.startswith(b"%PDF")
    event = downloads.get()
    assert event.kind == AuditEvent.Kind.READ and event.actor_id == user.pk and event.case_id == answered.pk


def test_case_page_shows_the_download_link(cast, client_for, answered):
    version = _version(answered)
    content = client_for(cast.requester.user).get(reverse("cases:detail", args=[answered.pk])).content.decode()
    assert reverse("reports:pdf", args=[version.pk]) in content


def test_drafts_have_no_pdf(cast, client_for, answered):
    report_save_draft(actor=cast.actor(cast.expert), case_id=answered.pk, data={
        "act_at": timezone.now(), "answer": "Brouillon", "conclusion": "Brouillon"})
    draft = _version(answered, 2)
    assert not RenderedReport.objects.filter(version=draft).exists()
    assert client_for(cast.expert.user).get(reverse("reports:pdf", args=[draft.pk])).status_code == 404


def test_failed_render_is_marked_and_the_retry_button_renders_again(cast, client_for, monkeypatch,
                                                                    django_capture_on_commit_callbacks):
    def broken(version):
        raise RuntimeError("pango absent")

    monkeypatch.setattr(pdf, "render_report_pdf", broken)
    case = cast.case_in("answered")  # the job did not run: on_commit callbacks are not executed here
    version = _version(case)
    tasks.render_report_pdf.call_local(version.pk)  # called directly: the last attempt
    rendered = RenderedReport.objects.get(version=version)
    assert rendered.status == R.FAILED and "pango absent" in rendered.error
    page = client_for(cast.requester.user).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert reverse("reports:pdf_retry", args=[version.pk]) in page

    monkeypatch.undo()
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.requester.user).post(reverse("reports:pdf_retry", args=[version.pk]))
    assert response.status_code == 302
    assert _stored_pdf(version).startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="report.pdf_retry", object_id=str(version.pk)).exists()


def test_retry_is_refused_to_outsiders_and_to_the_admin(cast, client_for, answered):
    version = _version(answered)
    RenderedReport.objects.filter(version=version).update(status=R.FAILED)
    assert client_for(cast.outsider.user).post(reverse("reports:pdf_retry", args=[version.pk])).status_code == 404
    assert client_for(cast.admin).post(reverse("reports:pdf_retry", args=[version.pk])).status_code == 403


def test_url_fetcher_refuses_anything_but_local_static_files(settings):
    for url in ("https://example.org/logo.png", "http://127.0.0.1:8000/admin/", "file:///etc/passwd",
                f"file://{settings.BASE_DIR}/settings.py", f"file://{settings.BASE_DIR}/core/static/../../settings.py"):
        with pytest.raises(ValueError):
            pdf.fetch_static_only(url)
    css = (settings.BASE_DIR / "core" / "static" / "css" / "app.css").resolve()
    assert pdf.fetch_static_only(css.as_uri()).read() == css.read_bytes()


def test_an_external_image_in_the_report_text_is_never_fetched(cast, answered, monkeypatch):
    """Report text is escaped; even a template that linked out would go through the fetcher and be refused."""
    fetched = []
    monkeypatch.setattr(pdf, "_local_static_path", lambda url: fetched.append(url) or (_ for _ in ()).throw(
        ValueError(url)))
    monkeypatch.setattr(pdf, "report_html", lambda v: '<img src="https://example.org/x.png"><p>Texte</p>')
    data = pdf.render_report_pdf(_version(answered))
    assert data.startswith(b"%PDF") and fetched == ["https://example.org/x.png"]


def test_key_rotation_rewraps_report_pdfs(answered, settings):
    version = _version(answered)
    data = _stored_pdf(version)
    old = settings.DOCUMENT_MASTER_KEYS
    new_key = base64.b64encode(bytes(range(100, 132))).decode()
    settings.DOCUMENT_MASTER_KEYS = f"rotated:{new_key},{old}"
    settings.DOCUMENT_ACTIVE_KEY_ID = "rotated"
    out = io.StringIO()
    call_command("rewrap_document_keys", stdout=out)
    assert "1 report PDF key(s) re-wrapped." in out.getvalue()
    settings.DOCUMENT_MASTER_KEYS = f"rotated:{new_key}"  # the old key is retired
    assert _stored_pdf(version) == data


def test_a_tampered_pdf_is_never_served(cast, client_for, answered):
    version = _version(answered)
    RenderedReport.objects.filter(version=version).update(sha256="0" * 64)
    response = client_for(cast.requester.user).get(reverse("reports:pdf", args=[version.pk]))
    assert response.status_code == 500 and not response.content.startswith(b"%PDF")
    assert AuditEvent.objects.filter(action="report.pdf_integrity_error", object_id=str(version.pk)).exists()
    assert not AuditEvent.objects.filter(action="report.pdf_download").exists()


def test_rendering_leaves_pillow_refusing_truncated_images(answered):
    from PIL import ImageFile

    pdf.render_report_pdf(_version(answered))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
