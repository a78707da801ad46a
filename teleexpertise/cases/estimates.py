"""The expected answer time shown before sending: live figures of the chosen expert or network.

Two queries whatever the volume: the answer delays of the window (bounded by the window) and the queue count.
"""

from dataclasses import dataclass
from datetime import timedelta
from statistics import median

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from teleexpertise.cases.models import Case


@dataclass(frozen=True)
class AnswerEstimate:
    median: timedelta | None  # None: fewer answered cases than ANSWER_ESTIMATE_MIN_CASES in the window
    answered: int
    queue: int

    def sentence(self) -> str:
        days = settings.ANSWER_ESTIMATE_DAYS
        if self.median is None:
            first = _("Pas encore assez de demandes répondues ces %(days)s derniers jours pour estimer le délai de "
                      "réponse (%(n)s sur %(min)s nécessaires).") % {
                "days": days, "n": self.answered, "min": settings.ANSWER_ESTIMATE_MIN_CASES}
        else:
            first = _("Délai de réponse habituel : %(delay)s (médiane des %(n)s demandes répondues ces %(days)s "
                      "derniers jours).") % {"delay": delay_text(self.median), "n": self.answered, "days": days}
        return f"{first} {queue_text(self.queue)}"


def delay_text(delay: timedelta) -> str:
    hours = delay.total_seconds() / 3600
    if hours < 1:
        return _("moins d'une heure")
    if hours < 48:
        n = round(hours)
        return ngettext("environ %(n)s heure", "environ %(n)s heures", n) % {"n": n}
    n = round(hours / 24)
    return ngettext("environ %(n)s jour", "environ %(n)s jours", n) % {"n": n}


def queue_text(queue: int) -> str:
    if queue == 0:
        return _("Aucune demande en attente.")
    return ngettext("%(n)s demande en attente.", "%(n)s demandes en attente.", queue) % {"n": queue}


def answer_estimate(*, expert=None, network=None, now=None) -> AnswerEstimate:
    """Median time from sending to the signed report over the last ANSWER_ESTIMATE_DAYS, and the open queue."""
    now = now or timezone.now()
    cases = Case.objects.filter(expert=expert) if expert is not None else Case.objects.filter(network=network)
    pairs = cases.filter(answered_at__gte=now - timedelta(days=settings.ANSWER_ESTIMATE_DAYS),
                         submitted_at__isnull=False).values_list("submitted_at", "answered_at")
    delays = [answered - submitted for submitted, answered in pairs]
    queue = cases.filter(state__in=Case.OPEN_STATES).count()
    enough = len(delays) >= settings.ANSWER_ESTIMATE_MIN_CASES
    return AnswerEstimate(median=median(delays) if enough else None, answered=len(delays), queue=queue)
