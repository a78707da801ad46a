"""Background work of messaging: notification e-mails (a link only, never clinical content)."""

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from huey.contrib.djhuey import db_task

from teleexpertise.messaging.models import Notification

logger = logging.getLogger(__name__)


@db_task(retries=3, retry_delay=60)
def send_notification_email(notification_id) -> None:
    notification = Notification.objects.select_related("recipient", "case").filter(pk=notification_id).first()
    if notification is None or not notification.recipient.email:
        return
    link = settings.SITE_URL.rstrip("/") + reverse("cases:detail", args=[notification.case_id])
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Téléexpertise : une demande attend votre action")
        body = _("Bonjour,\n\nUne demande de téléexpertise (%(reference)s) attend votre action : %(verb)s.\n\n"
                 "Ouvrez-la sur la plateforme : %(link)s\n\nCe message ne contient aucune donnée médicale.") % {
            "reference": notification.case.reference, "verb": notification.verb, "link": link}
    send_mail(subject, body, None, [notification.recipient.email])
    logger.info("notification e-mail sent", extra={"notification": str(notification.pk)})
