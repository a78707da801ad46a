"""Background work of webhooks: send one delivery, sweep the due ones every minute, tell a disabled subscription's
contact."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from teleexpertise.core.jobs import enqueue
from teleexpertise.webhooks import delivery
from teleexpertise.webhooks.models import WebhookSubscription

logger = logging.getLogger(__name__)


@db_task()
def send_webhook_delivery(delivery_id, now=None) -> None:
    """Idempotent: a delivery that is not due, is done, or is held by another job is left alone. Retries are not
    huey's: the row keeps its next attempt time and the sweep sends it then. `now` is for tests' clocks."""
    outcome = delivery.attempt(delivery_id, now=now or timezone.now())
    if outcome is not None and outcome.disabled_subscription is not None:
        enqueue(notify_subscription_disabled, outcome.disabled_subscription.pk)


@db_periodic_task(crontab())  # every minute: the shortest retry delay is a minute
def sweep_webhook_deliveries() -> None:
    """Send what is due: scheduled retries, and deliveries whose job was lost with its worker."""
    for delivery_id in delivery.due_ids(now=timezone.now()):
        enqueue(send_webhook_delivery, delivery_id)


@db_task(retries=3, retry_delay=60)
def notify_subscription_disabled(subscription_id) -> None:
    """An e-mail to the subscription's technical contact: which address, why, and how to turn it back on."""
    subscription = WebhookSubscription.objects.select_related("client").filter(pk=subscription_id).first()
    if subscription is None or not subscription.contact_email or subscription.active:
        return
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Téléexpertise : abonnement webhook désactivé")
        body = _("Bonjour,\n\nL'abonnement webhook %(id)s du logiciel « %(client)s » vers %(url)s a été désactivé : "
                 "%(reason)s\n\nLes événements survenus depuis ne lui seront pas envoyés. Une fois le récepteur "
                 "réparé, réactivez-le (PATCH /api/webhooks/%(id)s avec {\"active\": true}) ; les envois encore en "
                 "attente repartiront, et ceux en échec peuvent être renvoyés depuis leur journal.\n\n"
                 "Message envoyé automatiquement, merci de ne pas y répondre.") % {
            "id": subscription.pk, "client": subscription.client.name, "url": subscription.url,
            "reason": subscription.disabled_reason}
    send_mail(subject, body, None, [subscription.contact_email])
    logger.info("webhook disabled notice sent", extra={"subscription": str(subscription.pk)})
