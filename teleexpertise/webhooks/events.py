"""Case events for webhooks: the case services call `case_event_emit` in their transaction; once it commits, one
delivery row is written per subscription that asked for the event and whose organisation sees the case, and a job
sends each one.

Who is told is decided by who sees the case right after the change (`cases.selectors.organisations_seeing`). The
payload names the case and its state, never the patient, the question or any clinical text.
"""

import logging
import uuid
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from teleexpertise.cases.models import Case
from teleexpertise.cases.selectors import organisations_seeing
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.core.jobs import enqueue
from teleexpertise.webhooks.models import ACTION_EVENTS, WebhookDelivery, WebhookSubscription
from teleexpertise.webhooks.tasks import send_webhook_delivery

logger = logging.getLogger(__name__)


def case_links(case_id) -> dict:
    """Where the integrator reads the case with its token (REST, and the FHIR facade's request and task)."""
    site = settings.SITE_URL.rstrip("/")
    return {"api": f"{site}/api/cases/{case_id}", "fhir_service_request": f"{site}/fhir/ServiceRequest/{case_id}",
            "fhir_task": f"{site}/fhir/Task/{case_id}"}


def event_payload(*, event_type: str, case: Case, occurred_at) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "occurred_at": occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "case": {"id": str(case.pk), "reference": case.reference, "state": case.state,
                 "links": case_links(case.pk)},
    }


def _as_seen(case: Case) -> Case:
    """The fields that decide who sees the case, as they are at the event (later steps of the same transaction,
    or later transactions, do not change who is told of this event)."""
    return Case(pk=case.pk, requester_id=case.requester_id, expert_id=case.expert_id, network_id=case.network_id,
                state=case.state)


_events_enabled: ContextVar[bool] = ContextVar("case_events_enabled", default=True)


@contextmanager
def case_events_muted():
    """No webhook events: for replaying history (demo data, imports), whose changes happen now but are not news."""
    token = _events_enabled.set(False)
    try:
        yield
    finally:
        _events_enabled.reset(token)


def case_event_emit(*, case: Case, action: str, occurred_at=None) -> None:
    """Record that `action` happened to `case` (its state now being the new one); deliveries are made only if
    the surrounding transaction commits. Actions that no event stands for are ignored."""
    event_type = ACTION_EVENTS.get(action)
    if event_type is None or not _events_enabled.get():
        return
    payload = event_payload(event_type=event_type, case=case, occurred_at=occurred_at or timezone.now())
    seen = _as_seen(case)
    # robust: the change is committed already; a failure here is logged and must not turn the user's action
    # into an error page.
    transaction.on_commit(lambda: deliveries_create(payload, seen), robust=True)


# Read after every case event: compiled once (core/compiled.py).
_listening = CompiledQuery(lambda: WebhookSubscription.objects.filter(active=True, client__revoked_at__isnull=True)
                           .select_related("client").order_by("created_at", "pk"))


def subscriptions_for(payload: dict, case: Case) -> list[WebhookSubscription]:
    """Active subscriptions of unrevoked clients that asked for this event and whose organisation sees the case
    right after the change: a webhook never tells an organisation about a case it cannot read."""
    # `events` is a JSON list: filtered here, as SQLite has no JSON containment lookup. The subscriptions are
    # few and most events interest none: who sees the case is asked only about the organisations that listen.
    candidates = [subscription for subscription in _listening.all() if payload["type"] in subscription.events]
    if not candidates:
        return []
    listening = {subscription.client.organisation_id for subscription in candidates}
    seeing = set(organisations_seeing(case).filter(organisation_id__in=listening)
                 .values_list("organisation_id", flat=True))
    return [subscription for subscription in candidates if subscription.client.organisation_id in seeing]


def deliveries_create(payload: dict, case: Case) -> list[WebhookDelivery]:
    """One pending delivery per matching subscription, each sent by its own job once written."""
    now = timezone.now()
    subscriptions = subscriptions_for(payload, case)
    if not subscriptions:
        return []
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create([
            WebhookDelivery(subscription=subscription, event_id=payload["id"], event_type=payload["type"],
                            case_id=payload["case"]["id"], payload=payload, next_attempt_at=now, created_at=now)
            for subscription in subscriptions])
        for delivery in deliveries:
            enqueue(send_webhook_delivery, delivery.pk)
    if deliveries:
        logger.info("webhook event queued", extra={"event": payload["id"], "type": payload["type"],
                                                   "deliveries": len(deliveries)})
    return deliveries
