"""Deadlines that hold, on a frozen clock: reminders 48 h and 24 h ahead, overdue flags, pool escalation.

The jobs' services take `now`; each test moves it around a case's real deadline and runs every job twice
to show that nothing is sent twice.
"""

from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import deadlines, services
from teleexpertise.cases.alerts import alert_send
from teleexpertise.cases.models import Case, CaseAlert
from teleexpertise.cases.tasks import escalate_oncall, send_deadline_alerts
from teleexpertise.messaging.models import Notification

S = Case.State
K = CaseAlert.Kind


def _accepted(cast, *, days=3) -> Case:
    case = cast.case_in(S.TAKEN)
    return services.case_accept(actor=cast.actor(cast.expert), case_id=case.pk,
                                due_at=timezone.now() + timedelta(days=days), patient_informed=True)


def _verbs(user, case) -> list[str]:
    return list(Notification.objects.filter(recipient=user, case=case).order_by("created_at")
                .values_list("verb", flat=True))


def _twice(function, now) -> tuple[int, int]:
    return function(now=now), function(now=now)


def test_reminders_48h_then_24h_each_once(cast):
    case = _accepted(cast)
    due = case.due_at
    assert deadlines.deadline_alerts_send(now=due - timedelta(hours=49)) == 0
    assert _twice(deadlines.deadline_alerts_send, due - timedelta(hours=47)) == (1, 0)
    assert _verbs(cast.expert.user, case)[-1] == "rappel : échéance de la réponse dans 48 h"
    assert deadlines.deadline_alerts_send(now=due - timedelta(hours=30)) == 0
    assert _twice(deadlines.deadline_alerts_send, due - timedelta(hours=23)) == (1, 0)
    assert _verbs(cast.expert.user, case)[-1] == "rappel : échéance de la réponse dans 24 h"
    assert set(CaseAlert.objects.filter(case=case).values_list("kind", flat=True)) == {K.REMINDER_48H, K.REMINDER_24H}
    assert not Notification.objects.filter(case=case, recipient=cast.dispatcher.user,
                                           verb__startswith="rappel").exists()
    assert AuditEvent.objects.filter(case_id=case.pk, action="alert.reminder_24h", actor_id=None).count() == 1


def test_a_job_that_was_down_sends_only_the_most_pressing_reminder(cast):
    case = _accepted(cast)
    assert deadlines.deadline_reminders_send(now=case.due_at - timedelta(hours=20)) == 1
    assert list(CaseAlert.objects.filter(case=case).values_list("kind", flat=True)) == [K.REMINDER_24H]


def test_a_deadline_set_less_than_48h_ahead_gets_no_48h_reminder(cast):
    case = _accepted(cast, days=1.5)
    assert deadlines.deadline_reminders_send(now=timezone.now() + timedelta(minutes=5)) == 0
    assert deadlines.deadline_reminders_send(now=case.due_at - timedelta(hours=23)) == 1


def test_overdue_flags_once_and_tells_the_expert_and_the_dispatchers(cast, django_capture_on_commit_callbacks):
    case = _accepted(cast)
    mail.outbox.clear()
    late = case.due_at + timedelta(minutes=1)
    assert deadlines.overdue_cases_flag(now=case.due_at - timedelta(minutes=1)) == 0
    with django_capture_on_commit_callbacks(execute=True):
        assert _twice(deadlines.overdue_cases_flag, late) == (1, 0)
        assert deadlines.deadline_alerts_send(now=late + timedelta(hours=5)) == 0  # later runs: still once
    verb = "demande en retard : l'échéance de la réponse est dépassée"
    for who in (cast.expert, cast.dispatcher):
        assert _verbs(who.user, case).count(verb) == 1
    assert not Notification.objects.filter(case=case, verb=verb).exclude(
        recipient__in=[cast.expert.user, cast.dispatcher.user]).exists()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([cast.expert.user.email, cast.dispatcher.user.email])
    assert all("DURAND" not in m.body for m in mail.outbox)


def test_a_new_deadline_after_a_pause_gets_its_own_overdue_alert(cast):
    case = _accepted(cast)
    assert deadlines.overdue_cases_flag(now=case.due_at + timedelta(minutes=1)) == 1
    Case.objects.filter(pk=case.pk).update(due_at=case.due_at + timedelta(days=1))
    assert deadlines.overdue_cases_flag(now=case.due_at + timedelta(days=1, minutes=1)) == 1
    assert CaseAlert.objects.filter(case=case, kind=K.OVERDUE).count() == 2


@pytest.mark.parametrize(("priority", "hours"), [("routine", 24), ("urgent", 1)])
def test_unclaimed_pooled_case_is_escalated_to_dispatchers_once(cast, priority, hours):
    case = cast.new_case(priority=priority)
    submitted = case.submitted_at
    assert deadlines.pool_cases_escalate(now=submitted + timedelta(hours=hours) - timedelta(minutes=1)) == 0
    assert _twice(deadlines.deadline_alerts_send, submitted + timedelta(hours=hours, minutes=1)) == (1, 0)
    verb = "demande non prise en charge dans la file partagée : attribuez-la"
    assert _verbs(cast.dispatcher.user, case).count(verb) == 1
    assert not Notification.objects.filter(case=case, verb=verb).exclude(recipient=cast.dispatcher.user).exists()
    assert CaseAlert.objects.get(case=case).kind == K.POOL_ESCALATION


def test_escalation_delays_follow_the_settings(cast, settings):
    settings.POOL_ESCALATION_HOURS = 2
    case = cast.new_case()
    assert deadlines.pool_cases_escalate(now=case.submitted_at + timedelta(hours=2, minutes=1)) == 1


def test_a_claimed_case_is_not_escalated(cast):
    case = cast.case_in(S.TAKEN)
    assert deadlines.pool_cases_escalate(now=timezone.now() + timedelta(days=3)) == 0
    assert not CaseAlert.objects.filter(case=case).exists()


def test_without_a_dispatcher_the_members_are_told(cast):
    cast.network.memberships.filter(professional=cast.dispatcher).update(role="member")
    case = cast.new_case()
    assert deadlines.pool_cases_escalate(now=case.submitted_at + timedelta(hours=25)) == 1
    told = set(Notification.objects.filter(case=case, verb__startswith="demande non prise en charge")
               .values_list("recipient", flat=True))
    assert told == {cast.expert.user.pk, cast.colleague.user.pk, cast.dispatcher.user.pk}


def test_a_worker_racing_with_a_stale_read_sends_nothing(cast):
    case = cast.new_case()
    stale = Case.objects.get(pk=case.pk)
    args = {"kind": K.POOL_ESCALATION, "deadline": stale.submitted_at, "users": [cast.dispatcher.user], "verb": "x"}
    assert alert_send(stale, **args) == 1
    assert alert_send(stale, **args) == 0
    assert Notification.objects.filter(case=case, verb="x").count() == 1


def test_the_jobs_are_registered():
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

    def minutes(task):
        return [m for m in range(60) if any(isinstance(t, task.task_class)
                                            for t in HUEY.read_periodic(at.replace(minute=m)))]
    assert minutes(send_deadline_alerts) == list(range(0, 60, 5))
    assert minutes(escalate_oncall) == list(range(60))
