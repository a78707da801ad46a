"""FHIR date search values (`_lastUpdated`, `date`): an optional prefix and a date of any precision, as a filter.

A value stands for the whole range its precision covers (`2026-01` is January 2026, from its first instant to the
first instant of February, excluded); the prefix compares the stored instant with that range:
eq within it, ne outside it, ge from its start, gt after its end, le before its end, lt before its start.
A value without a time zone is read in the server's zone (settings.TIME_ZONE), as the FHIR specification says.
`sa`, `eb` and `ap` are refused rather than approximated.
"""

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext as _

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le")
_VALUE = re.compile(
    r"(?P<prefix>[a-z]{2})?(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"(?P<zone>Z|[+ -]\d{2}:\d{2})?)?)?)?")


class DateValueError(ValueError):
    """The value is not a FHIR date search value this server understands; the message is French (gettext)."""


@dataclass(frozen=True)
class DateRange:
    prefix: str
    start: datetime  # first instant of the value's range
    end: datetime  # first instant after it

    def filter(self, field: str) -> Q:
        within = Q(**{f"{field}__gte": self.start, f"{field}__lt": self.end})
        return {
            "eq": within, "ne": ~within,
            "ge": Q(**{f"{field}__gte": self.start}), "gt": Q(**{f"{field}__gte": self.end}),
            "le": Q(**{f"{field}__lt": self.end}), "lt": Q(**{f"{field}__lt": self.start}),
        }[self.prefix]


def _invalid(value: str) -> DateValueError:
    return DateValueError(_("Date invalide : « %(value)s » (attendu : un préfixe %(prefixes)s facultatif puis "
                            "AAAA, AAAA-MM, AAAA-MM-JJ ou AAAA-MM-JJThh:mm[:ss][fuseau]).")
                          % {"value": value, "prefixes": ", ".join(PREFIXES)})


def _zone(text: str | None):
    if not text:
        return ZoneInfo(settings.TIME_ZONE)
    if text == "Z":
        return UTC
    sign = -1 if text[0] == "-" else 1  # a "+" left unencoded in a query string arrives as a space
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _next_month(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1)


def parse_date_range(value: str) -> DateRange:
    match = _VALUE.fullmatch(value.strip())
    if match is None:
        raise _invalid(value)
    parts = match.groupdict()
    prefix = parts["prefix"] or "eq"
    if prefix not in PREFIXES:
        raise _invalid(value)
    try:
        found = _range(prefix, parts, _zone(parts["zone"]))
        found.start.astimezone(UTC), found.end.astimezone(UTC)  # as the database stores them
    except (ValueError, OverflowError):  # no such day or hour, or past the years a date can hold (1 to 9999)
        raise _invalid(value) from None
    return found


def _range(prefix: str, parts: dict, zone) -> DateRange:
    year, month, day = int(parts["year"]), int(parts["month"] or 1), int(parts["day"] or 1)
    if parts["hour"] is None:
        first = date(year, month, day)
        following = (date(year + 1, 1, 1) if parts["month"] is None else _next_month(year, month)
                     if parts["day"] is None else first + timedelta(days=1))
        # Midnight to midnight in the zone: a day is 23 or 25 hours long when the clocks change.
        start = datetime.combine(first, datetime.min.time(), zone)
        return DateRange(prefix, start, datetime.combine(following, datetime.min.time(), zone))
    fraction = parts["fraction"] or ""
    start = datetime(year, month, day, int(parts["hour"]), int(parts["minute"]), int(parts["second"] or 0),
                     int(fraction.ljust(6, "0")) if fraction else 0, tzinfo=zone)
    step = (timedelta(minutes=1) if parts["second"] is None
            else timedelta(microseconds=10 ** (6 - len(fraction))) if fraction else timedelta(seconds=1))
    return DateRange(prefix, start, start + step)
