"""Webhooks: an organisation client's subscriptions to case events, and the log of every delivery.

A delivery carries no patient data (ids, reference, state and links): the integrator reads the case through the
API with its own token, which is audited like any read.
"""

import uuid

from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from teleexpertise.api.models import ApiClient

# One event per workflow action that moves a case or its report (cases/workflow.py), plus the draft's creation.
# `tag` and `edit_draft` are the team's own bookkeeping and send nothing (tests check every action is in one table).
ACTION_EVENTS = {
    "create": "case.created",
    "submit": "case.submitted",
    "claim": "case.claimed",
    "assign": "case.assigned",
    "acknowledge": "case.acknowledged",
    "accept": "case.accepted",
    "request_information": "case.information_requested",
    "provide_information": "case.information_provided",
    "decline": "case.declined",
    "transfer": "case.transferred",
    "answer": "case.answered",
    "amend_report": "case.report_amended",
    "close": "case.closed",
    "withdraw": "case.withdrawn",
}
SILENT_ACTIONS = frozenset({"tag", "edit_draft"})
EVENT_TYPES = tuple(ACTION_EVENTS.values())


class WebhookSubscription(models.Model):
    """Where an organisation client wants to be told of case events, and which ones.

    The secret signs every delivery (HMAC-SHA256); it is shown once, when made or renewed. It is kept in clear
    because signing needs it: the admin never shows it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="webhooks",
                               verbose_name=_("client API d'organisation"))
    url = models.CharField(_("adresse de réception"), max_length=500)  # checked by targets.url_problem
    events = models.JSONField(_("événements"), default=list)
    secret = models.CharField(max_length=64, editable=False)
    description = models.CharField(_("description"), max_length=200, blank=True)
    contact_email = models.EmailField(_("contact technique"), blank=True,
                                      help_text=_("Prévenu si l'abonnement est désactivé après des échecs."))
    active = models.BooleanField(_("actif"), default=True)
    consecutive_failures = models.PositiveIntegerField(_("échecs consécutifs"), default=0)
    disabled_at = models.DateTimeField(_("désactivé le"), null=True, blank=True)
    disabled_reason = models.CharField(_("motif de désactivation"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)
    updated_at = models.DateTimeField(_("modifié le"), default=timezone.now)

    class Meta:
        verbose_name = _("abonnement webhook")
        verbose_name_plural = _("abonnements webhook")
        ordering = ["created_at"]

    def __str__(self) -> str:
        return f"{self.url} ({self.client.name})"


class WebhookDelivery(models.Model):
    """One event sent to one subscription: its payload and the outcome of its attempts.

    The id is the `X-Teleexpertise-Delivery` header, the same on every automatic attempt; a manual redelivery is a
    new row (`redelivery_of`) of the same event.
    """

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        DELIVERED = "delivered", _("Remis")
        FAILED = "failed", _("Échec")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    subscription = models.ForeignKey(WebhookSubscription, on_delete=models.CASCADE, related_name="deliveries",
                                     verbose_name=_("abonnement"))
    event_id = models.UUIDField(_("événement"), db_index=True)
    event_type = models.CharField(_("type d'événement"), max_length=40)
    case_id = models.UUIDField(_("demande"), db_index=True)
    payload = models.JSONField(_("contenu"))
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(_("tentatives"), default=0)
    last_attempt_at = models.DateTimeField(_("dernière tentative"), null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(_("dernier code HTTP"), null=True, blank=True)
    last_error = models.TextField(_("dernière erreur"), blank=True)
    next_attempt_at = models.DateTimeField(_("prochaine tentative"), null=True, blank=True)
    sending_until = models.DateTimeField(null=True, blank=True, editable=False)  # the lease of the job sending it
    delivered_at = models.DateTimeField(_("remis le"), null=True, blank=True)
    redelivery_of = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                      related_name="redeliveries", verbose_name=_("renvoi de"))
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)

    class Meta:
        verbose_name = _("envoi webhook")
        verbose_name_plural = _("envois webhook")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_delivery_due"),
            models.Index(fields=["subscription", "-created_at"], name="webhook_delivery_log"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.subscription.url}"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING
