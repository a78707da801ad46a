from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from teleexpertise.billing.models import BillingRecord


def parse_month(value: str | None) -> tuple[int, int]:
    """"2026-01" -> (2026, 1); anything else -> the current month (a bad link shows this month, not an error)."""
    try:
        year, month = (int(part) for part in (value or "").split("-"))
        if 2000 <= year <= 2100 and 1 <= month <= 12:
            return year, month
    except ValueError:
        pass
    today = timezone.localdate()
    return today.year, today.month


class StatusForm(forms.Form):
    status = forms.ChoiceField(label=_("Nouveau statut"), choices=[
        (value, label) for value, label in BillingRecord.Status.choices if value != "not_billable"])
    reason = forms.CharField(label=_("Motif du rejet"), max_length=500, required=False)


class ActivityForm(forms.Form):
    total_acts = forms.IntegerField(label=_("Nombre total d'actes de l'année (présentiel et à distance)"),
                                    min_value=1, max_value=1_000_000)
    teleconsultations = forms.IntegerField(label=_("dont téléconsultations"), min_value=0, max_value=1_000_000,
                                           initial=0)
