"""Personal tokens, organisation clients and their access tokens: made, checked and revoked here only.

A secret is 256 random bits shown once; the database keeps its SHA-256, which is also how a presented token is
found (one indexed lookup). Every creation and revocation is audited.
"""

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.api import token_cache
from teleexpertise.api.models import PERSONAL_SCOPES, SCOPES, ApiClient, ApiToken
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases.services import actor_for
from teleexpertise.cases.workflow import Actor
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.directory.models import Professional

PERSONAL_PREFIX = "tep_"
CLIENT_PREFIX = "tec_"
_LAST_USED_EVERY = timedelta(minutes=1)  # last_used_at is a hint: one write a minute, not one a call


class ClientAuthError(Exception):
    """Wrong client id or secret, revoked client, or a scope it was not granted (OAuth2 `invalid_client`...)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class CallerError(Exception):
    """A valid client token whose call names no professional it may act for."""


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def clean_scopes(scopes, *, allowed=None) -> list[str]:
    allowed = set(SCOPES) if allowed is None else set(allowed)
    scopes = sorted(set(scopes or ()))
    if not scopes:
        raise ValidationError(_("Choisissez au moins une portée."), code="scopes")
    unknown = [s for s in scopes if s not in allowed]
    if unknown:
        raise ValidationError(_("Portée inconnue ou non accordée : %(scopes)s.") % {"scopes": ", ".join(unknown)},
                              code="scopes")
    return scopes


# --- Personal tokens ------------------------------------------------------------------------------------

def personal_token_create(*, user, name: str, scopes, days: int | None = None, ip=None) -> tuple[ApiToken, str]:
    """A token for the user's own software; returns the row and the secret, which is never shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationError(_("Donnez un nom au jeton (le logiciel qui l'utilisera)."), code="name")
    scopes = clean_scopes(scopes, allowed=PERSONAL_SCOPES)
    secret = _new_secret(PERSONAL_PREFIX)
    expires_at = timezone.now() + timedelta(days=days) if days else None
    with transaction.atomic():
        token = ApiToken.objects.create(kind=ApiToken.Kind.PERSONAL, user=user, name=name[:120],
                                        prefix=secret[:12], token_hash=hash_secret(secret), scopes=scopes,
                                        expires_at=expires_at)
        audit_log(actor=user, action="api_token.create", kind=AuditEvent.Kind.CREATE, obj=token, ip=ip,
                  summary=f"{token.name} ({', '.join(scopes)})")
    return token, secret


def personal_token_revoke(*, user, token_id, ip=None) -> ApiToken:
    """Revoke one of the user's own tokens (404 for anyone else's)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(pk=token_id, user=user).first()
        if token is None:
            raise Http404
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
            audit_log(actor=user, action="api_token.revoke", kind=AuditEvent.Kind.UPDATE, obj=token, ip=ip,
                      summary=token.name)
    return token


def personal_tokens_of(user):
    return ApiToken.objects.filter(user=user, kind=ApiToken.Kind.PERSONAL).order_by("-created_at")


# --- Organisation clients (OAuth2 client credentials) ---------------------------------------------------

def api_client_create(*, organisation, name: str, scopes) -> tuple[ApiClient, str]:
    """Made by an operator (manage.py api_client_create); returns the client and its secret, shown once."""
    secret = _new_secret("")
    with transaction.atomic():
        client = ApiClient.objects.create(organisation=organisation, name=name, scopes=clean_scopes(scopes),
                                          client_id="tcl_" + secrets.token_hex(12), secret_hash=hash_secret(secret))
        audit_log(actor=None, action="api_client.create", kind=AuditEvent.Kind.CREATE, obj=client,
                  summary=f"{client} ({', '.join(client.scopes)})")
    return client, secret


def api_client_revoke(*, client_id: str) -> ApiClient:
    """Revoke a client and every access token it holds."""
    now = timezone.now()
    with transaction.atomic():
        client = ApiClient.objects.select_for_update().get(client_id=client_id)
        if client.revoked_at is None:
            client.revoked_at = now
            client.save(update_fields=["revoked_at"])
        ApiToken.objects.filter(client=client, revoked_at__isnull=True).update(revoked_at=now)
        token_cache.credentials_changed()  # update() sends no signal
        audit_log(actor=None, action="api_client.revoke", kind=AuditEvent.Kind.UPDATE, obj=client, summary=str(client))
    return client


def client_token_issue(*, client_id: str, client_secret: str, scope: str = "", ip=None) -> tuple[ApiToken, str]:
    """The client credentials grant: a short-lived access token for a client that proves its secret."""
    client = ApiClient.objects.filter(client_id=client_id or "").first()
    presented = hash_secret(client_secret or "")
    if client is None or not hmac.compare_digest(client.secret_hash, presented) or client.revoked_at is not None:
        raise ClientAuthError("invalid_client", _("Identifiant ou secret du client incorrect, ou client révoqué."))
    try:
        scopes = clean_scopes(scope.split() if scope else client.scopes, allowed=client.scopes)
    except ValidationError as exc:
        raise ClientAuthError("invalid_scope", exc.messages[0]) from None
    secret = _new_secret(CLIENT_PREFIX)
    with transaction.atomic():
        token = ApiToken.objects.create(
            kind=ApiToken.Kind.CLIENT, client=client, name=client.name[:120], prefix=secret[:12],
            token_hash=hash_secret(secret), scopes=scopes,
            expires_at=timezone.now() + timedelta(seconds=settings.API_CLIENT_TOKEN_SECONDS))
        audit_log(actor=None, action="api_client.token", kind=AuditEvent.Kind.EXECUTE, obj=client, ip=ip,
                  summary=f"{client} ({', '.join(scopes)})")
    return token, secret


# --- Checking a presented token -------------------------------------------------------------------------

@dataclass
class Caller:
    """Who calls: the token, the user it acts as (for selectors and audit) and that user's workflow actor; both
    None for a client's calls about itself (its webhooks), which act for no professional."""

    token: ApiToken
    user: object
    actor: Actor | None

    @property
    def scopes(self) -> set[str]:
        return set(self.token.scopes)

    def __str__(self) -> str:  # the rate limit's key: one budget per token
        return str(self.token.pk)


def _valid_token(secret: str) -> ApiToken | None:
    """A presented token that is unrevoked, unexpired, and whose user is active or client unrevoked; its last
    use is recorded (once a minute)."""
    token_hash = hash_secret(secret or "")
    epoch = token_cache.current_epoch()
    token = token_cache.get(token_hash, epoch)
    kept = token is not None
    if token is None:
        token = _token_with_owner(token_hash)
    if token is None or not _usable(token):  # expiry is checked on every call, kept or not
        return None
    if _touch(token) or not kept:
        token_cache.keep(token_hash, epoch, token)
    return token


# The professional is read with the token (one query instead of three): `actor_for` then finds it on the user.
# Compiled once: a token not yet kept by this process (each process keeps its own) cost ~3 ms of building and
# compiling this six-table join under load, a tenth of a claim's CPU while the processes' caches filled.
_token_by_hash = CompiledQuery(
    lambda token_hash: ApiToken.objects.select_related(
        "user__professional__profession", "user__professional__specialty", "user__professional__organisation",
        "client__organisation").filter(token_hash=token_hash),
    token_hash=str)


def _token_with_owner(token_hash: str) -> ApiToken | None:
    return _token_by_hash.first(token_hash=token_hash)


def _usable(token: ApiToken) -> bool:
    if not token.is_active:
        return False
    return token.client.revoked_at is None if token.kind == ApiToken.Kind.CLIENT else token.user.is_active


def token_authenticate(secret: str, *, on_behalf_of: str = "") -> Caller | None:
    """The caller of a valid, unrevoked, unexpired token; None otherwise. Client tokens must name, in
    `on_behalf_of`, the RPPS or ADELI number of a professional of the client's organisation."""
    token = _valid_token(secret)
    if token is None:
        return None
    user = _acting_user(token.client, on_behalf_of) if token.kind == ApiToken.Kind.CLIENT else token.user
    return Caller(token=token, user=user, actor=actor_for(user))


def client_token_authenticate(secret: str) -> Caller | None:
    """The caller of a valid token for calls about an organisation client itself (its webhooks): they act for no
    professional, so no X-On-Behalf-Of. Personal tokens pass too, and are then refused by scope (403), which
    says more than a 401 would."""
    token = _valid_token(secret)
    if token is None:
        return None
    return Caller(token=token, user=None, actor=None)


def _acting_user(client: ApiClient, national_id: str):
    national_id = (national_id or "").strip()
    if not national_id:
        raise CallerError(_("Un jeton de client d'organisation agit pour un professionnel : indiquez son numéro "
                            "RPPS ou ADELI dans l'en-tête X-On-Behalf-Of."))
    professional = (Professional.objects.select_related("user")
                    .filter(Q(rpps=national_id) | Q(adeli=national_id), organisation_id=client.organisation_id,
                            user__isnull=False, user__is_active=True).first())
    if professional is None:
        raise CallerError(_("Aucun professionnel de votre organisation n'a ce numéro RPPS ou ADELI (ou il n'a "
                            "pas de compte actif)."))
    return professional.user


def _touch(token: ApiToken) -> bool:
    """Record the token's use if the last record is over a minute old; True when it wrote."""
    now = timezone.now()
    if token.last_used_at is not None and now - token.last_used_at <= _LAST_USED_EVERY:
        return False
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    token.last_used_at = now
    return True
