"""The case lifecycle over REST: thin handlers that parse, call the same services and selectors as the web
pages, and shape the answer. Every case resource is found through `case_for_user` first (404 for outsiders)."""

from typing import Literal
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from teleexpertise.api import schemas as s
from teleexpertise.api.auth import require
from teleexpertise.api.errors import (
    ApiError,
    Error,
    form_errors,
    from_django_validation,
    invalid,
    refuse_unknown_query,
)
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import selectors, services, workflow
from teleexpertise.cases.forms import CaseRequestForm
from teleexpertise.cases.models import Case
from teleexpertise.core.digits import ascii_digits
from teleexpertise.directory.models import display_name
from teleexpertise.directory.selectors import experts_selectable, networks_active
from teleexpertise.documents.models import Document
from teleexpertise.documents.selectors import case_documents_list
from teleexpertise.documents.services import document_add
from teleexpertise.messaging.services import thread_mark_read
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.selectors import report_versions_list

router = Router(tags=["cases"])
ERRORS = {400: Error, 401: Error, 403: Error, 404: Error, 409: Error, 422: Error, 429: Error}

# CaseRequestForm field -> API field: the web form is the one place the request's input rules live.
_CASE_FIELDS = {
    **{name: f"patient.{name}" for name in ("ins_nir", "birth_name", "used_name", "first_names", "sex",
                                              "birth_date", "birth_place_code", "identity_status",
                                              "treating_doctor_name")},
    "treating_doctor": "patient.treating_doctor_id", "consent_status": "consent.status",
    **{name: f"consent.{name}" for name in ("given_by", "representative_name", "impossible_reason",
                                              "impossible_detail", "informed_at", "explained_interest",
                                              "explained_practicalities", "explained_right_to_refuse")},
    "expert": "expert_id", "network": "network_id", "recipient_kind": "network_id",
}


# --- Shaping answers ------------------------------------------------------------------------------------

def _professional(pro) -> dict | None:
    if pro is None:
        return None
    return {"id": pro.pk, "name": pro.display_name, "national_id": pro.national_id}


def _versions(actor, case) -> list[dict]:
    shown = report_versions_list(case)
    if workflow.EXPERT not in workflow.roles_for(actor, case):  # drafts are the expert's own
        shown = [v for v in shown if v.status == ReportVersion.Status.SIGNED]
    return [{"id": v.pk, "number": v.number, "status": v.status, "signed_at": v.signed_at,
             "pdf_ready": bool(v.pdf and v.pdf.is_ready)} for v in shown]


# What _case_out reads of the case's rows: not the case page's thirteen-table join.
CASE_OUT_RELATED = ("patient", "consent", "requester", "expert")


def _case_out(caller, case: Case) -> dict:
    return {
        "id": case.pk, "reference": case.reference, "state": case.state, "state_label": case.get_state_display(),
        "priority": case.priority, "mode": case.mode, "question": case.question, "context": case.context,
        "patient": case.patient, "consent_status": case.consent.status if case.consent_id else None,
        "requester": _professional(case.requester), "expert": _professional(case.expert),
        "network_id": case.network_id, "created_at": case.created_at, "updated_at": case.updated_at,
        "submitted_at": case.submitted_at, "due_at": case.due_at, "decline_reason": case.decline_reason,
        "actions": [t.action for t in workflow.available_actions(caller.actor, case)],
        "documents": case_documents_list(case), "reports": _versions(caller.actor, case),
    }


_ROW_FIELDS = ("pk", "reference", "state", "priority", "patient__birth_name", "patient__first_names",
               "requester__title", "requester__first_name", "requester__last_name", "expert_id", "expert__title",
               "expert__first_name", "expert__last_name", "due_at", "updated_at", "unread")


def _row(values: dict) -> dict:
    """A list row from the columns it shows (read as values: building 100 model instances a page cost more
    than the query)."""
    v = values
    return {"id": v["pk"], "reference": v["reference"], "state": v["state"], "priority": v["priority"],
            "patient_name": f"{v['patient__birth_name']} {v['patient__first_names']}",
            "requester": display_name(v["requester__title"], v["requester__first_name"], v["requester__last_name"]),
            "expert": display_name(v["expert__title"], v["expert__first_name"], v["expert__last_name"])
            if v["expert_id"] else None,
            "due_at": v["due_at"], "updated_at": v["updated_at"], "unread": v["unread"]}


def _after(request, caller, case_id):
    """The case as it is after an action; 204 when the action took it out of the caller's sight (a transfer)."""
    try:
        case = selectors.case_for_user(request.user, case_id, related=CASE_OUT_RELATED)
    except Http404:
        return Status(204, None)
    return Status(200, _case_out(caller, case))


def _act(request, case_id: UUID, scope: str, service, *, field: str = "", **kwargs):
    """Run one workflow service on a case the caller can see, and answer with the case."""
    caller = require(request, scope)
    case = selectors.case_for_user(request.user, case_id, related=())  # the service reads and locks it itself
    try:
        service(actor=caller.actor, case_id=case.pk, ip=client_ip(request), **kwargs)
    except ValidationError as exc:
        raise from_django_validation(exc, field=field) from None
    return _after(request, caller, case.pk)


ACTED = {200: s.CaseOut, 204: None, **ERRORS}


# --- Cases ----------------------------------------------------------------------------------------------

def _case_form_data(payload: s.CaseIn) -> dict:
    p, c = payload.patient, payload.consent
    data = {**p.dict(exclude={"treating_doctor_id"}), "treating_doctor": p.treating_doctor_id,
            "consent_status": c.status, **c.dict(exclude={"status"}),
            "question": payload.question, "context": payload.context, "priority": payload.priority,
            "mode": payload.mode, "recipient_kind": "expert" if payload.expert_id else "network",
            "expert": payload.expert_id, "network": payload.network_id,
            "submit_token": payload.submit_token or Case._meta.get_field("id").default()}
    return {name: value for name, value in data.items() if value is not None}


@router.post("/cases", response={201: s.CaseOut, **ERRORS}, summary="Create a draft request")
def case_create(request, payload: s.CaseIn):
    """A draft with its patient (INS) and consent record. Attach documents, then `submit`."""
    caller = require(request, "cases:write")
    if payload.expert_id and payload.network_id:
        raise invalid({"expert_id": [_("Choisissez soit un expert, soit un réseau.")]})
    form = CaseRequestForm(_case_form_data(payload), requester=caller.actor.professional)
    if not form.is_valid():
        raise form_errors(form, _CASE_FIELDS)
    data = form.cleaned_data
    try:
        case = services.case_create(
            actor=caller.actor, ins_nir=data["ins_nir"], identity=form.identity(), consent=form.consent(),
            question=data["question"], context=data["context"], priority=data["priority"], mode=data["mode"],
            submit_token=data["submit_token"], send=False, ip=client_ip(request), **form.recipient())
    except ValidationError as exc:
        raise from_django_validation(exc, rename=_CASE_FIELDS) from None
    return Status(201, _case_out(caller, selectors.case_for_user(request.user, case.pk, related=CASE_OUT_RELATED)))


class ListFilters(Schema):
    role: Literal["all", "requester", "expert", "pool"] = "all"
    state: s.State | None = None
    q: str = ""
    limit: int = Field(25, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/cases", response={200: s.CasePage, **ERRORS}, summary="List my cases")
def case_list(request, filters: Query[ListFilters]):
    """Only the cases the caller may see (as on the web inbox), newest change first."""
    require(request, "cases:read")
    refuse_unknown_query(request, ListFilters)
    audit_log(actor=request.user, action="case.list", kind=AuditEvent.Kind.READ, ip=client_ip(request),
              summary=f"API {filters.role} {filters.state or ''} {filters.q[:50]}".strip())
    # A row here names the patient and the two professionals, no more: not the web inbox's network and tags.
    count, page = selectors.cases_page(request.user, role=filters.role, state=filters.state or "",
                                       query=filters.q[:100], fields=_ROW_FIELDS, offset=filters.offset,
                                       limit=filters.limit)
    return {"count": count, "limit": filters.limit, "offset": filters.offset, "items": [_row(v) for v in page]}


@router.get("/cases/{case_id}", response={200: s.CaseOut, **ERRORS}, summary="Read a case")
def case_read(request, case_id: UUID):
    caller = require(request, "cases:read")
    case = selectors.case_for_user(request.user, case_id, related=CASE_OUT_RELATED)
    audit_log(actor=request.user, action="case.view", kind=AuditEvent.Kind.READ, obj=case, case=case,
              ip=client_ip(request), summary="API")
    return _case_out(caller, case)


@router.post("/cases/{case_id}/submit", response=ACTED, summary="Send the draft")
def case_submit(request, case_id: UUID):
    return _act(request, case_id, "cases:write", services.case_submit)


@router.post("/cases/{case_id}/withdraw", response=ACTED, summary="Withdraw the request (requester)")
def case_withdraw(request, case_id: UUID, payload: s.ReasonIn):
    return _act(request, case_id, "cases:write", services.case_withdraw, field="reason", reason=payload.reason)


@router.post("/cases/{case_id}/close", response=ACTED, summary="Close an answered case with the survey")
def case_close(request, case_id: UUID, payload: s.CloseIn):
    return _act(request, case_id, "cases:write", services.case_close, field="avoided", usefulness=payload.usefulness,
                avoided=payload.avoided, technical_incidents=payload.technical_incidents)


@router.post("/cases/{case_id}/provide-information", response=ACTED, summary="Answer the expert's request")
def case_provide_information(request, case_id: UUID, payload: s.AnswerIn):
    return _act(request, case_id, "cases:write", services.case_provide_information, field="answer",
                answer=payload.answer)


# --- The expert's actions -------------------------------------------------------------------------------

@router.post("/cases/{case_id}/claim", response=ACTED, summary="Take a case from the network's queue")
def case_claim(request, case_id: UUID):
    return _act(request, case_id, "cases:write", services.case_claim)


@router.post("/cases/{case_id}/decline", response=ACTED, summary="Declare the tele-expertise not feasible")
def case_decline(request, case_id: UUID, payload: s.ReasonIn):
    return _act(request, case_id, "cases:write", services.case_decline, field="reason", reason=payload.reason)


@router.post("/cases/{case_id}/request-information", response=ACTED, summary="Ask the requester for more")
def case_request_information(request, case_id: UUID, payload: s.QuestionIn):
    return _act(request, case_id, "cases:write", services.case_request_information, field="question",
                question=payload.question)


@router.post("/cases/{case_id}/accept", response=ACTED, summary="Accept and set the answer deadline")
def case_accept(request, case_id: UUID, payload: s.AcceptIn):
    return _act(request, case_id, "cases:write", services.case_accept, field="due_at", due_at=payload.due_at,
                patient_informed=payload.patient_informed)


@router.post("/cases/{case_id}/transfer", response=ACTED, summary="Transfer to another expert or network")
def case_transfer(request, case_id: UUID, payload: s.TransferIn):
    expert = network = None
    if payload.expert_id:
        expert = experts_selectable().filter(pk=payload.expert_id).first()
        if expert is None:
            raise invalid({"expert_id": [_("Expert inconnu.")]})
    if payload.network_id:
        network = networks_active().filter(pk=payload.network_id).first()
        if network is None:
            raise invalid({"network_id": [_("Réseau inconnu.")]})
    return _act(request, case_id, "cases:write", services.case_transfer, field="note", note=payload.note,
                expert=expert, network=network)


# --- Thread ---------------------------------------------------------------------------------------------

@router.get("/cases/{case_id}/messages", response={200: list[s.MessageOut], **ERRORS}, summary="Read the thread")
def message_list(request, case_id: UUID):
    require(request, "cases:read")
    case = selectors.case_for_user(request.user, case_id, related=())
    with transaction.atomic():  # the trace and the read marker: one commit
        audit_log(actor=request.user, action="case.view", kind=AuditEvent.Kind.READ, obj=case, case=case,
                  ip=client_ip(request), summary="API échanges")
        thread_mark_read(user=request.user, case=case)
    return [{"id": m.pk, "kind": m.kind, "author": m.author.display_name, "body": m.body,
             "created_at": m.created_at} for m in selectors.case_thread_messages(case)]


@router.post("/cases/{case_id}/messages", response={201: s.MessageOut, **ERRORS}, summary="Post a message")
def message_post(request, case_id: UUID, payload: s.MessageIn):
    caller = require(request, "cases:write")
    case = selectors.case_for_user(request.user, case_id, related=())
    try:
        message = services.case_post_message(actor=caller.actor, case_id=case.pk, body=payload.body,
                                             ip=client_ip(request))
    except ValidationError as exc:
        raise from_django_validation(exc, field="body") from None
    return Status(201, {"id": message.pk, "kind": message.kind, "author": caller.actor.professional.display_name,
                 "body": message.body, "created_at": message.created_at})


# --- Documents (multipart, encrypted while received by the project's upload handler) --------------------

# Message attachments go with their message (web form); the API attaches to the request, an information
# answer or the report.
_ATTACHABLE = (Document.AttachedTo.REQUEST, Document.AttachedTo.INFORMATION, Document.AttachedTo.REPORT)
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "kind"],
    "properties": {"file": {"type": "string", "format": "binary"},
                   "kind": {"type": "string", "enum": list(Document.Kind.values)},
                   "attached_to": {"type": "string", "enum": list(_ATTACHABLE),
                                   "default": "request"}}}}}}}


@router.post("/cases/{case_id}/documents", response={201: s.DocumentOut, **ERRORS}, openapi_extra=_UPLOAD_BODY,
             summary="Attach a document (multipart/form-data)")
def document_upload(request, case_id: UUID):
    """One file per call, field `file`. The body is read only after the caller and its size are checked."""
    caller = require(request, "cases:write")
    case = selectors.case_for_user(request.user, case_id, related=())
    length = request.META.get("CONTENT_LENGTH") or "0"
    if not ascii_digits(length) or int(length) > settings.DOCUMENT_MAX_FILE_BYTES + 64 * 1024:
        raise invalid({"file": [_("Fichier trop volumineux : %(limit)s au plus par fichier.")
                                % {"limit": filesizeformat(settings.DOCUMENT_MAX_FILE_BYTES)}]})
    attached_to = request.POST.get("attached_to") or Document.AttachedTo.REQUEST
    if attached_to not in _ATTACHABLE:
        raise invalid({"attached_to": [_("Valeur invalide (%(detail)s).") % {"detail": ", ".join(_ATTACHABLE)}]})
    upload = request.FILES.get("file")
    if upload is None:
        raise invalid({"file": [_("Joignez un fichier dans le champ « file » (multipart/form-data).")]})
    try:
        document = document_add(actor=caller.actor, case_id=case.pk, upload=upload,
                                kind=request.POST.get("kind", ""),
                                attached_to=attached_to,
                                ip=client_ip(request))
    except ValidationError as exc:
        raise from_django_validation(exc, field="file") from None
    except OSError as exc:  # storage down or full: nothing was kept
        raise ApiError(503, "storage_unavailable",
                       _("Le document n'a pas pu être enregistré (erreur de stockage). Réessayez plus tard.")) from exc
    return Status(201, document)
