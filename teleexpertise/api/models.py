"""Credentials of software calling the REST API: personal tokens and organisation clients.

Only the SHA-256 of a secret is stored (the token is 256 random bits, so a plain hash is enough and lets a
token be found by one indexed lookup); the secret itself is shown once, when it is made.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy

from teleexpertise.directory.models import Organisation

SCOPES = {
    "cases:read": gettext_lazy("Lire les demandes, leurs échanges, documents et comptes-rendus"),
    "cases:write": gettext_lazy("Créer et faire avancer les demandes (documents, messages, décisions, clôture)"),
    "reports:write": gettext_lazy("Rédiger et signer les comptes-rendus"),
    "webhooks:manage": gettext_lazy("Gérer les webhooks du logiciel et lire leur journal d'envois"),
}
# Webhooks are an organisation's: a personal token cannot hold this scope.
CLIENT_ONLY_SCOPES = frozenset({"webhooks:manage"})
PERSONAL_SCOPES = {scope: label for scope, label in SCOPES.items() if scope not in CLIENT_ONLY_SCOPES}


class ApiClient(models.Model):
    """An organisation's software (a hospital record, a practice software) using OAuth2 client credentials.

    Its access tokens act for one professional of the organisation at a time, named in each call: the
    establishment authenticates its own users, as in the DMP's indirect authentication.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organisation = models.ForeignKey(Organisation, on_delete=models.PROTECT, related_name="api_clients",
                                     verbose_name=gettext_lazy("organisation"))
    name = models.CharField(gettext_lazy("nom"), max_length=120)
    client_id = models.CharField(max_length=40, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(gettext_lazy("portées"), default=list)
    created_at = models.DateTimeField(gettext_lazy("créé le"), default=timezone.now)
    revoked_at = models.DateTimeField(gettext_lazy("révoqué le"), null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("client API d'organisation")
        verbose_name_plural = gettext_lazy("clients API d'organisation")

    def __str__(self) -> str:
        return f"{self.name} ({self.organisation})"


class ApiToken(models.Model):
    """A bearer token: a user's personal token, or an access token issued to an organisation client."""

    class Kind(models.TextChoices):
        PERSONAL = "personal", gettext_lazy("Jeton personnel")
        CLIENT = "client", gettext_lazy("Jeton d'accès d'un client d'organisation")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=8, choices=Kind.choices)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True,
                             related_name="api_tokens")
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, null=True, blank=True, related_name="tokens")
    name = models.CharField(gettext_lazy("nom"), max_length=120)
    prefix = models.CharField(max_length=12)  # shown in lists so that a user can tell their tokens apart
    token_hash = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(gettext_lazy("portées"), default=list)
    created_at = models.DateTimeField(gettext_lazy("créé le"), default=timezone.now)
    expires_at = models.DateTimeField(gettext_lazy("expire le"), null=True, blank=True)
    last_used_at = models.DateTimeField(gettext_lazy("dernière utilisation"), null=True, blank=True)
    revoked_at = models.DateTimeField(gettext_lazy("révoqué le"), null=True, blank=True)

    class Meta:
        verbose_name = gettext_lazy("jeton API")
        verbose_name_plural = gettext_lazy("jetons API")
        constraints = [
            models.CheckConstraint(
                name="api_token_owner_matches_kind",
                condition=(models.Q(kind="personal", user__isnull=False, client__isnull=True)
                           | models.Q(kind="client", client__isnull=False, user__isnull=True)),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > timezone.now())
