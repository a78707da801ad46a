"""Webhooks over REST: an organisation client manages its own subscriptions and reads their delivery log.

These calls configure the client itself and act for no professional: a client token with the `webhooks:manage`
scope, no X-On-Behalf-Of. Another client's subscription answers 404, as a case does.
"""

from typing import Literal
from uuid import UUID

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from teleexpertise.api import schemas as s
from teleexpertise.api.auth import ClientBearerToken, require
from teleexpertise.api.errors import ApiError, Error, from_django_validation, refuse_unknown_query
from teleexpertise.api.models import ApiClient
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.webhooks import services
from teleexpertise.webhooks.models import WebhookDelivery, WebhookSubscription

router = Router(tags=["webhooks"], auth=ClientBearerToken())
ERRORS = {400: Error, 401: Error, 403: Error, 404: Error, 409: Error, 422: Error, 429: Error}
SCOPE = "webhooks:manage"


def _client(request) -> ApiClient:
    caller = require(request, SCOPE)
    if caller.token.client_id is None:  # personal tokens never hold the scope; this is the belt to its braces
        raise ApiError(403, "client_required", _("Les webhooks sont ceux d'un logiciel d'organisation : utilisez "
                                                 "un jeton de client d'organisation."))
    return caller.token.client


def _subscription_out(subscription: WebhookSubscription, secret: str | None = None) -> dict:
    out = {name: getattr(subscription, name) for name in (
        "id", "url", "events", "description", "contact_email", "active", "consecutive_failures", "disabled_at",
        "disabled_reason", "created_at", "updated_at")}
    return {**out, "secret": secret} if secret else out


def _delivery_out(delivery: WebhookDelivery) -> dict:
    return {**{name: getattr(delivery, name) for name in (
        "id", "event_id", "event_type", "case_id", "status", "attempts", "last_attempt_at", "last_status_code",
        "last_error", "next_attempt_at", "delivered_at", "created_at", "payload")},
        "redelivery_of": delivery.redelivery_of_id}


def _invalid(exc: ValidationError) -> ApiError:
    return from_django_validation(exc, field="__all__")


@router.get("/webhooks", response={200: list[s.WebhookOut], **ERRORS}, summary="List the client's webhooks")
def webhook_list(request):
    return [_subscription_out(w) for w in services.subscriptions_of(_client(request))]


@router.post("/webhooks", response={201: s.WebhookSecretOut, **ERRORS}, summary="Subscribe to case events")
def webhook_create(request, payload: s.WebhookIn):
    """The answer holds the signing secret, shown this once."""
    client = _client(request)
    try:
        subscription, secret = services.subscription_create(client=client, data=payload.dict(), ip=client_ip(request))
    except ValidationError as exc:
        raise _invalid(exc) from None
    return Status(201, _subscription_out(subscription, secret))


@router.get("/webhooks/{webhook_id}", response={200: s.WebhookOut, **ERRORS}, summary="Read a webhook")
def webhook_read(request, webhook_id: UUID):
    return _subscription_out(services.subscription_for_client(_client(request), webhook_id))


@router.patch("/webhooks/{webhook_id}", response={200: s.WebhookOut, **ERRORS},
              summary="Change a webhook, or turn it back on")
def webhook_update(request, webhook_id: UUID, payload: s.WebhookPatch):
    try:
        subscription = services.subscription_update(client=_client(request), subscription_id=webhook_id,
                                                    data=payload.dict(exclude_none=True), ip=client_ip(request))
    except ValidationError as exc:
        raise _invalid(exc) from None
    return _subscription_out(subscription)


@router.delete("/webhooks/{webhook_id}", response={204: None, **ERRORS}, summary="Delete a webhook and its log")
def webhook_delete(request, webhook_id: UUID):
    services.subscription_delete(client=_client(request), subscription_id=webhook_id, ip=client_ip(request))
    return Status(204, None)


@router.post("/webhooks/{webhook_id}/secret", response={200: s.WebhookSecretOut, **ERRORS},
             summary="Replace the signing secret")
def webhook_rotate_secret(request, webhook_id: UUID):
    """The new secret signs from the next attempt on and is shown this once; the old one stops at once."""
    subscription, secret = services.subscription_rotate_secret(client=_client(request), subscription_id=webhook_id,
                                                               ip=client_ip(request))
    return _subscription_out(subscription, secret)


class DeliveryFilters(Schema):
    status: Literal["", "pending", "delivered", "failed"] = ""
    limit: int = Field(50, ge=1, le=200)
    offset: int = Field(0, ge=0, le=1_000_000)


@router.get("/webhooks/{webhook_id}/deliveries", response={200: s.DeliveryPage, **ERRORS},
            summary="The delivery log, newest first")
def delivery_list(request, webhook_id: UUID, filters: Query[DeliveryFilters]):
    client = _client(request)
    subscription = services.subscription_for_client(client, webhook_id)
    refuse_unknown_query(request, DeliveryFilters)
    rows = services.deliveries_of(subscription, status=filters.status)
    audit_log(actor=None, action="webhook.deliveries_read", kind=AuditEvent.Kind.READ, obj=subscription,
              ip=client_ip(request), summary=f"{client.name} ({client.client_id}) {filters.status}".strip())
    page = rows[filters.offset:filters.offset + filters.limit]
    return {"count": rows.count(), "limit": filters.limit, "offset": filters.offset,
            "items": [_delivery_out(d) for d in page]}


@router.post("/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver", response={202: s.DeliveryOut, **ERRORS},
             summary="Send an event again")
def delivery_redeliver(request, webhook_id: UUID, delivery_id: UUID):
    """A new delivery (new id) of the same event and body, sent at once; for a delivered or failed delivery of an
    active webhook (409 otherwise)."""
    subscription = services.subscription_for_client(_client(request), webhook_id)
    delivery = services.delivery_for_client(subscription, delivery_id)
    try:
        again = services.delivery_redeliver(delivery=delivery, ip=client_ip(request))
    except services.DeliveryRefused as exc:
        raise ApiError(409, exc.code, str(exc)) from None
    again.refresh_from_db()  # the job may have run already (inline in development)
    return Status(202, _delivery_out(again))
