"""Distribution of signed reports: who receives a version, the message sent, and the bookkeeping of each sending.

`deliveries_create` runs once the PDF is stored (from `tasks._after_pdf_ready`); the job
`tasks.send_report_delivery` then `claim`s a row, `send`s it and records the outcome here. A 5xx answer about
the recipient or the message is a refusal that no automatic retry will cure; any other error (relay down,
timeout, 4xx, bad credentials) is retried by huey, then by the periodic sweep (`due_for_retry`). The report and
its PDF are only read here, never changed, so no failure can lose them.
"""

import logging
import smtplib
from dataclasses import dataclass
from datetime import timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.utils import DNS_NAME
from django.db import transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.directory.models import Professional
from teleexpertise.documents import storage
from teleexpertise.reports import cda, xdm
from teleexpertise.reports.models import ReportDelivery, ReportVersion

logger = logging.getLogger(__name__)
D = ReportDelivery
XDM_FILENAME = "IHE_XDM.ZIP"  # the name MSSanté clients look for (ANS, "DMP-compatible" messages)


@dataclass(frozen=True)
class Recipient:
    professional: Professional
    role: str
    address: str
    channel: str


def address_of(professional: Professional) -> tuple[str, str] | None:
    """(address, channel): the MSSanté address when known (it is the secure route), else the account's e-mail."""
    if professional.mssante_email:
        return professional.mssante_email, D.Channel.MSSANTE
    email = professional.user.email if professional.user_id else ""
    return (email, D.Channel.EMAIL) if email else None


def recipients_for(case) -> list[Recipient]:
    """The requester and the patient's treating doctor (once if they are the same person or share an address)."""
    recipients, seen = [], set()
    for role, professional in ((D.Role.REQUESTER, case.requester),
                               (D.Role.TREATING_DOCTOR, case.patient.treating_doctor)):
        found = address_of(professional) if professional is not None else None
        if found is None or professional.pk in seen or found[0].lower() in seen:
            continue
        seen.update({professional.pk, found[0].lower()})
        recipients.append(Recipient(professional, role, *found))
    return recipients


def _summary(delivery: ReportDelivery) -> str:
    return _("Version %(n)s à %(name)s (%(role)s, %(channel)s)") % {
        "n": delivery.version.number, "name": delivery.recipient.display_name,
        "role": delivery.get_role_display(), "channel": delivery.get_channel_display()}


def deliveries_create(version: ReportVersion) -> list[ReportDelivery]:
    """The delivery rows of a version whose PDF is stored; returns those created now (idempotent)."""
    created = []
    with transaction.atomic():
        for recipient in recipients_for(version.case):
            delivery, new = ReportDelivery.objects.get_or_create(
                version=version, address=recipient.address,
                defaults={"recipient": recipient.professional, "role": recipient.role, "channel": recipient.channel})
            if new:
                audit_log(actor=None, action="report.delivery_queued", kind=AuditEvent.Kind.CREATE, obj=delivery,
                          case=version.case, summary=_summary(delivery))
                created.append(delivery)
    return created


# --- The message -------------------------------------------------------------------------------------------

def pdf_filename(version: ReportVersion) -> str:
    return f"compte-rendu-{version.case.reference}-v{version.number}.pdf"


def _message_id(delivery: ReportDelivery) -> str:
    """The same Message-ID on every attempt, so a copy sent twice after a crash is recognised as one message."""
    domain = parseaddr(settings.DEFAULT_FROM_EMAIL)[1].rpartition("@")[2] or str(DNS_NAME)
    return f"<report-delivery.{delivery.pk}@{domain}>"


def _body(delivery: ReportDelivery) -> str:
    """Who signed, which case and where to read it: the clinical content travels only in the attachments."""
    version = delivery.version
    link = settings.SITE_URL.rstrip("/") + reverse("cases:detail", args=[version.case_id])
    paragraphs = [_("Bonjour,"), _(
        "%(signer)s a signé le %(signed_at)s le compte-rendu de la demande de téléexpertise %(reference)s "
        "(version %(n)s). Il est joint à ce message au format PDF.") % {
        "signer": version.author.display_name, "reference": version.case.reference, "n": version.number,
        "signed_at": date_format(timezone.localtime(version.signed_at), "d/m/Y H:i")}]
    if version.number > 1:
        paragraphs.append(_("Cette version corrige et remplace la version %(n)s.") % {"n": version.number - 1})
    if delivery.channel == D.Channel.MSSANTE:
        paragraphs.append(_("Le document CDA (%(name)s) est joint pour son intégration au dossier du patient.")
                          % {"name": XDM_FILENAME})
    paragraphs += [_("Demande consultable sur la plateforme : %(link)s") % {"link": link},
                   _("Message envoyé automatiquement, merci de ne pas y répondre.")]
    return "\n\n".join(paragraphs) + "\n"


def build_message(delivery: ReportDelivery, pdf: bytes) -> EmailMessage:
    version = delivery.version
    with translation.override(settings.LANGUAGE_CODE):
        subject = _("Compte-rendu de téléexpertise %(reference)s (version %(n)s)") % {
            "reference": version.case.reference, "n": version.number}
        body = _body(delivery)
    message = EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [delivery.address], headers={
        "Message-ID": _message_id(delivery), "Auto-Submitted": "auto-generated"})
    message.attach(pdf_filename(version), pdf, "application/pdf")
    if delivery.channel == D.Channel.MSSANTE:
        message.attach(XDM_FILENAME, xdm.build_xdm_zip(version, cda.build_cda(version, pdf)), "application/zip")
    return message


def send(delivery: ReportDelivery) -> str:
    """Send one delivery through the configured e-mail backend; returns its Message-ID. Raises on failure."""
    rendered = delivery.version.rendered
    pdf = b"".join(storage.read_all_verified(storage.blob_of(rendered)))
    message = build_message(delivery, pdf)
    message.send(fail_silently=False)
    return message.extra_headers["Message-ID"]


# --- Bookkeeping of the job ---------------------------------------------------------------------------------

def _lease() -> timedelta:
    # Several SMTP operations, each bounded by EMAIL_TIMEOUT, happen in one sending.
    return timedelta(seconds=10 * (settings.EMAIL_TIMEOUT or 30))


def _sendable() -> Q:
    return Q(status=D.Status.QUEUED) | Q(status=D.Status.FAILED, permanent_error=False)


def _free(now) -> Q:
    return Q(sending_until__isnull=True) | Q(sending_until__lt=now)


def claim(delivery_id) -> ReportDelivery | None:
    """Take the lease on a delivery still to send (and count the attempt); None if it is sent, refused or held."""
    now = timezone.now()
    taken = ReportDelivery.objects.filter(_sendable(), _free(now), pk=delivery_id).update(
        sending_until=now + _lease(), attempts=F("attempts") + 1, last_attempt_at=now)
    if not taken:
        return None
    return ReportDelivery.objects.select_related(
        "recipient", "version__rendered", "version__author", "version__case").get(pk=delivery_id)


def record_sent(delivery: ReportDelivery, message_id: str) -> None:
    with transaction.atomic():
        done = ReportDelivery.objects.filter(pk=delivery.pk).exclude(status=D.Status.SENT).update(
            status=D.Status.SENT, sent_at=timezone.now(), message_id=message_id, last_error="",
            permanent_error=False, sending_until=None)
        if done:
            audit_log(actor=None, action="report.delivery_sent", kind=AuditEvent.Kind.EXECUTE, obj=delivery,
                      case=delivery.version.case, summary=_summary(delivery))


def is_permanent(exc: Exception) -> bool:
    """A refusal of this recipient or of this message (5xx); the relay's own problems are not."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _message in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


def describe_error(exc: Exception) -> str:
    def text(raw) -> str:
        return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        detail = "; ".join(f"{address}: {code} {text(msg)}" for address, (code, msg) in exc.recipients.items())
    elif isinstance(exc, smtplib.SMTPResponseException):
        detail = f"{exc.smtp_code} {text(exc.smtp_error)}"
    else:
        detail = str(exc) or repr(exc)
    return f"{type(exc).__name__}: {detail}"[:1000]


def record_failure(delivery: ReportDelivery, exc: Exception, *, final: bool) -> None:
    """Keep the error; a refusal or the last attempt of a job marks the delivery failed (audited once)."""
    permanent = is_permanent(exc)
    with transaction.atomic():
        row = ReportDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if row is None or row.is_sent:
            return
        becomes_failed = (final or permanent) and not row.is_failed
        row.last_error, row.permanent_error, row.sending_until = describe_error(exc), permanent, None
        if final or permanent:
            row.status = D.Status.FAILED
        row.save(update_fields=["status", "last_error", "permanent_error", "sending_until"])
        if becomes_failed:
            audit_log(actor=None, action="report.delivery_failed", kind=AuditEvent.Kind.EXECUTE, obj=row,
                      case=delivery.version.case, summary=f"{_summary(delivery)} : {row.last_error}")


def due_for_retry(limit: int = 500) -> list:
    """Deliveries the sweep sends again: failed (not refused) or queued, with no attempt for a while, so that a
    job lost with its worker, or failures of a relay that was down, are tried again without a duplicate storm."""
    now = timezone.now()
    quiet = now - timedelta(seconds=2 * settings.REPORT_DELIVERY_RETRY_DELAY)
    idle = Q(last_attempt_at__lt=quiet) | Q(last_attempt_at__isnull=True, created_at__lt=quiet)
    return list(ReportDelivery.objects.filter(_sendable(), _free(now), idle)
                .order_by("created_at").values_list("pk", flat=True)[:limit])
