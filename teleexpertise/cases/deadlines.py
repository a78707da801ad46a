"""Deadlines that hold: reminders before the due date, overdue flags, escalation of unclaimed pooled cases.

Called by the periodic job `cases.tasks.send_deadline_alerts`; each function takes `now` (the job passes
nothing, tests pass a frozen clock), sends what is due and returns how many alerts it sent. Each alert is a
`CaseAlert` row unique per (case, kind, deadline), so running twice sends nothing twice (see alerts.py).
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.cases.alerts import alert_send, dispatcher_users
from teleexpertise.cases.models import Case, CaseAlert

S = Case.State
K = CaseAlert.Kind
BATCH = 500  # cases per kind and run; the next run takes the rest

# (kind, hours before the deadline); each reminder is sent while the deadline is between its hours and the
# next one's, so a job that was down sends only the most pressing reminder, not both.
REMINDERS = ((K.REMINDER_48H, 48, 24), (K.REMINDER_24H, 24, 0))


def _not_sent(kind, deadline_field: str):
    return ~Exists(CaseAlert.objects.filter(case=OuterRef("pk"), kind=kind, deadline=OuterRef(deadline_field)))


def deadline_alerts_send(*, now=None) -> int:
    """All the deadline alerts due now; what the periodic job runs."""
    now = now or timezone.now()
    return deadline_reminders_send(now=now) + overdue_cases_flag(now=now) + pool_cases_escalate(now=now)


def deadline_reminders_send(*, now=None) -> int:
    """Remind the expert 48 h and 24 h before the response deadline of an accepted case.

    A deadline set less than 48 h ahead gets no 48-hour reminder: the expert has just chosen it.
    """
    now = now or timezone.now()
    sent = 0
    for kind, hours, until in REMINDERS:
        before = timedelta(hours=hours)
        cases = (Case.objects.filter(state=S.ACCEPTED, due_at__gt=now + timedelta(hours=until),
                                     due_at__lte=now + before, accepted_at__lte=F("due_at") - before)
                 .filter(_not_sent(kind, "due_at")).select_related("expert__user").order_by("due_at"))
        verb = _("rappel : échéance de la réponse dans %(hours)s h") % {"hours": hours}
        for case in cases[:BATCH]:
            sent += alert_send(case, kind=kind, deadline=case.due_at, users=[case.expert.user], verb=verb, now=now)
    return sent


def overdue_cases_flag(*, now=None) -> int:
    """An accepted case past its deadline: tell its expert and the dispatchers of its network, once."""
    now = now or timezone.now()
    cases = (Case.objects.filter(state=S.ACCEPTED, due_at__lte=now).filter(_not_sent(K.OVERDUE, "due_at"))
             .select_related("expert__user").order_by("due_at"))
    sent = 0
    for case in cases[:BATCH]:
        users = [case.expert.user, *dispatcher_users(case)]
        sent += alert_send(case, kind=K.OVERDUE, deadline=case.due_at, users=_unique(users), now=now,
                           verb=_("demande en retard : l'échéance de la réponse est dépassée"))
    return sent


def pool_cases_escalate(*, now=None) -> int:
    """A pooled case nobody claimed within POOL_ESCALATION_HOURS (urgent: ..._URGENT_HOURS): tell the dispatchers.

    A case that the on-call escalation already handed to the dispatchers is theirs already: not told twice.
    """
    now = now or timezone.now()
    late = (Q(priority=Case.Priority.URGENT, submitted_at__lte=now - pool_delay(Case.Priority.URGENT))
            | Q(priority=Case.Priority.ROUTINE, submitted_at__lte=now - pool_delay(Case.Priority.ROUTINE)))
    cases = (Case.objects.filter(state=S.SUBMITTED, expert__isnull=True, network__isnull=False)
             .exclude(oncall_stage=Case.OncallStage.DISPATCHERS).filter(late)
             .filter(_not_sent(K.POOL_ESCALATION, "submitted_at"))
             .order_by("-priority", "submitted_at"))  # "urgent" sorts after "routine": urgent first
    sent = 0
    for case in cases[:BATCH]:
        sent += alert_send(case, kind=K.POOL_ESCALATION, deadline=case.submitted_at, users=dispatcher_users(case),
                           now=now, verb=_("demande non prise en charge dans la file partagée : attribuez-la"))
    return sent


def pool_delay(priority: str) -> timedelta:
    hours = settings.POOL_ESCALATION_URGENT_HOURS if priority == Case.Priority.URGENT \
        else settings.POOL_ESCALATION_HOURS
    return timedelta(hours=hours)


def _unique(users) -> list:
    seen, out = set(), []
    for user in users:
        if user is not None and user.pk not in seen:
            seen.add(user.pk)
            out.append(user)
    return out
