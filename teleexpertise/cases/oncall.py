"""Synchronous on-call requests: page the expert on call now, then the backup, then the dispatchers.

A synchronous request sent to a network goes straight to the expert the network's weekly rota names for now
(`oncall_page`, called by `case_submit` in its transaction). That expert acknowledges it (`case_acknowledge`,
the workflow's "acknowledge" action) within ONCALL_ACK_MINUTES, or the job `cases.tasks.escalate_oncall`
(every minute, `oncall_escalate_due`) passes it to the shift's backup, and after another window back to the
network's pool with its dispatchers told. Each step is a `CaseAlert` keyed by the paging time: idempotent.
"""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases.alerts import alert_send, dispatcher_users
from teleexpertise.cases.models import Case, CaseAlert
from teleexpertise.directory.models import OnCallShift
from teleexpertise.messaging.services import notify

Stage = Case.OncallStage
BATCH = 200


def shift_at(network_id, at, *, expert_id=None) -> OnCallShift | None:
    """The rota slot running at `at` (Europe/Paris wall clock) in this network, optionally the one of an expert."""
    local = timezone.localtime(at)
    shifts = OnCallShift.objects.filter(network_id=network_id).select_related("expert__user", "backup__user")
    if expert_id is not None:
        shifts = shifts.filter(expert_id=expert_id)
    return next((s for s in shifts if s.covers(local.weekday(), local.time())), None)


def page_verb() -> str:
    return _("demande synchrone : accusez réception (astreinte)")


def oncall_page(*, case: Case, now=None) -> Case:
    """Inside case_submit's transaction: address a synchronous request to the network's expert on call now.

    Nobody on call (or the requester is): the request stays in the pool and the dispatchers are told at once.
    """
    now = now or timezone.now()
    shift = shift_at(case.network_id, now)
    expert = shift.expert if shift else None
    if expert is not None and expert.pk == case.requester_id:
        expert = shift.backup
    if expert is None:
        Case.objects.filter(pk=case.pk).update(oncall_stage=Stage.DISPATCHERS, oncall_paged_at=now, updated_at=now)
        case.oncall_stage, case.oncall_paged_at = Stage.DISPATCHERS, now
        audit_log(actor=None, action="case.oncall_page", kind=AuditEvent.Kind.EXECUTE, obj=case, case=case,
                  summary=_("Aucun expert d'astreinte : demande confiée aux régulateurs"))
        notify(users=dispatcher_users(case), case=case, verb=_("demande synchrone sans expert d'astreinte"))
        return case
    stage = Stage.EXPERT if expert.pk == shift.expert_id else Stage.BACKUP
    Case.objects.filter(pk=case.pk).update(expert=expert, oncall_stage=stage, oncall_paged_at=now, updated_at=now)
    case.expert, case.oncall_stage, case.oncall_paged_at = expert, stage, now
    audit_log(actor=None, action="case.oncall_page", kind=AuditEvent.Kind.EXECUTE, obj=case, case=case,
              summary=_("Adressée à l'expert d'astreinte %(name)s") % {"name": expert.display_name})
    notify(users=[expert.user], case=case, verb=page_verb())
    return case


def oncall_escalate_due(*, now=None) -> int:
    """Pass every request not acknowledged within ONCALL_ACK_MINUTES to its next step; returns how many moved."""
    now = now or timezone.now()
    limit = now - timedelta(minutes=settings.ONCALL_ACK_MINUTES)
    cases = (Case.objects.filter(state=Case.State.SUBMITTED, expert__isnull=False,
                                 oncall_stage__in=[Stage.EXPERT, Stage.BACKUP], oncall_paged_at__lte=limit)
             .select_related("expert").order_by("oncall_paged_at"))
    return sum(_escalate(case, now) for case in cases[:BATCH])


def _escalate(case: Case, now) -> int:
    backup = None
    if case.oncall_stage == Stage.EXPERT:
        shift = shift_at(case.network_id, case.oncall_paged_at, expert_id=case.expert_id)
        backup = shift.backup if shift and shift.backup_id != case.requester_id else None
    if backup is not None:
        return alert_send(case, kind=CaseAlert.Kind.ONCALL_BACKUP, deadline=case.oncall_paged_at, users=[backup.user],
                          verb=page_verb(), now=now,
                          changes={"expert": backup, "oncall_stage": Stage.BACKUP, "oncall_paged_at": now,
                                   "updated_at": now})
    # Back in the network's pool: its dispatchers assign it (members may claim it too).
    return alert_send(case, kind=CaseAlert.Kind.ONCALL_DISPATCHERS, deadline=case.oncall_paged_at,
                      users=dispatcher_users(case), now=now,
                      verb=_("demande synchrone sans accusé de réception de l'astreinte : attribuez-la"),
                      changes={"expert": None, "oncall_stage": Stage.DISPATCHERS, "oncall_paged_at": now,
                               "updated_at": now})


def video_url(case: Case, roles) -> str:
    """The video room of an open synchronous request, for its requester and expert; "" when there is none."""
    template = settings.VIDEO_URL_TEMPLATE
    if not template or case.mode != Case.Mode.SYNCHRONOUS or case.state not in Case.OPEN_STATES:
        return ""
    if not set(roles) & {"requester", "expert"}:
        return ""
    return template.format(case_reference=case.reference)
