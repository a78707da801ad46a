"""Thread messages, read markers and notifications. Callers hold the transaction and the permission check."""

import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.core.jobs import enqueue
from teleexpertise.messaging.models import Message, Notification, ReadMarker


def message_create(*, actor, case, author, body: str, kind: str = Message.Kind.MESSAGE, ip=None) -> Message:
    message = Message.objects.create(case=case, author=author, body=body, kind=kind)
    audit_log(actor=actor, action="message.create", kind=AuditEvent.Kind.CREATE, obj=message, case=case, ip=ip,
              summary=str(message.get_kind_display()))
    thread_mark_read(user=actor, case=case)
    return message


# Run on every visit of a case: compiled once (core/compiled.py).
_move_marker = CompiledQuery(lambda case, user, now: ReadMarker.objects.filter(case_id=case, user_id=user),
                             case=uuid.UUID, user=int, now=datetime)
_read_notifications = CompiledQuery(
    lambda case, user, now: Notification.objects.filter(recipient_id=user, case_id=case, read_at__isnull=True),
    case=uuid.UUID, user=int, now=datetime)


def thread_mark_read(*, user, case) -> None:
    """The user has seen the case: its messages and its notifications are read."""
    now = timezone.now()
    values = {"case": case.pk, "user": user.pk, "now": now}
    # One UPDATE when the marker exists (every visit but the first), instead of update_or_create's locking read,
    # savepoint and save; the first visit inserts it, or updates it when a concurrent first visit won the insert.
    if not _move_marker.update({"read_at": "now"}, **values):
        ReadMarker.objects.update_or_create(case=case, user=user, defaults={"read_at": now})
    _read_notifications.update({"read_at": "now"}, **values)


_emails_enabled: ContextVar[bool] = ContextVar("notification_emails_enabled", default=True)


@contextmanager
def notification_emails_muted():
    """In-app notifications only: for replaying history (demo data, imports) without mailing anyone."""
    token = _emails_enabled.set(False)
    try:
        yield
    finally:
        _emails_enabled.reset(token)


def notify(*, users, case, verb: str) -> None:
    from teleexpertise.messaging.tasks import send_notification_email

    for user in users:
        if user is None:
            continue
        notification = Notification.objects.create(recipient=user, case=case, verb=str(verb))
        if _emails_enabled.get():
            enqueue(send_notification_email, notification.pk)


def notifications_mark_read(*, user) -> int:
    return Notification.objects.filter(recipient=user, read_at__isnull=True).update(read_at=timezone.now())
