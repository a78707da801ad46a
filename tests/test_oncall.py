"""Synchronous on-call requests on a frozen clock: paged to the expert on call, then the backup, then the dispatchers.

The escalation service takes `now`; the tests move it past ONCALL_ACK_MINUTES from the real paging time and run
it twice at each step to show that nobody is paged twice.
"""

from datetime import time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from teleexpertise.cases import deadlines, services
from teleexpertise.cases.models import Case, CaseAlert
from teleexpertise.cases.oncall import oncall_escalate_due, page_verb, shift_at
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.directory.models import OnCallShift
from teleexpertise.messaging.models import Notification

S = Case.State
Stage = Case.OncallStage


def shift_around(cast, at, *, expert=None, backup=None, hours=2) -> OnCallShift:
    """A rota slot running from `hours` before `at` to `hours` after (Paris wall clock; may cross midnight)."""
    start = timezone.localtime(at) - timedelta(hours=hours)
    end = timezone.localtime(at) + timedelta(hours=hours)
    return OnCallShift.objects.create(network=cast.network, weekday=start.weekday(), starts_at=start.time(),
                                      ends_at=end.time(), expert=expert or cast.expert,
                                      backup=backup if backup is not None else cast.colleague)


def sync_request(cast) -> Case:
    return cast.new_case(mode="synchronous", priority="urgent")


def _paged(user, case) -> int:
    return Notification.objects.filter(recipient=user, case=case, verb=page_verb()).count()


def test_a_synchronous_request_goes_straight_to_the_expert_on_call(cast):
    shift_around(cast, timezone.now())
    case = sync_request(cast)
    assert (case.state, case.expert, case.oncall_stage) == (S.SUBMITTED, cast.expert, Stage.EXPERT)
    assert case.awaits_acknowledgement and not case.is_pooled
    assert _paged(cast.expert.user, case) == 1
    # Not the whole pool: the colleague (backup) and the dispatcher are not disturbed yet.
    assert not Notification.objects.filter(case=case, recipient__in=[cast.colleague.user,
                                                                     cast.dispatcher.user]).exists()


def test_not_acknowledged_it_passes_to_the_backup_then_to_the_dispatchers_once_each(cast, settings):
    shift_around(cast, timezone.now())
    case = sync_request(cast)
    paged = case.oncall_paged_at
    window = timedelta(minutes=settings.ONCALL_ACK_MINUTES)
    assert settings.ONCALL_ACK_MINUTES == 15
    assert oncall_escalate_due(now=paged + window - timedelta(seconds=1)) == 0

    to_backup = paged + window
    assert (oncall_escalate_due(now=to_backup), oncall_escalate_due(now=to_backup)) == (1, 0)
    case.refresh_from_db()
    assert (case.expert, case.oncall_stage, case.oncall_paged_at) == (cast.colleague, Stage.BACKUP, to_backup)
    assert _paged(cast.colleague.user, case) == 1
    assert oncall_escalate_due(now=to_backup + window - timedelta(seconds=1)) == 0

    to_dispatchers = to_backup + window
    assert (oncall_escalate_due(now=to_dispatchers), oncall_escalate_due(now=to_dispatchers)) == (1, 0)
    case.refresh_from_db()
    assert (case.expert, case.oncall_stage, case.is_pooled) == (None, Stage.DISPATCHERS, True)
    told = Notification.objects.filter(case=case, verb__contains="sans accusé de réception")
    assert list(told.values_list("recipient", flat=True)) == [cast.dispatcher.user.pk]
    # The pool escalation does not tell the dispatchers again about a request they already hold.
    assert deadlines.deadline_alerts_send(now=to_dispatchers + timedelta(hours=30)) == 0
    assert oncall_escalate_due(now=to_dispatchers + timedelta(hours=1)) == 0
    assert list(CaseAlert.objects.filter(case=case).order_by("created_at").values_list("kind", flat=True)) == [
        CaseAlert.Kind.ONCALL_BACKUP, CaseAlert.Kind.ONCALL_DISPATCHERS]
    assert _paged(cast.expert.user, case) == 1 and _paged(cast.colleague.user, case) == 1


def test_acknowledged_in_time_it_stays_with_the_expert(cast):
    shift_around(cast, timezone.now())
    case = sync_request(cast)
    with pytest.raises(WorkflowError):
        services.case_acknowledge(actor=cast.actor(cast.colleague), case_id=case.pk)  # not theirs (yet)
    services.case_acknowledge(actor=cast.actor(cast.expert), case_id=case.pk)
    case.refresh_from_db()
    assert (case.state, case.expert, case.oncall_stage) == (S.TAKEN, cast.expert, Stage.ACKNOWLEDGED)
    assert Notification.objects.filter(case=case, recipient=cast.requester.user,
                                       verb="l'expert d'astreinte a accusé réception").count() == 1
    assert oncall_escalate_due(now=case.oncall_paged_at + timedelta(hours=2)) == 0
    case.refresh_from_db()
    assert case.expert == cast.expert
    with pytest.raises(WorkflowError):
        services.case_acknowledge(actor=cast.actor(cast.expert), case_id=case.pk)  # once


def test_the_backup_acknowledges_after_the_expert_missed_it(cast):
    shift_around(cast, timezone.now())
    case = sync_request(cast)
    oncall_escalate_due(now=case.oncall_paged_at + timedelta(minutes=16))
    with pytest.raises(WorkflowError):
        services.case_acknowledge(actor=cast.actor(cast.expert), case_id=case.pk)
    services.case_acknowledge(actor=cast.actor(cast.colleague), case_id=case.pk)
    case.refresh_from_db()
    assert (case.state, case.expert) == (S.TAKEN, cast.colleague)


def test_without_a_backup_it_goes_to_the_dispatchers(cast):
    OnCallShift.objects.all().delete()
    start = timezone.localtime() - timedelta(hours=1)
    OnCallShift.objects.create(network=cast.network, weekday=start.weekday(), starts_at=start.time(),
                               ends_at=(start + timedelta(hours=2)).time(), expert=cast.expert)
    case = sync_request(cast)
    assert oncall_escalate_due(now=case.oncall_paged_at + timedelta(minutes=15)) == 1
    case.refresh_from_db()
    assert (case.expert, case.oncall_stage) == (None, Stage.DISPATCHERS)


def test_nobody_on_call_the_dispatchers_are_told_at_once(cast):
    case = sync_request(cast)
    assert (case.expert, case.oncall_stage, case.is_pooled) == (None, Stage.DISPATCHERS, True)
    assert Notification.objects.filter(case=case, recipient=cast.dispatcher.user,
                                       verb="demande synchrone sans expert d'astreinte").count() == 1
    assert oncall_escalate_due(now=timezone.now() + timedelta(hours=1)) == 0


def test_an_asynchronous_request_is_not_paged(cast):
    shift_around(cast, timezone.now())
    case = cast.new_case(priority="urgent")
    assert (case.expert, case.oncall_stage) == (None, "")
    with pytest.raises(WorkflowError):
        services.case_acknowledge(actor=cast.actor(cast.expert), case_id=case.pk)


def test_shifts_cover_their_hours_and_overnight_slots_run_into_the_next_day(cast):
    day = OnCallShift(weekday=0, starts_at=time(8), ends_at=time(18))
    assert day.covers(0, time(8)) and day.covers(0, time(17, 59)) and not day.covers(0, time(18))
    assert not day.covers(1, time(9))
    night = OnCallShift(weekday=6, starts_at=time(20), ends_at=time(8))  # Sunday 20:00 to Monday 08:00
    assert night.covers(6, time(23)) and night.covers(0, time(7, 59))
    assert not night.covers(0, time(8)) and not night.covers(6, time(19)) and not night.covers(1, time(7))


def test_shift_at_reads_the_paris_wall_clock(cast):
    shift = shift_around(cast, timezone.now(), hours=1)
    assert shift_at(cast.network.pk, timezone.now()) == shift
    assert shift_at(cast.network.pk, timezone.now() + timedelta(hours=3)) is None


# --- Live updates and the video link (HTTP) --------------------------------------------------------------

def test_the_case_stamp_changes_when_the_expert_acknowledges_and_outsiders_get_404(cast, client_for):
    shift_around(cast, timezone.now())
    case = sync_request(cast)
    url = reverse("cases:live", args=[case.pk])
    requester = client_for(cast.requester)
    before = requester.get(url).json()
    assert before["open"] and before["state"] == "submitted" and "DURAND" not in str(before)
    assert client_for(cast.outsider).get(url).status_code == 404
    assert client_for(cast.colleague).get(url).status_code == 404  # paged to the expert, not in the pool
    page = requester.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert f'data-live-stamp="{before["stamp"]}"' in page and "js/live.js" in page
    services.case_acknowledge(actor=cast.actor(cast.expert), case_id=case.pk)
    after = requester.get(url).json()
    assert after["stamp"] != before["stamp"] and after["state_label"] == "Prise en charge"
    assert after["message"] == "Demande mise à jour : Prise en charge"


def test_the_inbox_stamp_tells_the_on_call_expert_a_request_waits(cast, client_for):
    shift_around(cast, timezone.now())
    client = client_for(cast.expert)
    before = client.get(reverse("cases:inbox_live")).json()
    assert before["paged"] == 0
    sync_request(cast)
    after = client.get(reverse("cases:inbox_live")).json()
    assert after["stamp"] != before["stamp"] and after["paged"] == 1
    assert after["message"] == "1 demande synchrone attend votre accusé de réception."
    page = client.get(reverse("cases:inbox"), {"box": "todo"}).content.decode()
    assert "Astreinte : accusé de réception attendu" in page


def test_the_video_link_follows_the_template_for_an_open_synchronous_request(cast, client_for, settings):
    settings.VIDEO_URL_TEMPLATE = "https://visio.example.fr/{case_reference}"
    shift_around(cast, timezone.now())
    case = sync_request(cast)
    asynchronous = cast.new_case(to_network=False)
    link = f"https://visio.example.fr/{case.reference}"
    for who in (cast.requester, cast.expert):
        assert link in client_for(who).get(reverse("cases:detail", args=[case.pk])).content.decode()
    page = client_for(cast.requester).get(reverse("cases:detail", args=[asynchronous.pk])).content.decode()
    assert "visio.example.fr" not in page
    settings.VIDEO_URL_TEMPLATE = ""
    page = client_for(cast.expert).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "visio.example.fr" not in page
