"""The patient's access to the signed report: a personal link, the birth date as second factor, every step audited.

The requester's side (create, revoke) follows the usual service shape. The patient's side has no user account:
it is reached only through a token, whose SHA-256 finds the link; the token itself is never stored nor logged.
Patient-side audit events name the link, not a user ("patient via lien <id>").
"""

import hashlib
import logging
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.cases import workflow
from teleexpertise.cases.models import Case
from teleexpertise.cases.services import lock_case
from teleexpertise.cases.workflow import Actor, WorkflowError
from teleexpertise.documents import storage
from teleexpertise.reports.models import PatientAccessLink, ReportVersion
from teleexpertise.reports.selectors import latest_signed_version
from teleexpertise.reports.senders import patient_link_sender

logger = logging.getLogger(__name__)
L = PatientAccessLink
READABLE_STATES = (Case.State.ANSWERED, Case.State.CLOSED)
_MOBILE = re.compile(r"^(?:\+33|0033|0)([67]\d{8})$")
_IP_WINDOW_SECONDS = 3600


class PatientLinkUnavailable(Exception):
    """The token leads nowhere usable: reason is unknown, expired, revoked or locked."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class WrongBirthDate(Exception):
    def __init__(self, remaining: int):
        super().__init__(remaining)
        self.remaining = remaining


class PatientLinkSendError(Exception):
    """The sender could not deliver the message; the link was disabled. The message is for the requester."""


@dataclass(frozen=True)
class PatientViaLink:
    """The audit actor of the patient's side: no account (no id), a label that names the link it came through."""

    link_id: object
    pk = None

    def get_full_name(self) -> str:
        return "patient via lien"

    @property
    def email(self) -> str:
        return str(self.link_id) if self.link_id else "inconnu"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def patient_link_url(token: str) -> str:
    return settings.SITE_URL.rstrip("/") + reverse("patient:link", args=[token])


def normalise_recipient(channel: str, raw: str, channels=("email", "sms")) -> str:
    """An e-mail address, or a French mobile number as +336…/+337…; ValidationError in French otherwise."""
    if channel not in channels:
        raise ValidationError({"channel": _("Choisissez un moyen d'envoi proposé.")})
    value = (raw or "").strip()
    if channel == L.Channel.EMAIL:
        try:
            validate_email(value)
        except ValidationError:
            raise ValidationError({"recipient": _("Saisissez une adresse électronique valide, par exemple "
                                                  "prenom.nom@exemple.fr.")}) from None
        return value
    match = _MOBILE.match(re.sub(r"[\s.\-()]", "", value))
    if match is None:
        raise ValidationError({"recipient": _("Saisissez un numéro de mobile français (06 ou 07), par exemple "
                                              "06 12 34 56 78 ou +33 6 12 34 56 78.")})
    return "+33" + match.group(1)


# --- The requester's side ----------------------------------------------------------------------------------

def _check_requester(actor: Actor, case: Case) -> None:
    if workflow.REQUESTER not in workflow.roles_for(actor, case):
        raise WorkflowError(_("Seul le professionnel requérant peut donner ou retirer au patient l'accès à son "
                              "compte-rendu."))


def check_may_give_access(actor: Actor, case: Case) -> None:
    """WorkflowError unless this actor may send the patient a link now: the requester, once the report is signed."""
    _check_requester(actor, case)
    if case.state not in READABLE_STATES or latest_signed_version(case) is None:
        raise WorkflowError(_("Le patient peut recevoir un accès une fois le compte-rendu signé."))


def patient_link_create(*, actor: Actor, case_id, channel: str, recipient: str,
                        ip=None) -> tuple[PatientAccessLink, str]:
    """Create a link for the patient and send it; returns the link and its URL (the only place the token lives).

    The message is sent once the link is committed. The send is not a background job on purpose: the job's
    arguments would keep the token in clear in the queue (and through its retries).
    """
    sender = patient_link_sender()
    with transaction.atomic():
        case = lock_case(case_id)
        check_may_give_access(actor, case)
        recipient = normalise_recipient(channel, recipient, sender.channels)
        token, now = secrets.token_urlsafe(32), timezone.now()
        link = L.objects.create(case=case, created_by=actor.professional, channel=channel, recipient=recipient,
                                token_hash=hash_token(token), created_at=now,
                                expires_at=now + timedelta(days=settings.PATIENT_LINK_DAYS))
        audit_log(actor=actor.user, action="patient_link.create", kind=AuditEvent.Kind.CREATE, obj=link, case=case,
                  ip=ip, summary=_("Accès patient envoyé par %(channel)s à %(to)s, valable jusqu'au %(until)s") % {
                      "channel": link.get_channel_display(), "to": link.recipient_display,
                      "until": _paris(link.expires_at)})
    url = patient_link_url(token)
    _deliver(sender, actor, link, url, ip)
    return link, url


def _paris(value) -> str:
    return date_format(timezone.localtime(value), "d/m/Y H:i")


def _deliver(sender, actor: Actor, link: PatientAccessLink, url: str, ip) -> None:
    with translation.override(settings.LANGUAGE_CODE):
        values = {"doctor": link.created_by.display_name, "url": url, "until": _paris(link.expires_at)}
        try:
            if link.channel == L.Channel.SMS:
                sender.send_sms(to=link.recipient, body=_(
                    "Téléexpertise : %(doctor)s vous donne accès à votre compte-rendu : %(url)s (lien personnel "
                    "valable jusqu'au %(until)s ; votre date de naissance vous sera demandée).") % values)
            else:
                sender.send_email(to=link.recipient, subject=_("Votre compte-rendu de téléexpertise"), body=_(
                    "Bonjour,\n\n%(doctor)s a demandé pour vous l'avis d'un spécialiste (téléexpertise). Sa réponse "
                    "est disponible.\n\nPour la lire, ouvrez ce lien personnel : %(url)s\n\nVotre date de naissance "
                    "vous sera demandée. Le lien est valable jusqu'au %(until)s. Ne le transférez pas.\n\n"
                    "Si vous n'attendiez pas ce message, ignorez-le et prévenez votre médecin.") % values)
        except Exception as exc:
            _send_failed(actor, link, exc, ip)
            raise PatientLinkSendError(_("Le message n'a pas pu être envoyé au patient : vérifiez le destinataire "
                                         "ou réessayez plus tard.")) from exc
    L.objects.filter(pk=link.pk).update(sent_at=timezone.now())


def _send_failed(actor: Actor, link: PatientAccessLink, exc: Exception, ip) -> None:
    # The exception text may quote the message, hence the link: only its type is logged.
    logger.error("patient link not sent", extra={"link": str(link.pk), "channel": link.channel,
                                                 "error": type(exc).__name__})
    with transaction.atomic():
        L.objects.filter(pk=link.pk).update(revoked_at=timezone.now())
        audit_log(actor=actor.user, action="patient_link.send_failed", kind=AuditEvent.Kind.EXECUTE, obj=link,
                  case=link.case, ip=ip, summary=type(exc).__name__)


def patient_link_revoke(*, actor: Actor, link_id, ip=None) -> PatientAccessLink:
    """Disable a link now (idempotent: revoking twice writes once)."""
    case_id = L.objects.filter(pk=link_id).values_list("case_id", flat=True).first()
    if case_id is None:
        raise WorkflowError(_("Lien d'accès introuvable."))
    with transaction.atomic():
        case = lock_case(case_id)
        _check_requester(actor, case)
        link = L.objects.select_for_update().get(pk=link_id)
        if link.revoked_at is None:
            link.revoked_at, link.revoked_by = timezone.now(), actor.professional
            link.save(update_fields=["revoked_at", "revoked_by"])
            audit_log(actor=actor.user, action="patient_link.revoke", kind=AuditEvent.Kind.EXECUTE, obj=link,
                      case=case, ip=ip, summary=_("Accès patient révoqué (%(to)s)") % {"to": link.recipient_display})
    return link


# --- The patient's side ------------------------------------------------------------------------------------

def ip_refused(ip) -> bool:
    """Too many failures (unknown links, wrong birth dates) from this address in the last hour."""
    return bool(ip) and cache.get(_ip_key(ip), 0) >= settings.PATIENT_LINK_IP_FAILURES


def _ip_key(ip) -> str:
    return f"patient-link-failures:{ip}"


def _note_ip_failure(ip) -> None:
    if not ip:
        return
    key = _ip_key(ip)
    if not cache.add(key, 1, timeout=_IP_WINDOW_SECONDS):
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=_IP_WINDOW_SECONDS)


def _find(token: str, *, lock: bool = False) -> PatientAccessLink | None:
    queryset = L.objects.select_related("case__patient")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    return queryset.filter(token_hash=hash_token(token)).first()


_REFUSALS = {L.Status.REVOKED: "revoked", L.Status.SEND_FAILED: "revoked", L.Status.EXPIRED: "expired",
             L.Status.LOCKED: "locked"}


def _refusal(link: PatientAccessLink | None) -> str | None:
    return "unknown" if link is None else _REFUSALS.get(link.status)


def _audit(link: PatientAccessLink | None, action: str, kind: str, what: str, ip, obj=None) -> None:
    summary = f"patient via lien {link.pk if link else '(inconnu)'} : {what}"
    audit_log(actor=PatientViaLink(link.pk if link else None), action=action, kind=kind, obj=obj or link,
              case=link.case if link else None, ip=ip, summary=summary)


def _refuse(link: PatientAccessLink | None, reason: str, ip):
    """Audit the refusal (outside any transaction that could roll it back) and raise it."""
    if link is None:
        _audit(None, "patient_link.unknown", AuditEvent.Kind.EXECUTE, "lien inconnu", ip)
        _note_ip_failure(ip)
    else:
        _audit(link, "patient_link.refused", AuditEvent.Kind.EXECUTE, f"accès refusé ({reason})", ip)
    raise PatientLinkUnavailable(reason)


def patient_link_open(*, token: str, verified: bool, ip=None) -> tuple[PatientAccessLink, ReportVersion | None]:
    """The usable link behind this token, and the report when the birth date was verified in this session.

    Raises PatientLinkUnavailable (audited) for an unknown, expired, revoked or locked link.
    """
    link = _find(token)
    reason = _refusal(link)
    if reason is not None:
        _refuse(link, reason, ip)
    if not verified:
        _audit(link, "patient_link.open", AuditEvent.Kind.READ, "page d'accès ouverte", ip)
        return link, None
    version = latest_signed_version(link.case, for_patient=True)
    with transaction.atomic():
        L.objects.filter(pk=link.pk).update(last_access_at=timezone.now())
        _audit(link, "patient_link.report_view", AuditEvent.Kind.READ,
               f"compte-rendu version {version.number} consulté", ip, obj=version)
    return link, version


def patient_link_verify_birth_date(*, token: str, birth_date, ip=None) -> PatientAccessLink:
    """Check the birth date typed by the patient; a wrong one counts, and the last allowed one locks the link.

    Raises WrongBirthDate(remaining) or PatientLinkUnavailable (including "locked" on the locking attempt).
    """
    right = False
    with transaction.atomic():
        link = _find(token, lock=True)
        reason = _refusal(link)
        if reason is None:
            right = birth_date == link.case.patient.birth_date
            _record_attempt(link, right, ip)
    if reason is not None:
        _refuse(link, reason, ip)
    if right:
        return link
    _note_ip_failure(ip)
    if link.locked_at is not None:
        raise PatientLinkUnavailable("locked")
    raise WrongBirthDate(settings.PATIENT_LINK_MAX_ATTEMPTS - link.failed_attempts)


def _record_attempt(link: PatientAccessLink, right: bool, ip) -> None:
    """Inside the transaction holding the link's row lock, so two parallel wrong dates both count."""
    now = timezone.now()
    if right:
        link.last_access_at = now
        link.save(update_fields=["last_access_at"])
        _audit(link, "patient_link.verify", AuditEvent.Kind.EXECUTE, "date de naissance vérifiée", ip)
        return
    link.failed_attempts += 1
    maximum = settings.PATIENT_LINK_MAX_ATTEMPTS
    if link.failed_attempts >= maximum:
        link.locked_at = now
    link.save(update_fields=["failed_attempts", "locked_at"])
    _audit(link, "patient_link.verify_failed", AuditEvent.Kind.EXECUTE,
           f"date de naissance erronée ({link.failed_attempts}/{maximum})", ip)
    if link.locked_at is not None:
        _audit(link, "patient_link.lock", AuditEvent.Kind.EXECUTE, "lien verrouillé après trop d'essais", ip)


def patient_link_pdf(*, token: str, ip=None) -> tuple[ReportVersion, bytes | None]:
    """The PDF of the report the patient reads (None while it is not ready), for a verified session only.

    Raises PatientLinkUnavailable like patient_link_open, and storage.IntegrityError if the file does not verify.
    """
    link = _find(token)
    reason = _refusal(link)
    if reason is not None:
        _refuse(link, reason, ip)
    version = latest_signed_version(link.case, for_patient=True)
    rendered = version.pdf
    if rendered is None or not rendered.is_ready:
        return version, None
    try:  # read whole: a failed integrity check never sends half a PDF
        body = b"".join(storage.read_all_verified(storage.blob_of(rendered)))
    except (storage.IntegrityError, ImproperlyConfigured) as exc:
        logger.error("report pdf unreadable", extra={"version": str(version.pk), "error": str(exc)})
        _audit(link, "report.pdf_integrity_error", AuditEvent.Kind.EXECUTE, exc.__class__.__name__, ip, obj=version)
        raise
    with transaction.atomic():
        L.objects.filter(pk=link.pk).update(last_access_at=timezone.now())
        _audit(link, "patient_link.pdf_download", AuditEvent.Kind.READ,
               f"PDF du compte-rendu version {version.number} téléchargé", ip, obj=version)
    return version, body
