"""What the requester and the expert exchange around a request: the thread (Communication) and the attached files
(DocumentReference, whose bytes are a Binary).

DocumentReference serves two tables under one type: the signed report versions (`handlers`, the PDF embedded)
and the case's attachments (here, the bytes at `Binary/<id>`); both have UUID ids, so an id names one row of
one of them. Everything is read through the user-bound selectors (404 for anyone else) and audited as the web
pages audit it.
"""

import base64
import dataclasses
import logging

from django.core.exceptions import ImproperlyConfigured
from django.db.models import F, Value
from django.http import Http404, StreamingHttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from fhir.resources.R4B.binary import Binary
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.documentreference import DocumentReference

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import selectors
from teleexpertise.documents import storage
from teleexpertise.documents.models import Document
from teleexpertise.documents.selectors import document_for_user
from teleexpertise.fhir import handlers, resources
from teleexpertise.fhir.dates import DateValueError, parse_date_range
from teleexpertise.fhir.handlers import FhirError, ResourceType, parse_id, reference_param
from teleexpertise.fhir.resources import _clean as clean
from teleexpertise.fhir.resources import _instant
from teleexpertise.fhir.sent import checked, dumps
from teleexpertise.messaging.models import Message
from teleexpertise.messaging.services import thread_mark_read

logger = logging.getLogger(__name__)
MEDIA_TYPE = "application/fhir+json"
DOCUMENT_KIND_SYSTEM = f"{resources.PLATFORM_FHIR}/CodeSystem/document-kind"  # documents.Document.Kind
ATTACHED_TO_SYSTEM = f"{resources.PLATFORM_FHIR}/CodeSystem/attached-to"  # request | information | report | message
MESSAGE_KIND_SYSTEM = f"{resources.PLATFORM_FHIR}/CodeSystem/message-kind"  # messaging.Message.Kind


def _practitioner(pro) -> dict:
    return resources.reference("Practitioner", pro, pro.display_name)


def _patient(patient) -> dict:
    return resources.reference("Patient", patient, patient.display_name)


def _coded(system: str, code: str, display) -> dict:
    return {"coding": [{"system": system, "code": code, "display": str(display)}], "text": str(display)}


def _audit_document(request, document, action: str, resource_type: str) -> None:
    audit_log(actor=request.user, action=action, kind=AuditEvent.Kind.READ, obj=document, case=document.case,
              ip=client_ip(request), summary=f"FHIR {resource_type} {document.name}"[:255])


# --- Communication: the case thread, one message each --------------------------------------------------------

def communication(message: Message) -> dict:
    """A message of the thread: from its author to the other party (the network's queue while pooled)."""
    case = message.case
    recipients = [_practitioner(p) for p in (case.requester, case.expert)
                  if p is not None and p.pk != message.author_id]
    if case.expert_id is None and case.network_id and message.author_id == case.requester_id:
        recipients.append(resources.network_reference(case.network))
    payload = [{"contentString": message.body}]
    payload += [{"contentReference": {"reference": f"DocumentReference/{document.pk}", "display": document.name}}
                for document in message.documents.all()]
    return checked(Communication, clean({
        "resourceType": "Communication", "id": str(message.pk), "status": "completed",
        "basedOn": [resources.reference("ServiceRequest", case)], "partOf": [resources.reference("Task", case)],
        "category": [_coded(MESSAGE_KIND_SYSTEM, message.kind, Message.Kind(message.kind).label)],
        "subject": _patient(case.patient), "sent": _instant(message.created_at),
        "sender": _practitioner(message.author), "recipient": recipients, "payload": payload,
    }))


MESSAGE_RELATED = ("case__patient", "case__requester", "case__expert", "case__network", "author")


def _messages(user):
    return (Message.objects.filter(case__in=selectors.cases_visible_to(user).values("pk"))
            .select_related(*MESSAGE_RELATED).prefetch_related("documents").order_by("created_at", "pk"))


def _audit_thread_read(request, cases) -> None:
    """As the REST API's thread read: audited once per case, and the thread counts as read by the caller."""
    for case in {message_case.pk: message_case for message_case in cases}.values():
        audit_log(actor=request.user, action="case.view", kind=AuditEvent.Kind.READ, obj=case, case=case,
                  ip=client_ip(request), summary="FHIR Communication")
        thread_mark_read(user=request.user, case=case)


def read_communication(request, pk):
    message = _messages(request.user).filter(pk=parse_id(pk)).first()
    if message is None:
        raise Http404
    _audit_thread_read(request, [message.case])
    return communication(message)


def render_communications(request, rows):
    _audit_thread_read(request, [message.case for message in rows])
    return [communication(message) for message in rows]


_CASE_OF = {"ServiceRequest": "based-on", "Task": "part-of"}

COMMUNICATION = ResourceType("Communication", read_communication, _messages, render_communications, (
    reference_param("based-on", "ServiceRequest/<id>: the thread of this request", "case_id", "ServiceRequest"),
    reference_param("part-of", "Task/<id>: the thread of this work item (the same case)", "case_id", "Task"),
))


# --- DocumentReference: the case's attachments (and, through handlers, the signed reports) --------------------

def attachment_reference(document: Document) -> dict:
    """The file's metadata; its bytes are read from `content.attachment.url` (Binary/<id>)."""
    case = document.case
    related = [resources.reference("ServiceRequest", case)]
    if document.message_id:
        related.append({"reference": f"Communication/{document.message_id}"})
    attachment = {"contentType": document.media_type, "url": f"Binary/{document.pk}", "size": document.size,
                  "title": document.name, "creation": _instant(document.uploaded_at)}
    return checked(DocumentReference, clean({
        "resourceType": "DocumentReference", "id": str(document.pk), "status": "current", "docStatus": "final",
        "type": _coded(DOCUMENT_KIND_SYSTEM, document.kind, Document.Kind(document.kind).label),
        "category": [_coded(ATTACHED_TO_SYSTEM, document.attached_to, Document.AttachedTo(document.attached_to).label)],
        "subject": _patient(case.patient), "date": _instant(document.uploaded_at),
        "author": [_practitioner(document.uploaded_by)], "description": document.name,
        "content": [{"attachment": attachment}], "context": {"related": related},
    }))


_DOCUMENT_RELATED = ("case__patient", "uploaded_by")


def _attachments(user):
    return (Document.objects.filter(case__in=selectors.cases_visible_to(user).values("pk"))
            .select_related(*_DOCUMENT_RELATED))


class DocumentRows:
    """The two tables a DocumentReference search reads, filtered alike (both have `case`) and paged as one list,
    newest first: one UNION query for the page's ids, then one query per table for the rows."""

    def __init__(self, reports, attachments):
        self.reports, self.attachments = reports, attachments

    def filter(self, **lookups) -> "DocumentRows":
        return DocumentRows(self.reports.filter(**lookups), self.attachments.filter(**lookups))

    def count(self) -> int:
        return self.reports.count() + self.attachments.count()

    def __getitem__(self, window: slice) -> list:
        reports = self.reports.order_by().annotate(at=F("signed_at"), table=Value(0)).values_list("pk", "at", "table")
        files = (self.attachments.order_by().annotate(at=F("uploaded_at"), table=Value(1))
                 .values_list("pk", "at", "table"))
        page = list(reports.union(files, all=True).order_by("-at", "pk")[window])
        found = {**self.reports.in_bulk([pk for pk, _at, table in page if table == 0]),
                 **self.attachments.in_bulk([pk for pk, _at, table in page if table == 1])}
        return [found[pk] for pk, _at, _table in page]


def document_rows(user) -> DocumentRows:
    return DocumentRows(handlers._ready_versions(user), _attachments(user))


def read_document_reference(request, pk):
    pk = parse_id(pk)
    if not Document.objects.filter(pk=pk).exists():
        return handlers._read_document_reference(request, str(pk))  # a signed report version, or nothing
    document = document_for_user(request.user, pk)
    _audit_document(request, document, "document.view", "DocumentReference")
    return attachment_reference(document)


def render_document_references(request, rows):
    found = []
    for row in rows:
        if isinstance(row, Document):
            _audit_document(request, row, "document.view", "DocumentReference")
            found.append(attachment_reference(row))
        else:
            found.extend(handlers._render_document_references(request, [row]))
    return found


def _documents_last_updated(rows: DocumentRows, value: str) -> DocumentRows:
    """A report last changed when it was signed, an attachment when it was uploaded."""
    try:
        dates = parse_date_range(value)
    except DateValueError as exc:
        raise FhirError(400, "value", str(exc)) from None
    return DocumentRows(rows.reports.filter(dates.filter("signed_at")),
                        rows.attachments.filter(dates.filter("uploaded_at")))


DOCUMENT_PARAMS = (
    handlers._REPORT_PATIENT,
    dataclasses.replace(handlers._last_updated("signed_at"), apply=_documents_last_updated),
    reference_param("related", "ServiceRequest/<id>: the attachments and signed reports of this request", "case_id",
                    "ServiceRequest"),
)


# --- Binary: an attachment's bytes ---------------------------------------------------------------------------

def _wants_fhir(request) -> bool:
    """FHIR: the bytes as they are, unless the client asks for the Binary resource in JSON."""
    return MEDIA_TYPE in request.headers.get("Accept", "") or "_format" in request.GET


def read_binary(request, pk):
    """The decrypted file, streamed as the documents app serves it: the key and the header are checked before
    the first byte goes out, the SHA-256 before the last one."""
    document = document_for_user(request.user, parse_id(pk))
    try:
        chunks = storage.read_all_verified(storage.blob_of(document))
    except (storage.IntegrityError, ImproperlyConfigured) as exc:
        logger.error("document unreadable", extra={"document": str(document.pk), "error": str(exc)})
        audit_log(actor=request.user, action="document.integrity_error", kind=AuditEvent.Kind.EXECUTE, obj=document,
                  case=document.case, ip=client_ip(request), summary=f"{document.name}: {exc.__class__.__name__}")
        raise FhirError(500, "exception", _("Le document n'a pas pu être relu (contrôle d'intégrité).")) from None
    _audit_document(request, document, "document.download", "Binary")
    if _wants_fhir(request):
        response = StreamingHttpResponse(_binary_json(document, chunks), content_type=f"{MEDIA_TYPE}; charset=utf-8")
    else:
        response = StreamingHttpResponse(chunks, content_type=document.media_type)
        response["Content-Length"] = str(document.size)
        response["Content-Disposition"] = content_disposition_header(True, document.name)
    response["Cache-Control"] = "private, no-store"
    return response


def _binary_json(document: Document, chunks):
    """The Binary resource, its data base64-encoded as the file is read: the resource is validated without its
    data, then the data is spliced in as the last element."""
    head = dumps(checked(Binary, {
        "resourceType": "Binary", "id": str(document.pk), "contentType": document.media_type,
        "securityContext": {"reference": f"DocumentReference/{document.pk}"}}))
    yield head[:-1].encode() + b',"data":"'
    pending = b""
    for chunk in chunks:
        pending += chunk
        whole = len(pending) // 3 * 3
        yield base64.b64encode(pending[:whole])
        pending = pending[whole:]
    yield base64.b64encode(pending) + b'"}'


BINARY = ResourceType("Binary", read_binary)
