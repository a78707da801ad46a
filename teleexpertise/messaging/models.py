"""The case thread, what each user has read of it, and in-app notifications."""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Professional


class Message(models.Model):
    class Kind(models.TextChoices):
        MESSAGE = "message", _("Message")
        INFORMATION_REQUEST = "information_request", _("Demande de compléments")
        INFORMATION_RESPONSE = "information_response", _("Réponse aux compléments")
        DECISION = "decision", _("Décision de l'expert")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="messages")
    author = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=24, choices=Kind.choices, default=Kind.MESSAGE)
    body = models.TextField(_("message"))
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"], name="message_case_time")]

    def __str__(self) -> str:
        return f"{self.case_id} {self.created_at:%Y-%m-%d %H:%M}"


class ReadMarker(models.Model):
    """How far a user has read a case's thread; unread counts are the messages after it."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    read_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["case", "user"], name="one_read_marker")]

    def __str__(self) -> str:
        return f"{self.user_id} read {self.case_id} at {self.read_at:%Y-%m-%d %H:%M}"


class Notification(models.Model):
    """Something a user must act on; the e-mail sent for it carries no clinical content."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    verb = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["recipient", "read_at"], name="notification_unread")]

    def __str__(self) -> str:
        return f"{self.recipient_id}: {self.verb}"
