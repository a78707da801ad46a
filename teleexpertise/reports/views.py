import logging

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import selectors, services, workflow
from teleexpertise.cases.views import audit_case_read
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.reports import patient_access
from teleexpertise.reports.cda import build_cda
from teleexpertise.reports.forms import PatientLinkForm, ReportForm
from teleexpertise.reports.models import PatientAccessLink, ReportDelivery, ReportVersion
from teleexpertise.reports.senders import patient_link_sender
from teleexpertise.reports.services import report_delivery_retry as services_report_delivery_retry
from teleexpertise.reports.services import report_dmp_retry as services_report_dmp_retry
from teleexpertise.reports.services import report_draft_for, report_pdf_read, report_save_draft, report_sign
from teleexpertise.reports.services import report_pdf_retry as services_report_pdf_retry

logger = logging.getLogger(__name__)


def _initial_for(case, draft):
    if draft is not None:
        return None
    last = case.report_versions.filter(status=ReportVersion.Status.SIGNED).order_by("-number").first()
    base = {"act_at": timezone.localtime().replace(second=0, microsecond=0)}
    if last is not None:  # an amendment starts from the text of the last signed version
        base.update({f: getattr(last, f) for f in ReportForm.Meta.fields if f not in ("amendment_reason", "act_at")})
    return base


@login_required
def report_edit(request, pk):
    case = selectors.case_for_user(request.user, pk)
    actor = services.actor_for(request.user)
    action = "answer" if case.state == case.State.ACCEPTED else "amend_report"
    try:
        workflow.check(actor, case, action)
    except WorkflowError as exc:
        return render(request, "cases/action_refused.html", {"case": case, "message": str(exc)}, status=403)
    if request.method == "GET":
        audit_case_read(request, case, "page compte-rendu")
    draft = report_draft_for(case)
    amending = case.report_versions.filter(status=ReportVersion.Status.SIGNED).exists()
    form = ReportForm(request.POST or None, instance=draft, initial=_initial_for(case, draft), amending=amending)
    if request.method == "POST" and form.is_valid():
        ip = client_ip(request)
        try:
            report_save_draft(actor=actor, case_id=case.pk, data=form.cleaned_data, ip=ip)
            if "sign" in request.POST:
                if request.POST.get("confirm_sign") != "on":
                    raise ValidationError(_("Cochez la case de confirmation pour signer : un compte-rendu signé "
                                            "ne peut plus être modifié."))
                version = report_sign(actor=actor, case_id=case.pk, ip=ip)
                messages.success(request, _("Compte-rendu signé (version %(n)s).") % {"n": version.number})
                return redirect("cases:detail", pk=case.pk)
            messages.success(request, _("Brouillon du compte-rendu enregistré."))
            return redirect("reports:edit", pk=case.pk)
        except ValidationError as exc:
            _attach_errors(form, exc)
        except WorkflowError as exc:
            form.add_error(None, str(exc))
    status = 400 if request.method == "POST" else 200
    return render(request, "reports/edit.html", {"case": case, "form": form, "amending": amending}, status=status)


def _attach_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _signed_version_for(user, version_pk) -> ReportVersion:
    """A signed version of a case the user may read; 404 otherwise (drafts have no PDF)."""
    case_id = ReportVersion.objects.filter(pk=version_pk, status=ReportVersion.Status.SIGNED).values_list(
        "case_id", flat=True).first()
    if case_id is None:
        raise Http404
    case = selectors.case_for_user(user, case_id)
    version = ReportVersion.objects.select_related("rendered", "author__profession", "author__specialty",
                                                   "author__organisation").get(pk=version_pk)
    version.case = case
    return version


def _unreadable_pdf():
    return HttpResponseServerError(_("Le PDF n'a pas pu être relu (contrôle d'intégrité)."),
                                   content_type="text/plain; charset=utf-8")


def _attachment(request, version, body: bytes, *, action: str, extension: str, content_type: str):
    filename = f"compte-rendu-{version.case.reference}-v{version.number}.{extension}"
    audit_log(actor=request.user, action=action, kind=AuditEvent.Kind.READ, obj=version, case=version.case,
              ip=client_ip(request), summary=filename)
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


def _ready_version_for(user, version_pk) -> ReportVersion:
    """A signed version of a case the user may read, whose PDF is stored; 404 otherwise."""
    version = _signed_version_for(user, version_pk)
    if version.pdf is None or not version.pdf.is_ready:
        raise Http404
    return version


@login_required
@require_GET
def report_pdf_download(request, version_pk):
    version = _ready_version_for(request.user, version_pk)
    body = report_pdf_read(user=request.user, version=version, ip=client_ip(request))
    if body is None:
        return _unreadable_pdf()
    return _attachment(request, version, body, action="report.pdf_download", extension="pdf",
                       content_type="application/pdf")


@login_required
@require_GET
def report_cda_download(request, version_pk):
    """The CDA R2 document of a signed version (its PDF embedded), as the DMP and MSSanté receive it."""
    version = _ready_version_for(request.user, version_pk)
    body = report_pdf_read(user=request.user, version=version, ip=client_ip(request))
    if body is None:
        return _unreadable_pdf()
    return _attachment(request, version, build_cda(version, body), action="report.cda_download", extension="xml",
                       content_type="application/xml")


@login_required
@require_POST
def report_pdf_retry(request, version_pk):
    version = _signed_version_for(request.user, version_pk)
    try:
        services_report_pdf_retry(actor=services.actor_for(request.user), version=version, ip=client_ip(request))
    except WorkflowError as exc:
        return render(request, "cases/action_refused.html", {"case": version.case, "message": str(exc)}, status=403)
    messages.success(request, _("Génération du PDF relancée."))
    return redirect(f"{version.case.get_absolute_url()}#report-title")



@login_required
@require_POST
def report_dmp_retry(request, version_pk):
    version = _signed_version_for(request.user, version_pk)
    try:
        services_report_dmp_retry(actor=services.actor_for(request.user), version=version, ip=client_ip(request))
    except WorkflowError as exc:
        return render(request, "cases/action_refused.html", {"case": version.case, "message": str(exc)}, status=403)
    messages.success(request, _("Versement au DMP relancé."))
    return redirect(f"{version.case.get_absolute_url()}#report-title")
def _delivery_for(user, delivery_pk) -> ReportDelivery:
    """A delivery of a case the user may read; 404 otherwise."""
    case_id = ReportDelivery.objects.filter(pk=delivery_pk).values_list("version__case_id", flat=True).first()
    if case_id is None:
        raise Http404
    case = selectors.case_for_user(user, case_id)
    delivery = ReportDelivery.objects.select_related("version", "recipient").get(pk=delivery_pk)
    delivery.version.case = case
    return delivery


@login_required
@require_POST
def report_delivery_retry(request, delivery_pk):
    delivery = _delivery_for(request.user, delivery_pk)
    case = delivery.version.case
    try:
        services_report_delivery_retry(actor=services.actor_for(request.user), delivery=delivery,
                                       ip=client_ip(request))
    except WorkflowError as exc:
        return render(request, "cases/action_refused.html", {"case": case, "message": str(exc)}, status=403)
    messages.success(request, _("Envoi du compte-rendu à %(name)s relancé.") % {
        "name": delivery.recipient.display_name})
    return redirect(f"{case.get_absolute_url()}#report-title")
# --- The requester gives the patient access to the report -------------------------------------------------

@login_required
def patient_link_new(request, pk):
    case = selectors.case_for_user(request.user, pk)
    actor = services.actor_for(request.user)
    try:
        patient_access.check_may_give_access(actor, case)
    except WorkflowError as exc:
        return render(request, "cases/action_refused.html", {"case": case, "message": str(exc)}, status=403)
    form = PatientLinkForm(request.POST or None, channels=patient_link_sender().channels)
    if request.method == "POST" and form.is_valid():
        try:
            link, _url = patient_access.patient_link_create(
                actor=actor, case_id=case.pk, channel=form.cleaned_data["channel"],
                recipient=form.cleaned_data["recipient"], ip=client_ip(request))
        except WorkflowError as exc:
            return render(request, "cases/action_refused.html", {"case": case, "message": str(exc)}, status=403)
        except ValidationError as exc:
            _attach_errors(form, exc)
        except patient_access.PatientLinkSendError as exc:
            messages.error(request, str(exc))
            return redirect(f"{case.get_absolute_url()}#patient-access-title")
        else:
            messages.success(request, _("Lien d'accès au compte-rendu envoyé au patient (%(channel)s : %(to)s).") % {
                "channel": link.get_channel_display(), "to": link.recipient_display})
            return redirect(f"{case.get_absolute_url()}#patient-access-title")
    status = 400 if request.method == "POST" else 200
    return render(request, "reports/patient_link_new.html", {"case": case, "form": form}, status=status)


@login_required
@require_POST
def patient_link_revoke(request, pk, link_pk):
    case = selectors.case_for_user(request.user, pk)
    get_object_or_404(PatientAccessLink, pk=link_pk, case=case)
    try:
        link = patient_access.patient_link_revoke(actor=services.actor_for(request.user), link_id=link_pk,
                                                  ip=client_ip(request))
    except WorkflowError as exc:
        return render(request, "cases/action_refused.html", {"case": case, "message": str(exc)}, status=403)
    messages.success(request, _("Accès du patient révoqué (%(to)s).") % {"to": link.recipient_display})
    return redirect(f"{case.get_absolute_url()}#patient-access-title")
