"""Billing pages: the professional's acts by month (status, exports), the remote-activity indicator, the admin view."""

import json

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.billing import exports, selectors, services
from teleexpertise.billing.checks import check_texts
from teleexpertise.billing.forms import ActivityForm, StatusForm, parse_month
from teleexpertise.billing.services import NEXT_STATUSES
from teleexpertise.core.digits import ascii_digits
from teleexpertise.directory.selectors import professional_for_user


def _month_context(request):
    year, month = parse_month(request.GET.get("month"))
    previous = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
    following = f"{year + (month == 12)}-{month % 12 + 1:02d}"
    return year, month, {"month": f"{year}-{month:02d}", "previous": previous, "following": following}


def _audit_read(request, action, summary, kind=AuditEvent.Kind.READ):
    audit_log(actor=request.user, action=action, kind=kind, ip=client_ip(request), summary=summary)


@login_required
def my_acts(request):
    if professional_for_user(request.user) is None:
        return render(request, "cases/no_professional.html", status=403)
    year, month, context = _month_context(request)
    records = list(selectors.in_month(selectors.billing_records_for_user(request.user), year, month))
    _audit_read(request, "billing.list", f"mes actes {context['month']}")
    rows = [{"record": r, "checks": check_texts(r.checks),
             "next": [(s, s.label) for s in NEXT_STATUSES[r.status]]} for r in records]
    total = sum(r.amount for r in records)
    return render(request, "billing/my_acts.html", {**context, "rows": rows, "count": len(records),
                                                     "total": total})


@login_required
@require_POST
def set_status(request, pk):
    form = StatusForm(request.POST)
    month = request.POST.get("month", "")
    if form.is_valid():
        try:
            services.billing_record_set_status(user=request.user, record_id=pk, status=form.cleaned_data["status"],
                                               reason=form.cleaned_data["reason"], ip=client_ip(request))
            messages.success(request, _("Statut de l'acte mis à jour."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
    else:
        messages.error(request, _("Choisissez un statut."))
    return redirect(f"{_acts_url()}?month={month}")


def _acts_url():
    return reverse("billing:acts")


def _attachment(body, *, content_type, filename):
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
def export_mine(request, fmt):
    if fmt not in ("csv", "json"):
        raise Http404
    selectors.professional_of(request.user)
    year, month, context = _month_context(request)
    records = list(selectors.in_month(selectors.billing_records_for_user(request.user), year, month))
    _audit_read(request, "billing.export", f"{fmt} {context['month']} : {len(records)} actes",
                kind=AuditEvent.Kind.EXECUTE)
    return _export(records, fmt, context["month"], "mes-actes")


def _export(records, fmt, month, stem):
    if fmt == "json":
        body = json.dumps(exports.records_json(records, month=month), ensure_ascii=False, indent=1)
        return _attachment(body.encode(), content_type="application/json; charset=utf-8",
                           filename=f"{stem}-{month}.json")
    return _attachment(exports.records_csv(records), content_type="text/csv; charset=utf-8",
                       filename=f"{stem}-{month}.csv")


def _declared_year(raw: str, this_year: int) -> int | None:
    """The year asked for, from 2000 to next year (this year when none is asked); None for any other value (a typo,
    99999, "²")."""
    if not raw:
        return this_year
    return int(raw) if ascii_digits(raw) and 2000 <= int(raw) <= this_year + 1 else None


@login_required
def activity(request):
    selectors.professional_of(request.user)
    this_year = timezone.localdate().year
    year = _declared_year(request.GET.get("year") or request.POST.get("year") or "", this_year)
    form = ActivityForm(request.POST or None)
    if year is None:  # shown for this year; a declaration for that value is refused, never filed elsewhere
        year = this_year
        if request.method == "POST":
            form.is_valid()  # add_error needs the form cleaned first
            form.add_error(None, _("Valeur invalide (%(detail)s).") % {"detail": f"2000–{this_year + 1}"})
    if request.method == "POST" and form.is_valid():
        try:
            services.remote_activity_declare(user=request.user, year=year, ip=client_ip(request), **form.cleaned_data)
            messages.success(request, _("Activité de l'année enregistrée."))
            return redirect(f"{request.path}?year={year}")
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
    indicator = services.remote_activity_indicator(user=request.user, year=year)
    if request.method == "GET":
        declared = indicator["declared"]
        if declared is not None:
            form = ActivityForm(initial={"total_acts": declared.total_acts,
                                         "teleconsultations": declared.teleconsultations})
        _audit_read(request, "billing.activity_view", str(year))
    return render(request, "billing/activity.html", {"form": form, "year": year, "ind": indicator})


@login_required
def overview(request):
    records = selectors.billing_records_all(request.user)  # 404 unless staff
    year, month, context = _month_context(request)
    month_records = selectors.in_month(records, year, month)
    _audit_read(request, "billing.overview", context["month"])
    return render(request, "billing/overview.html", {
        **context,
        "by_professional": selectors.summary_by(month_records, "professional_name", "rpps", "adeli", "act_code"),
        "by_network": selectors.summary_by(month_records, "case__network__name", "act_code"),
        "by_status": selectors.summary_by(month_records, "status"),
        "totals": selectors.totals(month_records),
        "by_month": selectors.summary_by(records.filter(act_date__year=year), "act_date__month"),
        "year": year,
    })


@login_required
def overview_export(request):
    records = selectors.billing_records_all(request.user)
    year, month, context = _month_context(request)
    rows = list(selectors.in_month(records, year, month))
    _audit_read(request, "billing.export", f"admin csv {context['month']} : {len(rows)} actes",
                kind=AuditEvent.Kind.EXECUTE)
    return _export(rows, "csv", context["month"], "actes")
