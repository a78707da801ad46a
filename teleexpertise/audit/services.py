"""Writing to the audit trail. Called inside the transaction of the change it records."""

from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.core.compiled import CompiledInsert

_insert = CompiledInsert(AuditEvent)  # one row per read and change: compiled once (core/compiled.py)


def _actor_label(actor) -> str:
    if actor is None:
        return "système"
    name = actor.get_full_name() if hasattr(actor, "get_full_name") else ""
    return f"{name} <{actor.email}>" if name else getattr(actor, "email", str(actor))


def audit_log(*, actor, action: str, kind: str, obj=None, case=None, patient=None, ip: str | None = None,
              summary: str = "") -> AuditEvent:
    return _insert.create(
        at=timezone.now(),
        actor_id=getattr(actor, "pk", None),
        actor_label=_actor_label(actor)[:255],
        action=action,
        kind=kind,
        object_type=obj._meta.label_lower if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        case_id=getattr(case, "pk", None),
        patient_id=getattr(patient, "pk", None) or getattr(case, "patient_id", None),
        ip=ip,
        summary=summary[:500],
    )


def client_ip(request) -> str | None:
    """The caller's address; behind a proxy, set the proxy to overwrite REMOTE_ADDR (docs/operations.md)."""
    return request.META.get("REMOTE_ADDR") if request is not None else None
