"""Adding documents to a case: check the bytes, scan, encrypt and store, then record — or leave nothing.

The order matters: the file is checked and neutralised on local disk first, then stored encrypted, and the
database row is written last in a transaction; if that transaction fails the stored object is deleted, so an
interrupted upload leaves neither a partial file nor a half-made record.
"""

import dataclasses
import logging
import shutil
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases import workflow
from teleexpertise.cases.models import Case
from teleexpertise.cases.services import lock_case_row
from teleexpertise.cases.workflow import Actor, WorkflowError
from teleexpertise.core.compiled import CompiledInsert, CompiledQuery
from teleexpertise.documents import checks, clamav, previews, storage
from teleexpertise.documents.models import Document
from teleexpertise.documents.spool import Spool
from teleexpertise.documents.upload_handlers import EncryptedUploadedFile, UnstoredUploadedFile

logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024
S = Case.State

# Who may attach what, and when. Requests: the requester, until the case is answered. Report: the expert
# while writing or amending it. Messages and information answers follow their own actions.
_REQUEST_STATES = {S.DRAFT, S.SUBMITTED, S.TAKEN, S.AWAITING_INFORMATION, S.ACCEPTED}
_REPORT_STATES = {S.ACCEPTED, S.ANSWERED, S.CLOSED}


def may_attach(actor: Actor, case: Case, attached_to: str) -> bool:
    roles = workflow.roles_for(actor, case)
    if attached_to == Document.AttachedTo.REQUEST:
        return workflow.REQUESTER in roles and case.state in _REQUEST_STATES
    if attached_to == Document.AttachedTo.REPORT:
        return workflow.EXPERT in roles and case.state in _REPORT_STATES
    if attached_to == Document.AttachedTo.INFORMATION:
        return workflow.REQUESTER in roles and case.state == S.AWAITING_INFORMATION
    return workflow.may_post_message(actor, case)


def _file_chunks(path: Path):
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def _refuse(*, actor: Actor, case: Case, name: str, reason: str, message, ip) -> None:
    """The refusal is audited in its own transaction: it must outlive the error it raises."""
    with transaction.atomic():
        audit_log(actor=actor.user, action="document.refused", kind=AuditEvent.Kind.EXECUTE, case=case, ip=ip,
                  summary=_("Fichier « %(name)s » refusé (%(reason)s)") % {"name": name, "reason": reason})
    raise ValidationError(message, code=reason)


# The bytes a case's documents take, compiled once (building the aggregate cost more than running it).
_case_bytes = CompiledQuery(
    lambda case: Document.objects.filter(case_id=case).order_by().values("case_id").annotate(total=Sum("size"))
    .values("total"),
    case=uuid.UUID)


def _check_case_quota(case: Case, size: int) -> None:
    used = sum(row["total"] for row in _case_bytes.all(case=case.pk))
    if used + size > settings.DOCUMENT_MAX_CASE_BYTES:
        raise ValidationError(
            _("Cette demande a atteint la taille maximale de ses documents (%(limit)s).")
            % {"limit": filesizeformat(settings.DOCUMENT_MAX_CASE_BYTES)}, code="case_quota")


def _scan(*, actor, case, source, name, ip) -> None:
    """`source`: a path or an open binary file (positioned anywhere: the whole file is scanned)."""
    try:
        signature = clamav.scan(source)
    except clamav.ScannerUnavailable:
        # A configured scanner that does not answer blocks uploads: accepting unscanned files would make the
        # setting silently useless.
        logger.error("malware scanner unavailable", extra={"case": str(case.pk)})
        raise ValidationError(_("L'analyse antivirus est indisponible : réessayez dans quelques minutes."),
                              code="scanner") from None
    if signature:
        _refuse(actor=actor, case=case, name=name, reason=f"malware {signature}", ip=ip,
                message=_("Ce fichier contient un logiciel malveillant (%(name)s) : il a été refusé.")
                % {"name": signature})


# What an upload reads and writes on every file, compiled once (core/compiled.py): building the case's join and
# the document's INSERT cost more than a 100 KB photo's checks (bench/api).
_case_with_people = CompiledQuery(
    lambda pk: Case.objects.select_related("requester__profession", "expert__profession").filter(pk=pk), pk=uuid.UUID)
_insert_document = CompiledInsert(Document)


def document_add(*, actor: Actor, case_id, upload, kind: str, attached_to: str = Document.AttachedTo.REQUEST,
                 message=None, ip=None) -> Document:
    """Check, neutralise, scan, encrypt and store one uploaded file (a Django UploadedFile), then record it."""
    case = _case_with_people.first(pk=case_id)
    if case is None:
        raise Case.DoesNotExist
    if not may_attach(actor, case, attached_to):
        raise WorkflowError(_("Vous ne pouvez pas ajouter de document ici à ce stade de la demande."))
    if kind not in Document.Kind.values:
        raise ValidationError(_("Choisissez le type de document."), code="kind")
    if upload.size > settings.DOCUMENT_MAX_FILE_BYTES:
        raise ValidationError(_("Fichier trop volumineux : %(limit)s au plus par fichier.")
                              % {"limit": filesizeformat(settings.DOCUMENT_MAX_FILE_BYTES)}, code="file_size")
    _check_case_quota(case, upload.size)
    spooled = _spooled(upload)
    workdir = Path(tempfile.mkdtemp(prefix="te-upload-"))
    try:
        inspected, details = _check(actor=actor, case=case, spooled=spooled, name=upload.name or "",
                                    workdir=workdir, ip=ip)
        if inspected.path is None:  # accepted as sent: the encrypted spool becomes the stored object
            blob = spooled.commit()
        else:  # neutralised (a re-encoded photo, a DICOM without its preamble...): store the new file
            blob = storage.put(_file_chunks(inspected.path))
        return _record(actor=actor, case_id=case.pk, blob=blob, inspected=inspected, details=details, kind=kind,
                       attached_to=attached_to, message=message, ip=ip)
    finally:
        spooled.discard()
        shutil.rmtree(workdir, ignore_errors=True)


def _spooled(upload) -> Spool:
    """The upload's encrypted spool: made while receiving by our upload handler, or here for any other file."""
    if isinstance(upload, EncryptedUploadedFile):
        return upload.spool
    if isinstance(upload, UnstoredUploadedFile):
        raise upload.error
    spooled = Spool()
    try:
        for chunk in upload.chunks(CHUNK):
            spooled.write(chunk)
        spooled.finish()
    except BaseException:
        spooled.discard()
        raise
    return spooled


def _check(*, actor, case, spooled: Spool, name: str, workdir: Path, ip):
    """Scan and inspect the plaintext. Videos are checked where they are, read back from the encrypted spool;
    the other kinds need a plaintext file (their parsers and re-encoders work on whole files): it is written to
    a private temporary directory and removed with it."""
    with spooled.open() as plain:
        head = plain.read(checks.SNIFF_SIZE)
        streamed = checks.sniff_streamed_kind(head)
        if streamed:
            # The scanner sees what the user sent, before re-encoding could hide (or break) a signature.
            _scan(actor=actor, case=case, source=plain, name=name, ip=ip)
            inspected = _inspect(actor=actor, case=case, name=name, ip=ip, run=lambda: checks.inspect_stream(
                streamed, plain, spooled.size, name, rar_scan=spooled.rar_scan))
            return inspected, dict(inspected.details)
        source = workdir / "upload"
        plain.seek(0)
        with open(source, "xb") as handle:
            shutil.copyfileobj(plain, handle, CHUNK)
    _scan(actor=actor, case=case, source=source, name=name, ip=ip)
    inspected = _inspect(actor=actor, case=case, name=name, ip=ip,
                         run=lambda: checks.inspect_upload(source, name, workdir=workdir))
    details = dict(inspected.details)
    if inspected.category == Document.Category.DICOM:  # what the viewer shows: exam date, region, series
        details = {**previews.dicom_info(inspected.path), **details}
    if inspected.path == source:  # unchanged: the spool already holds exactly these bytes, encrypted
        inspected = dataclasses.replace(inspected, path=None)
    return inspected, details


def _inspect(*, actor, case, name: str, ip, run):
    try:
        return run()
    except checks.RefusedContent as refused:
        reason = f"{refused.reason} {getattr(refused, 'detail', '')}".strip()
        _refuse(actor=actor, case=case, name=name, reason=reason, message=refused.message, ip=ip)


def _record(*, actor, case_id, blob, inspected, details, kind, attached_to, message, ip) -> Document:
    try:
        with transaction.atomic():
            # Read again under the lock, with only what may_attach reads: the workflow's locked read also joins the
            # users, network, consent and patient (about 3 ms against 0.7 on the benchmark's database).
            case = _case_with_people.first(pk=lock_case_row(case_id))
            if not may_attach(actor, case, attached_to):  # the case may have moved while the file was stored
                raise WorkflowError(_("La demande a changé d'état pendant l'envoi : le document n'a pas été ajouté."))
            document = _insert_document.create(
                case=case, attached_to=attached_to, message=message, kind=kind, category=inspected.category,
                media_type=inspected.media_type, name=inspected.safe_name, size=blob.size, sha256=blob.sha256,
                storage_key=blob.key, key_id=blob.key_id, wrapped_key=blob.wrapped_key,
                flags=list(inspected.flags), details=_jsonable(details), uploaded_by=actor.professional)
            audit_log(actor=actor.user, action="document.add", kind=AuditEvent.Kind.CREATE, obj=document, case=case,
                      ip=ip, summary=f"{document.name} ({document.get_kind_display()}, {document.size} o)")
            return document
    except BaseException:
        storage.delete(blob)
        raise


def _jsonable(details: dict) -> dict:
    return {key: (value if isinstance(value, (int, float, bool, type(None))) else str(value))
            for key, value in (details or {}).items()}


blob_of = storage.blob_of  # the documents API name for the shared helper


def document_rewrap(*, document: Document, to_key_id: str | None = None) -> bool:
    """Re-wrap one file's data key under the active master key; the ciphertext is untouched."""
    key_id, wrapped = storage.rewrap(blob_of(document), to_key_id=to_key_id)
    if key_id == document.key_id and bytes(document.wrapped_key) == wrapped:
        return False
    Document.objects.filter(pk=document.pk).update(key_id=key_id, wrapped_key=wrapped)
    audit_log(actor=None, action="document.rewrap", kind=AuditEvent.Kind.UPDATE, obj=document,
              case=document.case, summary=f"key {document.key_id} -> {key_id}")
    return True
