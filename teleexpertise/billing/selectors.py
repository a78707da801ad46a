"""The only reads of billing records. A professional sees their own acts; the administrator sees all."""

from datetime import date

from django.db.models import Count, Sum
from django.http import Http404

from teleexpertise.billing.models import BillingRecord
from teleexpertise.directory.selectors import professional_for_user


def professional_of(user):
    """The user's professional record, or 404 (an account without one has no acts)."""
    professional = professional_for_user(user)
    if professional is None:
        raise Http404
    return professional


def billing_records_for_user(user):
    """The acts this user bills, and nothing else — even for staff (the admin view has its own selector)."""
    if not user.is_authenticated:
        return BillingRecord.objects.none()
    return BillingRecord.objects.filter(professional__user=user).select_related("case")


def billing_record_for_user(user, pk, *, lock: bool = False) -> BillingRecord:
    queryset = billing_records_for_user(user)
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    record = next(iter(queryset.filter(pk=pk)), None)
    if record is None:
        raise Http404
    return record


def month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    end = date(year + (month == 12), month % 12 + 1, 1)
    return start, end


def in_month(queryset, year: int, month: int):
    start, end = month_bounds(year, month)
    return queryset.filter(act_date__gte=start, act_date__lt=end).order_by("act_date", "case__reference",
                                                                           "act_code")


def billing_records_all(user):
    """Every act: staff administrators only (404 for anyone else)."""
    if not (user.is_authenticated and user.is_staff):
        raise Http404
    return BillingRecord.objects.select_related("case", "case__network")


def totals(queryset) -> dict:
    agg = queryset.aggregate(count=Count("pk"), amount=Sum("amount"))
    return {"count": agg["count"] or 0, "amount": agg["amount"] or 0}


def summary_by(queryset, *fields) -> list[dict]:
    return list(queryset.values(*fields).annotate(count=Count("pk"), amount=Sum("amount")).order_by(*fields))
