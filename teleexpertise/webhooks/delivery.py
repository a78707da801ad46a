"""Sending one webhook delivery: the signed POST, and the bookkeeping of its attempts.

`attempt(delivery_id, now=)` takes a short lease on a due delivery (a conditional UPDATE that also counts the
attempt, so two jobs never send one delivery at once), POSTs it and records the outcome: a 2xx answer delivers
it; anything else schedules the next attempt after the next of WEBHOOK_RETRY_DELAYS, and after the last one the
delivery is failed (audited). The periodic sweep (`due_ids`) picks up every due delivery, which covers both the
scheduled retries and a job lost with its worker.
"""

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases.models import Case
from teleexpertise.webhooks import targets
from teleexpertise.webhooks.models import WebhookDelivery, WebhookSubscription

logger = logging.getLogger(__name__)
D = WebhookDelivery.Status
USER_AGENT = "Teleexpertise-Webhooks/1"
_EXCERPT_BYTES = 500  # of the receiver's answer kept in the log when it refuses


# --- The request ---------------------------------------------------------------------------------------------

def body_bytes(payload: dict) -> bytes:
    """The JSON body, byte for byte the same on every attempt (keys sorted: the database may reorder them)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256, keyed by the subscription's secret, of "<timestamp>.<body>"."""
    return "sha256=" + hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def headers_for(delivery: WebhookDelivery, body: bytes, timestamp: int) -> dict:
    return {"Content-Type": "application/json", "User-Agent": USER_AGENT,
            "X-Teleexpertise-Event": delivery.event_type, "X-Teleexpertise-Delivery": str(delivery.pk),
            "X-Teleexpertise-Timestamp": str(timestamp),
            "X-Teleexpertise-Signature": sign(delivery.subscription.secret, timestamp, body)}


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """Connects to the address checked beforehand rather than asking the DNS again, so a name cannot resolve to
    a public address for the check and to a private one for the connection."""

    def __init__(self, host, port, *, address: str, timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPSConnection(_PinnedHTTPConnection):
    default_port = 443

    def connect(self):
        super().connect()
        # Verifies the certificate against the name in the URL, as any client would.
        self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=self.host)


def _excerpt(response) -> str:
    """The start of a refusal's body, read within the timeout whatever pace the receiver answers at."""
    deadline, chunks, size = time.monotonic() + settings.WEBHOOK_TIMEOUT, [], 0
    while size < _EXCERPT_BYTES and time.monotonic() < deadline:
        chunk = response.read1(_EXCERPT_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks).decode("utf-8", "replace").strip()


def post(url: str, body: bytes, headers: dict) -> tuple[int, str]:
    """POST once, without following redirects; returns the status and, for a non-2xx answer, its body's start."""
    parts = targets.split_target(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    address = targets.resolve(parts.hostname, port)
    connection_class = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
    connection = connection_class(parts.hostname, port, address=address, timeout=settings.WEBHOOK_TIMEOUT)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, "" if 200 <= response.status < 300 else _excerpt(response)
    finally:
        connection.close()


def describe_error(exc: Exception) -> str:
    if isinstance(exc, targets.TargetRefused):
        return str(exc)
    if isinstance(exc, TimeoutError):
        return _("Pas de réponse dans le délai (%(seconds)s s).") % {"seconds": settings.WEBHOOK_TIMEOUT}
    return f"{type(exc).__name__}: {exc}"[:1000]


# --- Bookkeeping -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    status: str
    disabled_subscription: WebhookSubscription | None = None  # set when this failure disabled it


def _lease() -> timedelta:
    # Connecting, sending and reading the answer are each bounded by the timeout.
    return timedelta(seconds=6 * settings.WEBHOOK_TIMEOUT)


def _due(now) -> Q:
    return (Q(status=D.PENDING, next_attempt_at__lte=now, subscription__active=True,
              subscription__client__revoked_at__isnull=True)
            & (Q(sending_until__isnull=True) | Q(sending_until__lt=now)))


def due_ids(*, now, limit: int = 500) -> list:
    """Deliveries whose next attempt is due and that no job is sending: what the sweep sends."""
    return list(WebhookDelivery.objects.filter(_due(now)).order_by("next_attempt_at")
                .values_list("pk", flat=True)[:limit])


def claim(delivery_id, *, now) -> WebhookDelivery | None:
    """Take the lease on a due delivery and count the attempt; None if it is not due, done, or being sent."""
    taken = WebhookDelivery.objects.filter(_due(now), pk=delivery_id).update(
        sending_until=now + _lease(), attempts=F("attempts") + 1, last_attempt_at=now)
    if not taken:
        return None
    return WebhookDelivery.objects.select_related("subscription__client").get(pk=delivery_id)


def summary(delivery: WebhookDelivery) -> str:
    return f"{delivery.event_type} {delivery.payload['case']['reference']} → {delivery.subscription.client.name} " \
           f"({delivery.subscription.url})"


def _case(delivery: WebhookDelivery):
    return Case.objects.only("patient_id").filter(pk=delivery.case_id).first()


def record_delivered(delivery: WebhookDelivery, status_code: int, *, now) -> None:
    with transaction.atomic():
        done = WebhookDelivery.objects.filter(pk=delivery.pk, status=D.PENDING).update(
            status=D.DELIVERED, delivered_at=now, last_status_code=status_code, last_error="", next_attempt_at=None,
            sending_until=None)
        if not done:
            return
        WebhookSubscription.objects.filter(pk=delivery.subscription_id, consecutive_failures__gt=0).update(
            consecutive_failures=0)
        audit_log(actor=None, action="webhook.delivered", kind=AuditEvent.Kind.EXECUTE, obj=delivery,
                  case=_case(delivery), summary=summary(delivery))


def record_failure(delivery: WebhookDelivery, *, status_code: int | None, error: str, now) -> Outcome:
    """Schedule the next attempt, or fail the delivery after the last one (and count it against the
    subscription, which is disabled after WEBHOOK_DISABLE_AFTER failed deliveries in a row)."""
    delays = settings.WEBHOOK_RETRY_DELAYS
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk, status=D.PENDING).first()
        if row is None:
            return Outcome(status="")
        row.last_status_code, row.last_error, row.sending_until = status_code, error[:1000], None
        final = row.attempts > len(delays)
        row.status = D.FAILED if final else D.PENDING
        row.next_attempt_at = None if final else now + timedelta(seconds=delays[row.attempts - 1])
        row.save(update_fields=["last_status_code", "last_error", "sending_until", "status", "next_attempt_at"])
        if not final:
            return Outcome(status=row.status)
        audit_log(actor=None, action="webhook.delivery_failed", kind=AuditEvent.Kind.EXECUTE, obj=row,
                  case=_case(row), summary=f"{summary(delivery)} : {row.last_error}")
        return Outcome(status=row.status, disabled_subscription=_count_failed_delivery(delivery.subscription_id, now))


def _count_failed_delivery(subscription_id, now) -> WebhookSubscription | None:
    subscription = WebhookSubscription.objects.select_for_update().select_related("client").get(pk=subscription_id)
    subscription.consecutive_failures += 1
    fields = ["consecutive_failures"]
    disabling = subscription.active and subscription.consecutive_failures >= settings.WEBHOOK_DISABLE_AFTER
    if disabling:
        subscription.active, subscription.disabled_at, subscription.updated_at = False, now, now
        subscription.disabled_reason = _("Désactivé automatiquement après %(n)s envois en échec consécutifs.") % {
            "n": subscription.consecutive_failures}
        fields += ["active", "disabled_at", "disabled_reason", "updated_at"]
    subscription.save(update_fields=fields)
    if not disabling:
        return None
    audit_log(actor=None, action="webhook.disabled", kind=AuditEvent.Kind.UPDATE, obj=subscription,
              summary=f"{subscription.client.name} ({subscription.url}) : {subscription.disabled_reason}")
    logger.warning("webhook subscription disabled", extra={"subscription": str(subscription.pk),
                                                           "failures": subscription.consecutive_failures})
    return subscription


def attempt(delivery_id, *, now) -> Outcome | None:
    """One attempt at a due delivery (None when it is not due, done, or another job holds it)."""
    delivery = claim(delivery_id, now=now)
    if delivery is None:
        return None
    body, timestamp = body_bytes(delivery.payload), int(time.time())
    try:
        status_code, excerpt = post(delivery.subscription.url, body, headers_for(delivery, body, timestamp))
    except (OSError, http.client.HTTPException, targets.TargetRefused) as exc:
        status_code, error = None, describe_error(exc)
    else:
        if 200 <= status_code < 300:
            record_delivered(delivery, status_code, now=now)
            return Outcome(status=D.DELIVERED)
        error = f"HTTP {status_code}" + (f" : {excerpt}" if excerpt else "")
    logger.warning("webhook delivery failed", extra={"delivery": str(delivery.pk), "attempt": delivery.attempts,
                                                     "status_code": status_code, "error": error[:200]})
    return record_failure(delivery, status_code=status_code, error=error, now=now)
