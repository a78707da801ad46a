"""Alerts sent by the periodic jobs, once each: who is told, and the row that makes a second sending impossible.

`alert_send` inserts a `CaseAlert` (unique per case, kind and deadline) and notifies in the same transaction:
a second run, or a second worker racing the first, hits the unique constraint and its notifications roll back.
"""

from django.db import IntegrityError, transaction
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases.models import Case, CaseAlert
from teleexpertise.directory.models import NetworkMembership, Professional
from teleexpertise.messaging.services import notify


def dispatcher_users(case: Case) -> list:
    """The accounts of the case network's dispatchers (its members when it has none), never the requester."""
    if not case.network_id:
        return []
    pros = (Professional.objects.filter(memberships__network_id=case.network_id, user__isnull=False)
            .exclude(pk=case.requester_id).select_related("user"))
    dispatchers = [p for p in pros.filter(memberships__role=NetworkMembership.Role.DISPATCHER)]
    return [p.user for p in (dispatchers or pros)]


def alert_send(case: Case, *, kind: str, deadline, users, verb: str, now=None, changes: dict | None = None) -> int:
    """Record the alert and tell `users`; 1 if sent now, 0 if it had already been sent.

    `changes` are written to the case in the same transaction, guarded by the state the caller saw (a case
    that moved meanwhile is left alone and nothing is sent).
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            CaseAlert.objects.create(case=case, kind=kind, deadline=deadline, created_at=now)
            if changes and not Case.objects.filter(pk=case.pk, state=case.state, expert_id=case.expert_id,
                                                   oncall_stage=case.oncall_stage).update(**changes):
                raise _Moved
            audit_log(actor=None, action=f"alert.{kind}", kind=AuditEvent.Kind.EXECUTE, obj=case, case=case,
                      summary=str(CaseAlert.Kind(kind).label))
            notify(users=[u for u in users if u is not None], case=case, verb=verb)
    except (IntegrityError, _Moved):
        return 0
    return 1


class _Moved(Exception):
    """The case changed between the job's read and its write: roll the alert back."""
