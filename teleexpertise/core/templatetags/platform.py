from datetime import date

from django import template
from django.utils import timezone
from django.utils.formats import date_format

register = template.Library()


@register.filter
def fr_datetime(value):
    """23/11/2026 14:05 in Europe/Paris, the format clinicians read."""
    if not value:
        return ""
    return date_format(timezone.localtime(value), "d/m/Y H:i")


@register.filter
def fr_date(value):
    return date_format(value, "d/m/Y") if value else ""


@register.filter
def audit_label(action: str) -> str:
    from teleexpertise.audit.labels import action_label

    return action_label(action)


@register.filter
def actor_name(label: str) -> str:
    """The name part of an audit actor label ("Name <email>"): colleagues see names, not addresses."""
    return label.split(" <", 1)[0]


@register.filter
def iso_fr_date(value) -> str:
    """'2004-01-19' -> '19/01/2004' (dates kept as ISO text, e.g. DICOM study dates)."""
    try:
        return date_format(date.fromisoformat(str(value)), "d/m/Y") if value else ""
    except ValueError:
        return str(value)
