from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.services import client_ip
from teleexpertise.cases import selectors, services, workflow
from teleexpertise.cases.views import audit_case_read
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.reports.forms import ReportForm
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import report_draft_for, report_save_draft, report_sign


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
