"""Filing signed reports for the DMP: the outbox folder per version, its status on the case, retries, downloads."""

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone
from lxml import etree

from teleexpertise.audit.labels import action_label
from teleexpertise.audit.models import AuditEvent
from teleexpertise.patients.models import Patient
from teleexpertise.reports import codes, dmp, tasks, xds
from teleexpertise.reports.models import DmpExport, RenderedReport, ReportVersion
from teleexpertise.reports.services import report_save_draft, report_sign

E = DmpExport.Status
R = {"rim": xds.RIM}


@pytest.fixture(autouse=True)
def _places(tmp_path, settings):
    settings.DOCUMENT_STORAGE = "local"
    settings.DOCUMENT_ROOT = str(tmp_path / "documents")
    settings.DMP_OUTBOX_DIR = str(tmp_path / "outbox")


@pytest.fixture
def signed(cast, django_capture_on_commit_callbacks):
    """Sign version 1 of an accepted case whose patient identity is qualified; the PDF and DMP jobs run."""
    return _sign(cast, django_capture_on_commit_callbacks, qualified=True)


def _sign(cast, capture, *, qualified: bool):
    case = cast.case_in("accepted")
    if qualified:
        Patient.objects.filter(pk=case.patient_id).update(identity_status=Patient.IdentityStatus.QUALIFIED)
    expert = cast.actor(cast.expert)
    with capture(execute=True):
        report_save_draft(actor=expert, case_id=case.pk, data={"act_at": timezone.now(), "answer": "Bénin.",
                                                               "conclusion": "Surveillance."})
        report_sign(actor=expert, case_id=case.pk)
    return ReportVersion.objects.select_related("case").get(case=case, number=1)


def _amend(cast, case, capture) -> ReportVersion:
    expert = cast.actor(cast.expert)
    with capture(execute=True):
        report_save_draft(actor=expert, case_id=case.pk, data={
            "act_at": timezone.now(), "answer": "Bénin, confirmé.", "conclusion": "Surveillance annuelle.",
            "amendment_reason": "Précision."})
        report_sign(actor=expert, case_id=case.pk)
    return ReportVersion.objects.select_related("case").get(case=case, number=2)


def _outbox(settings) -> Path:
    return Path(settings.DMP_OUTBOX_DIR)


def test_a_signed_version_lands_whole_in_the_outbox(signed, settings):
    export = DmpExport.objects.get(version=signed)
    assert export.status == E.WRITTEN, export.error
    folder = _outbox(settings) / f"{signed.case.reference}-v1"
    assert export.folder == folder.name and export.document_id == codes.document_oid(signed)
    assert sorted(os.listdir(_outbox(settings))) == [folder.name]  # no staging folder left behind
    assert sorted(os.listdir(folder)) == ["DOC0001.XML", "METADATA.XML", "manifest.json"]
    assert stat.S_IMODE(os.stat(folder / "DOC0001.XML").st_mode) == 0o600
    cda = (folder / "DOC0001.XML").read_bytes()
    assert etree.fromstring(cda).find("{urn:hl7-org:v3}id").get("root") == codes.document_oid(signed)
    metadata = etree.fromstring((folder / "METADATA.XML").read_bytes())
    assert metadata.xpath("//rim:Slot[@name='hash']/rim:ValueList/rim:Value/text()", namespaces=R) == [
        xds.sha1_hex(cda)]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    patient = Patient.objects.get(pk=signed.case.patient_id)
    assert manifest["document"]["uniqueId"] == codes.document_oid(signed) and manifest["replaces"] is None
    assert manifest["patientId"] == f"{patient.ins_nir}^^^&1.2.250.1.213.1.4.8&ISO^NH"
    event = AuditEvent.objects.get(action="report.dmp_written", object_id=str(signed.pk))
    assert event.case_id == signed.case_id and folder.name in event.summary


def test_the_filing_shows_on_the_case_page_and_its_timeline(cast, client_for, signed):
    page = client_for(cast.requester.user).get(reverse("cases:detail", args=[signed.case_id])).content.decode()
    assert "DMP : déposé dans la boîte d'envoi le" in page
    assert str(action_label("report.dmp_written")).replace("'", "&#x27;") in page
    assert reverse("reports:cda", args=[signed.pk]) in page


def test_an_amendment_is_filed_as_a_replacement(cast, signed, settings, django_capture_on_commit_callbacks):
    v2 = _amend(cast, signed.case, django_capture_on_commit_callbacks)
    folder = _outbox(settings) / f"{signed.case.reference}-v2"
    assert DmpExport.objects.get(version=v2).status == E.WRITTEN
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["replaces"] == {"uniqueId": codes.document_oid(signed), "entryUUID": f"urn:uuid:{signed.id}",
                                    "version": 1}
    metadata = etree.fromstring((folder / "METADATA.XML").read_bytes())
    replace = metadata.xpath(f"//rim:Association[@associationType='{xds.RPLC}']", namespaces=R)
    assert [a.get("targetObject") for a in replace] == [f"urn:uuid:{signed.id}"]
    assert (_outbox(settings) / f"{signed.case.reference}-v1" / "DOC0001.XML").exists()  # v1 stays as it was


def test_the_job_is_idempotent(signed, settings):
    document = _outbox(settings) / f"{signed.case.reference}-v1" / "DOC0001.XML"
    document.write_bytes(b"touched by the connector")
    tasks.export_report_to_dmp.call_local(signed.pk)  # already written: nothing to do
    assert AuditEvent.objects.filter(action="report.dmp_written").count() == 1
    # A crash between the rename and the row update: the folder is there, the row still pending.
    DmpExport.objects.filter(version=signed).update(status=E.PENDING, folder="", written_at=None)
    tasks.export_report_to_dmp.call_local(signed.pk)
    assert document.read_bytes() == b"touched by the connector"
    assert DmpExport.objects.get(version=signed).status == E.WRITTEN


def test_an_unqualified_identity_is_refused_at_once_and_can_be_retried(cast, client_for, settings,
                                                                       django_capture_on_commit_callbacks):
    version = _sign(cast, django_capture_on_commit_callbacks, qualified=False)
    export = DmpExport.objects.get(version=version)
    assert export.status == E.FAILED and "identité du patient n'est pas qualifiée" in export.reason
    assert not _outbox(settings).exists() or not os.listdir(_outbox(settings))
    assert AuditEvent.objects.filter(action="report.dmp_failed", object_id=str(version.pk)).exists()
    page = client_for(cast.requester.user).get(reverse("cases:detail", args=[version.case_id])).content.decode()
    assert "DMP : échec du versement." in page and reverse("reports:dmp_retry", args=[version.pk]) in page
    assert "n&#x27;est pas qualifiée" in page

    Patient.objects.filter(pk=version.case.patient_id).update(identity_status=Patient.IdentityStatus.QUALIFIED)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(cast.expert.user).post(reverse("reports:dmp_retry", args=[version.pk]))
    assert response.status_code == 302
    assert DmpExport.objects.get(version=version).status == E.WRITTEN
    assert AuditEvent.objects.filter(action="report.dmp_retry", object_id=str(version.pk)).exists()


def test_a_transient_error_is_retried_and_only_the_last_attempt_fails(signed, settings, tmp_path):
    DmpExport.objects.filter(version=signed).update(status=E.PENDING)
    blocker = tmp_path / "not-a-folder"
    blocker.write_bytes(b"")
    settings.DMP_OUTBOX_DIR = str(blocker / "outbox")  # cannot be created: a file stands in the way
    with pytest.raises(OSError):
        tasks.export_report_to_dmp.call_local(signed.pk, task=SimpleNamespace(retries=2))
    export = DmpExport.objects.get(version=signed)
    assert export.status == E.PENDING and "Error" in export.error
    assert not AuditEvent.objects.filter(action="report.dmp_failed").exists()
    tasks.export_report_to_dmp.call_local(signed.pk)  # the last attempt
    export = DmpExport.objects.get(version=signed)
    assert export.status == E.FAILED and "NotADirectoryError" in export.error
    assert str(blocker) not in export.reason and "Erreur technique" in export.reason  # no server path shown
    event = AuditEvent.objects.get(action="report.dmp_failed", object_id=str(signed.pk))
    assert event.summary == export.reason


def test_a_write_that_fails_halfway_leaves_no_folder(signed, settings, monkeypatch):
    real = dmp._write_synced
    calls = []

    def fail_on_second(path, data):
        calls.append(path.name)
        if len(calls) == 2:
            raise OSError("disk full")
        real(path, data)

    monkeypatch.setattr(dmp, "_write_synced", fail_on_second)
    with pytest.raises(OSError):
        dmp.write_outbox("TE-TEST-v9", {"a": b"1", "b": b"2", "c": b"3"})
    assert sorted(os.listdir(_outbox(settings))) == [f"{signed.case.reference}-v1"]


def test_no_filing_when_the_outbox_is_turned_off(cast, settings, django_capture_on_commit_callbacks):
    settings.DMP_OUTBOX_DIR = ""
    version = _sign(cast, django_capture_on_commit_callbacks, qualified=True)
    assert RenderedReport.objects.get(version=version).is_ready
    assert not DmpExport.objects.exists()


@pytest.mark.parametrize(("who", "allowed"), [("requester", True), ("expert", True), ("admin", True),
                                              ("colleague", False), ("dispatcher", False), ("outsider", False)])
def test_cda_download_is_for_readers_of_the_case_and_audited(cast, client_for, signed, who, allowed):
    user = cast.admin if who == "admin" else getattr(cast, who).user
    response = client_for(user).get(reverse("reports:cda", args=[signed.pk]))
    downloads = AuditEvent.objects.filter(action="report.cda_download", object_id=str(signed.pk))
    if not allowed:
        assert response.status_code == 404 and not downloads.exists()
        return
    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response["Content-Disposition"] == f'attachment; filename="compte-rendu-{signed.case.reference}-v1.xml"'
    assert response["Cache-Control"] == "private, no-store"
    folder = Path(dmp.settings.DMP_OUTBOX_DIR) / f"{signed.case.reference}-v1"
    assert response.content == (folder / "DOC0001.XML").read_bytes()  # the download is the filed document
    assert downloads.get().actor_id == user.pk


def test_cda_of_a_draft_or_of_a_pdf_not_ready_is_not_found(cast, client_for, signed):
    RenderedReport.objects.filter(version=signed).update(status=RenderedReport.Status.PENDING)
    assert client_for(cast.expert.user).get(reverse("reports:cda", args=[signed.pk])).status_code == 404


def test_dmp_retry_is_refused_to_outsiders_and_to_the_admin(cast, client_for, signed):
    DmpExport.objects.filter(version=signed).update(status=E.FAILED)
    assert client_for(cast.outsider.user).post(reverse("reports:dmp_retry", args=[signed.pk])).status_code == 404
    assert client_for(cast.admin).post(reverse("reports:dmp_retry", args=[signed.pk])).status_code == 403
    assert DmpExport.objects.get(version=signed).status == E.FAILED
