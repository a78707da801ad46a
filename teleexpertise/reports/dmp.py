"""Filing signed reports for the DMP through an outbox folder that the establishment's DMP connector sends from.

Talking to the DMP itself needs the establishment's certificates and a certified connector; the platform's part
ends at the outbox: one folder per signed version (`<reference>-v<n>/`: the CDA, its XDS metadata and a JSON
manifest), which appears whole or not at all (written in a hidden staging folder, then renamed). The layout is
documented in docs/operations.md. A row per version (`DmpExport`) and the audit trail say where each filing is.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.documents import storage
from teleexpertise.reports import cda, codes, xds
from teleexpertise.reports.models import DmpExport, RenderedReport, ReportVersion

DOCUMENT_FILE, METADATA_FILE, MANIFEST_FILE = "DOC0001.XML", "METADATA.XML", "manifest.json"
MANIFEST_FORMAT = "teleexpertise-dmp-outbox/1"
E = DmpExport.Status


class DmpRefused(Exception):
    """A filing the DMP would refuse whatever the retries (the message is for the case page, in French)."""


def outbox_enabled() -> bool:
    return bool(settings.DMP_OUTBOX_DIR)


def dmp_export_prepare(version: ReportVersion) -> bool:
    """The pending row of a version's filing; False when the export is off or the version is already filed."""
    if not outbox_enabled() or not version.is_signed:
        return False
    export, _created = DmpExport.objects.get_or_create(version=version)
    return not export.is_written


def folder_name(version: ReportVersion) -> str:
    return f"{version.case.reference}-v{version.number}"


def export_version(version_id) -> Path:
    """Build the CDA and its metadata from the stored PDF, write them to the outbox, mark the row written."""
    version = _version_for_export(version_id)
    if not codes.ins_shareable(version.case.patient):
        raise DmpRefused(_("L'identité du patient n'est pas qualifiée : le DMP n'accepte que l'INS d'une "
                           "identité qualifiée. Qualifiez l'identité du patient puis relancez le versement."))
    document = cda.build_cda(version, stored_pdf(version))
    metadata = xds.build_submission(version, document)
    folder = write_outbox(folder_name(version), {
        DOCUMENT_FILE: document, METADATA_FILE: metadata, MANIFEST_FILE: _manifest(version, document)})
    _mark_written(version, folder)
    return folder


def _version_for_export(version_id) -> ReportVersion:
    return ReportVersion.objects.select_related(
        "case__patient__treating_doctor__profession", "case__requester__profession", "case__requester__specialty",
        "case__requester__organisation", "author__profession", "author__specialty", "author__organisation",
    ).get(pk=version_id, status=ReportVersion.Status.SIGNED)


def stored_pdf(version: ReportVersion) -> bytes:
    """The decrypted, integrity-checked PDF of a version (RuntimeError while it is not rendered yet)."""
    rendered = RenderedReport.objects.filter(version=version, status=RenderedReport.Status.READY).first()
    if rendered is None:
        raise RuntimeError("the PDF of this version is not ready")
    return b"".join(storage.read_all_verified(storage.blob_of(rendered)))


def _manifest(version: ReportVersion, document: bytes) -> bytes:
    """What a connector needs without parsing the XML: which file is what, and which filing this one replaces."""
    replaced = cda.replaced_version(version)
    data = {
        "format": MANIFEST_FORMAT, "case": version.case.reference, "version": version.number,
        "patientId": xds.patient_id(version.case.patient), "signedAt": version.signed_at.isoformat(),
        "document": {"file": DOCUMENT_FILE, "mimeType": "text/xml", "uniqueId": codes.document_oid(version),
                     "entryUUID": xds.entry_uuid(version), "setId": codes.set_oid(version.case),
                     "size": len(document), "sha1": xds.sha1_hex(document)},
        "metadata": METADATA_FILE,
        "replaces": None if replaced is None else {
            "uniqueId": codes.document_oid(replaced), "entryUUID": xds.entry_uuid(replaced),
            "version": replaced.number},
    }
    return json.dumps(data, ensure_ascii=False, indent=2).encode()


def write_outbox(name: str, files: dict[str, bytes]) -> Path:
    """Write `files` into <outbox>/<name>/ atomically; an existing folder means an earlier attempt finished."""
    root = Path(settings.DMP_OUTBOX_DIR)
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    final = root / name
    if final.is_dir():
        return final
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))  # hidden, 0700: connectors skip dot folders
    try:
        for filename, data in files.items():
            _write_synced(staging / filename, data)
        os.rename(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if final.is_dir():  # another worker renamed first: same version, same content
            return final
        raise
    _fsync(root)
    return final


def _write_synced(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _fsync(directory: Path) -> None:
    """Make the rename durable: a crash after it must not leave a folder the connector saw and then lost."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mark_written(version: ReportVersion, folder: Path) -> None:
    with transaction.atomic():
        updated = DmpExport.objects.filter(version=version).exclude(status=E.WRITTEN).update(
            status=E.WRITTEN, error="", reason="", folder=folder.name, document_id=codes.document_oid(version),
            written_at=timezone.now())
        if updated:
            audit_log(actor=None, action="report.dmp_written", kind=AuditEvent.Kind.EXECUTE, obj=version,
                      case=version.case, summary=_("Version %(n)s, dossier %(folder)s") % {
                          "n": version.number, "folder": folder.name})


def mark_failed(version_id, error: str, *, final: bool, reason: str = "") -> None:
    """Keep the error on the row; only the last attempt marks it failed and writes the timeline event. `reason`
    is what readers of the case see (a technical error's detail stays for operators: it may name server paths)."""
    reason = reason or _("Erreur technique lors du dépôt dans la boîte d'envoi DMP ; le détail est dans les "
                         "journaux de la plateforme. Vous pouvez relancer le versement.")
    with transaction.atomic():
        updated = DmpExport.objects.filter(version_id=version_id).exclude(status=E.WRITTEN).update(
            status=E.FAILED if final else E.PENDING, error=error[:2000], reason=reason[:500])
        if updated and final:
            version = ReportVersion.objects.select_related("case").get(pk=version_id)
            audit_log(actor=None, action="report.dmp_failed", kind=AuditEvent.Kind.EXECUTE, obj=version,
                      case=version.case, summary=reason)
