"""The report over REST: write the draft, sign it, download each signed version as PDF or CDA R2."""

import logging
from uuid import UUID

from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from ninja import Router

from teleexpertise.api import schemas as s
from teleexpertise.api.auth import require
from teleexpertise.api.cases import ERRORS
from teleexpertise.api.errors import ApiError, form_errors, from_django_validation
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import selectors, workflow
from teleexpertise.reports.cda import build_cda
from teleexpertise.reports.forms import ReportForm
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import report_draft_for, report_pdf_read, report_save_draft, report_sign

logger = logging.getLogger(__name__)
router = Router(tags=["reports"])


def _version_out(version: ReportVersion) -> dict:
    return {"id": version.pk, "number": version.number, "status": version.status, "signed_at": version.signed_at,
            "pdf_ready": bool(version.pdf and version.pdf.is_ready)}


@router.put("/cases/{case_id}/report", response={200: s.ReportVersionOut, **ERRORS},
            summary="Write the report draft (expert)")
def report_write(request, case_id: UUID, payload: s.ReportIn):
    """Saves the draft (the first one, or an amendment once signed); completeness is checked at signature."""
    caller = require(request, "reports:write")
    case = selectors.case_for_user(request.user, case_id)
    workflow.check(caller.actor, case, "answer" if case.state == case.State.ACCEPTED else "amend_report")
    amending = case.report_versions.filter(status=ReportVersion.Status.SIGNED).exists()
    data = {name: value for name, value in payload.dict().items() if value is not None}
    form = ReportForm(data, instance=report_draft_for(case), amending=amending)
    if not form.is_valid():
        raise form_errors(form)
    try:
        draft = report_save_draft(actor=caller.actor, case_id=case.pk, data=form.cleaned_data, ip=client_ip(request))
    except ValidationError as exc:
        raise from_django_validation(exc) from None
    return _version_out(draft)


@router.post("/cases/{case_id}/report/sign", response={200: s.ReportVersionOut, **ERRORS},
             summary="Sign the report draft (expert)")
def report_sign_draft(request, case_id: UUID):
    """The draft becomes immutable; the first signature answers the case. Its PDF is rendered in background."""
    caller = require(request, "reports:write")
    case = selectors.case_for_user(request.user, case_id)
    try:
        version = report_sign(actor=caller.actor, case_id=case.pk, ip=client_ip(request))
    except ValidationError as exc:
        raise from_django_validation(exc) from None
    return _version_out(ReportVersion.objects.select_related("rendered").get(pk=version.pk))


def ready_version_for(request, version_id) -> ReportVersion:
    """A signed version of a case the caller may read, with its stored PDF (404 otherwise, 409 while pending)."""
    case_id = (ReportVersion.objects.filter(pk=version_id, status=ReportVersion.Status.SIGNED)
               .values_list("case_id", flat=True).first())
    if case_id is None:
        raise Http404
    case = selectors.case_for_user(request.user, case_id)
    version = ReportVersion.objects.select_related("rendered", "author__profession", "author__specialty",
                                                   "author__organisation").get(pk=version_id)
    version.case = case
    if version.pdf is None or not version.pdf.is_ready:
        raise ApiError(409, "pdf_pending", _("Le PDF de cette version est en cours de génération : réessayez "
                                             "dans quelques instants."))
    return version


def report_pdf_bytes(request, version) -> bytes:
    body = report_pdf_read(user=request.user, version=version, ip=client_ip(request))
    if body is None:
        raise ApiError(500, "pdf_unreadable", _("Le PDF n'a pas pu être relu (contrôle d'intégrité)."))
    return body


def _file(request, version, body: bytes, *, action: str, extension: str, content_type: str) -> HttpResponse:
    filename = f"compte-rendu-{version.case.reference}-v{version.number}.{extension}"
    audit_log(actor=request.user, action=action, kind=AuditEvent.Kind.READ, obj=version, case=version.case,
              ip=client_ip(request), summary=f"API {filename}")
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _binary(media_type: str) -> dict:
    return {"responses": {200: {"description": "the file", "content": {media_type: {
        "schema": {"type": "string", "format": "binary"}}}}}}


@router.get("/reports/{version_id}/pdf", response={200: None, **ERRORS}, openapi_extra=_binary("application/pdf"),
            summary="Download a signed version as PDF")
def report_pdf(request, version_id: UUID):
    require(request, "cases:read")
    version = ready_version_for(request, version_id)
    return _file(request, version, report_pdf_bytes(request, version), action="report.pdf_download", extension="pdf",
                 content_type="application/pdf")


@router.get("/reports/{version_id}/cda", response={200: None, **ERRORS}, openapi_extra=_binary("application/xml"),
            summary="Download a signed version as CDA R2 (TLM-CR, PDF embedded)")
def report_cda(request, version_id: UUID):
    require(request, "cases:read")
    version = ready_version_for(request, version_id)
    body = build_cda(version, report_pdf_bytes(request, version))
    return _file(request, version, body, action="report.cda_download", extension="xml",
                 content_type="application/xml")
