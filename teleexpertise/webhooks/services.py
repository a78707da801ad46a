"""Changes to webhook subscriptions and deliveries, by an organisation client (REST) or the staff (admin).

Every change is audited; a client only ever reaches its own subscriptions (404 for the others). Calls made by a
client act for no professional, so their audit events have no user and name the client in their summary.
"""

import secrets

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.api.models import ApiClient
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.core.jobs import enqueue
from teleexpertise.webhooks.delivery import summary
from teleexpertise.webhooks.models import EVENT_TYPES, WebhookDelivery, WebhookSubscription
from teleexpertise.webhooks.targets import url_problem
from teleexpertise.webhooks.tasks import send_webhook_delivery

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that tells the secret apart, not a secret
MAX_SUBSCRIPTIONS = 20  # per client: one receiver usually suffices, a few for test and production
EDITABLE = ("url", "events", "description", "contact_email", "active")


class DeliveryRefused(Exception):
    """A redelivery that cannot be made now; the message is for the caller."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _clean(data: dict) -> dict:
    """The editable fields given, checked; a ValidationError names each wrong field."""
    errors, cleaned = {}, {}
    if "url" in data:
        cleaned["url"] = (data["url"] or "").strip()
        problem = url_problem(cleaned["url"]) if len(cleaned["url"]) <= 500 else _("500 caractères au plus.")
        if problem:
            errors["url"] = [problem]
    if "events" in data:
        wanted = set(data["events"] or ())
        cleaned["events"] = [event for event in EVENT_TYPES if event in wanted]  # in the lifecycle's order
        if not wanted or wanted - set(EVENT_TYPES):
            errors["events"] = [_("Choisissez au moins un événement parmi : %(known)s.") % {
                "known": ", ".join(EVENT_TYPES)}]
    for name in ("description", "contact_email", "active"):
        if name in data:
            cleaned[name] = data[name].strip() if isinstance(data[name], str) else data[name]
    if cleaned.get("contact_email"):
        try:
            validate_email(cleaned["contact_email"])
        except ValidationError as exc:
            errors["contact_email"] = exc.messages
    if errors:
        raise ValidationError(errors)
    return cleaned


def _label(client: ApiClient) -> str:
    return f"{client.name} ({client.client_id})"


def subscriptions_of(client: ApiClient):
    return WebhookSubscription.objects.filter(client=client).order_by("created_at")


def subscription_for_client(client: ApiClient, subscription_id) -> WebhookSubscription:
    subscription = subscriptions_of(client).select_related("client").filter(pk=subscription_id).first()
    if subscription is None:
        raise Http404
    return subscription


def subscription_create(*, client: ApiClient, data: dict, ip=None) -> tuple[WebhookSubscription, str]:
    """A subscription and its signing secret, which the caller shows once."""
    cleaned = _clean({"url": data.get("url"), "events": data.get("events"),
                      "description": data.get("description", ""), "contact_email": data.get("contact_email", "")})
    if subscriptions_of(client).count() >= MAX_SUBSCRIPTIONS:
        raise ValidationError(_("Un logiciel a au plus %(n)s abonnements.") % {"n": MAX_SUBSCRIPTIONS},
                              code="subscriptions")
    secret = _new_secret()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(client=client, secret=secret, **cleaned)
        audit_log(actor=None, action="webhook.create", kind=AuditEvent.Kind.CREATE, obj=subscription, ip=ip,
                  summary=f"{_label(client)} : {subscription.url} ({', '.join(subscription.events)})")
    return subscription, secret


def subscription_update(*, client: ApiClient, subscription_id, data: dict, ip=None) -> WebhookSubscription:
    """Change what is given; turning a disabled subscription back on clears its failure count."""
    cleaned = _clean({name: data[name] for name in EDITABLE if name in data})
    with transaction.atomic():
        subscription = subscription_for_client(client, subscription_id)
        subscription = WebhookSubscription.objects.select_for_update().get(pk=subscription.pk)
        changed = {name: value for name, value in cleaned.items() if getattr(subscription, name) != value}
        if changed.get("active"):
            changed.update(consecutive_failures=0, disabled_at=None, disabled_reason="")
        if not changed:
            return subscription
        for name, value in {**changed, "updated_at": timezone.now()}.items():
            setattr(subscription, name, value)
        subscription.save(update_fields=[*changed, "updated_at"])
        audit_log(actor=None, action="webhook.update", kind=AuditEvent.Kind.UPDATE, obj=subscription, ip=ip,
                  summary=f"{_label(client)} : {subscription.url} ({', '.join(sorted(changed))})")
    return subscription


def subscription_delete(*, client: ApiClient, subscription_id, ip=None) -> None:
    """Delete a subscription and its delivery log (the audit trail keeps what was sent)."""
    with transaction.atomic():
        subscription = subscription_for_client(client, subscription_id)
        audit_log(actor=None, action="webhook.delete", kind=AuditEvent.Kind.UPDATE, obj=subscription, ip=ip,
                  summary=f"{_label(client)} : {subscription.url}")
        subscription.delete()


def subscription_rotate_secret(*, client: ApiClient, subscription_id, ip=None) -> tuple[WebhookSubscription, str]:
    """A new signing secret, used from the next attempt on; the old one stops at once."""
    secret = _new_secret()
    with transaction.atomic():
        subscription = subscription_for_client(client, subscription_id)
        WebhookSubscription.objects.filter(pk=subscription.pk).update(secret=secret, updated_at=timezone.now())
        audit_log(actor=None, action="webhook.rotate_secret", kind=AuditEvent.Kind.UPDATE, obj=subscription, ip=ip,
                  summary=f"{_label(client)} : {subscription.url}")
    return subscription, secret


def deliveries_of(subscription: WebhookSubscription, *, status: str = ""):
    deliveries = subscription.deliveries.order_by("-created_at", "-pk")
    return deliveries.filter(status=status) if status else deliveries


def delivery_redeliver(*, delivery: WebhookDelivery, user=None, ip=None) -> WebhookDelivery:
    """Send an event again as a new delivery (new id, same event and payload); for a delivered or failed one, on
    an active subscription. `user` is the staff member when it comes from the admin, None for the client."""
    subscription = delivery.subscription
    if not subscription.active:
        raise DeliveryRefused("subscription_inactive", _("L'abonnement est désactivé : réactivez-le d'abord."))
    if delivery.is_pending:
        raise DeliveryRefused("delivery_pending", _("Cet envoi est encore en cours de tentatives."))
    now = timezone.now()
    with transaction.atomic():
        again = WebhookDelivery.objects.create(
            subscription=subscription, event_id=delivery.event_id, event_type=delivery.event_type,
            case_id=delivery.case_id, payload=delivery.payload, redelivery_of=delivery, next_attempt_at=now,
            created_at=now)
        audit_log(actor=user, action="webhook.redeliver", kind=AuditEvent.Kind.EXECUTE, obj=again, ip=ip,
                  summary=f"{summary(delivery)} ({_('renvoi de %(id)s') % {'id': delivery.pk}})")
        enqueue(send_webhook_delivery, again.pk)
    return again


def delivery_for_client(subscription: WebhookSubscription, delivery_id) -> WebhookDelivery:
    delivery = subscription.deliveries.select_related("subscription__client").filter(pk=delivery_id).first()
    if delivery is None:
        raise Http404
    return delivery
