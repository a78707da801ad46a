"""The expert's report (compte-rendu): numbered versions; a signed version never changes."""

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Professional


class ReportVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        SIGNED = "signed", _("Signé")

    class Orientation(models.TextChoices):
        NONE = "none", _("Pas d'orientation particulière (suivi par le requérant)")
        CONSULTATION = "consultation", _("Consultation en présentiel")
        TELECONSULTATION = "teleconsultation", _("Téléconsultation")
        OTHER_PROFESSIONAL = "other_professional", _("Orientation vers un autre professionnel")
        HOSPITALISATION = "hospitalisation", _("Hospitalisation")

    class Hospitalisation(models.TextChoices):
        NOT_APPLICABLE = "", _("Sans objet")
        AVOIDED = "avoided", _("Hospitalisation évitée")
        NEEDED = "needed", _("Hospitalisation nécessaire")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="report_versions")
    number = models.PositiveSmallIntegerField(_("version"))
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    author = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+", verbose_name=_("expert"))
    act_at = models.DateTimeField(_("date et heure de l'acte"))
    answer = models.TextField(_("réponse à la question posée"))
    conclusion = models.TextField(_("conclusion"))
    treatments = models.TextField(_("traitements proposés / prescription"), blank=True)
    prescription_justification = models.TextField(
        _("justification de la complétude des données (téléprescription)"), blank=True,
        help_text=_("Obligatoire lorsque le requérant est pharmacien ou auxiliaire médical et qu'un traitement "
                    "est prescrit."),
    )
    exams = models.TextField(_("examens complémentaires"), blank=True)
    orientation = models.CharField(_("orientation"), max_length=24, choices=Orientation.choices,
                                   default=Orientation.NONE)
    orientation_detail = models.TextField(_("précisions sur l'orientation et le suivi"), blank=True)
    consultation_at = models.DateTimeField(_("date de la consultation fixée"), null=True, blank=True)
    hospitalisation = models.CharField(_("hospitalisation"), max_length=8, choices=Hospitalisation.choices,
                                       blank=True, default="")
    technical_incidents = models.TextField(_("incidents techniques"), blank=True)
    amendment_reason = models.TextField(_("motif de la correction"), blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    signed_at = models.DateTimeField(_("signé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("version de compte-rendu")
        verbose_name_plural = _("versions de compte-rendu")
        ordering = ["case", "number"]
        constraints = [
            models.UniqueConstraint(fields=["case", "number"], name="one_report_number"),
            # At most one draft per case: the expert works on one text at a time.
            models.UniqueConstraint(fields=["case"], condition=Q(status="draft"), name="one_report_draft"),
            models.CheckConstraint(condition=Q(status="draft") | Q(signed_at__isnull=False),
                                   name="signed_report_has_time"),
        ]

    def __str__(self) -> str:
        return f"{self.case.reference} v{self.number}"

    @property
    def is_signed(self) -> bool:
        return self.status == self.Status.SIGNED

    @property
    def pdf(self):
        """The RenderedReport, or None (no query when the selector used select_related("rendered"))."""
        return getattr(self, "rendered", None)

    @property
    def dmp(self):
        """The DmpExport, or None (no query when the selector used select_related("dmp_export"))."""
        return getattr(self, "dmp_export", None)


class RenderedReport(models.Model):
    """The PDF of one signed version, rendered in the background and stored encrypted like a document."""

    class Status(models.TextChoices):
        PENDING = "pending", _("En préparation")
        READY = "ready", _("Prêt")
        FAILED = "failed", _("Échec")

    version = models.OneToOneField(ReportVersion, on_delete=models.PROTECT, related_name="rendered",
                                   verbose_name=_("version de compte-rendu"))
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(_("erreur"), blank=True)
    storage_key = models.CharField(max_length=200, unique=True, null=True, blank=True)
    size = models.BigIntegerField(_("taille"), null=True, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    key_id = models.CharField(max_length=64, blank=True)
    wrapped_key = models.BinaryField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    rendered_at = models.DateTimeField(_("généré le"), null=True, blank=True)

    class Meta:
        verbose_name = _("PDF de compte-rendu")
        verbose_name_plural = _("PDF de compte-rendu")
        constraints = [
            models.CheckConstraint(condition=~Q(status="ready") | Q(storage_key__isnull=False, size__isnull=False,
                                                                      rendered_at__isnull=False),
                                   name="ready_pdf_is_stored"),
        ]

    def __str__(self) -> str:
        return f"PDF {self.version_id} ({self.status})"

    @property
    def is_ready(self) -> bool:
        return self.status == self.Status.READY

    @property
    def is_failed(self) -> bool:
        return self.status == self.Status.FAILED


class DmpExport(models.Model):
    """The filing of one signed version for the DMP: its CDA and XDS metadata written to the outbox folder that
    the DMP connector sends from (docs/operations.md). Written means handed over, not accepted by the DMP."""

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        WRITTEN = "written", _("Déposé dans la boîte d'envoi")
        FAILED = "failed", _("Échec")

    version = models.OneToOneField(ReportVersion, on_delete=models.PROTECT, related_name="dmp_export",
                                   verbose_name=_("version de compte-rendu"))
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.PENDING)
    error = models.TextField(_("erreur"), blank=True)  # the detail, for operators
    reason = models.CharField(_("motif"), max_length=500, blank=True)  # what the case page says, in French
    folder = models.CharField(_("dossier"), max_length=100, blank=True)
    document_id = models.CharField(_("identifiant du document"), max_length=128, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    written_at = models.DateTimeField(_("déposé le"), null=True, blank=True)

    class Meta:
        verbose_name = _("versement DMP")
        verbose_name_plural = _("versements DMP")
        constraints = [
            models.CheckConstraint(condition=~Q(status="written") | (Q(written_at__isnull=False) & ~Q(folder="")),
                                   name="written_dmp_export_has_folder"),
        ]

    def __str__(self) -> str:
        return f"DMP {self.version_id} ({self.status})"

    @property
    def is_written(self) -> bool:
        return self.status == self.Status.WRITTEN

    @property
    def is_failed(self) -> bool:
        return self.status == self.Status.FAILED


class ReportDelivery(models.Model):
    """One sending of a signed version's PDF to one address (the requester, the treating doctor).

    Created once the PDF is stored; one row per (version, address), so creating them twice changes nothing.
    A failure keeps the row and the report as they are: the error is recorded and the sending is tried again.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("e-mail")
        MSSANTE = "mssante", _("MSSanté")

    class Role(models.TextChoices):
        REQUESTER = "requester", _("requérant")
        TREATING_DOCTOR = "treating_doctor", _("médecin traitant")

    class Status(models.TextChoices):
        QUEUED = "queued", _("En attente")
        SENT = "sent", _("Envoyé")
        FAILED = "failed", _("Échec")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(ReportVersion, on_delete=models.PROTECT, related_name="deliveries",
                                verbose_name=_("version de compte-rendu"))
    recipient = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+",
                                  verbose_name=_("destinataire"))
    role = models.CharField(_("rôle"), max_length=16, choices=Role.choices)
    address = models.EmailField(_("adresse"))
    channel = models.CharField(_("canal"), max_length=8, choices=Channel.choices)
    status = models.CharField(_("statut"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(_("essais"), default=0)
    last_error = models.TextField(_("dernière erreur"), blank=True)
    # A 5xx answer (address unknown, message refused): automatic retries stop until someone resends.
    permanent_error = models.BooleanField(_("erreur définitive"), default=False)
    last_attempt_at = models.DateTimeField(_("dernier essai le"), null=True, blank=True)
    # Lease taken by the job that is sending: a second job for the same row does nothing until it expires.
    sending_until = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("envoi de compte-rendu")
        verbose_name_plural = _("envois de compte-rendu")
        ordering = ["version", "created_at", "address"]
        constraints = [
            models.UniqueConstraint(fields=["version", "address"], name="one_delivery_per_address"),
            models.CheckConstraint(condition=~Q(status="sent") | Q(sent_at__isnull=False),
                                   name="sent_delivery_has_time"),
        ]
        indexes = [models.Index(fields=["status", "last_attempt_at"], name="delivery_status_attempt")]

    def __str__(self) -> str:
        return f"{self.version_id} -> {self.address} ({self.status})"

    @property
    def is_sent(self) -> bool:
        return self.status == self.Status.SENT

    @property
    def is_failed(self) -> bool:
        return self.status == self.Status.FAILED

    @property
    def retry_planned(self) -> bool:
        """An automatic attempt will come (while queued, or after a failure that was not a refusal)."""
        return not self.is_sent and not self.permanent_error
class PatientAccessLink(models.Model):
    """A personal link that lets the patient read the signed report, with their birth date as second factor.

    The token is never stored: only its SHA-256 (the token has 256 random bits, so a plain hash is enough and
    a lookup by hash takes constant time whatever the token). It exists only in the message sent to the patient.
    """

    class Channel(models.TextChoices):
        EMAIL = "email", _("Courriel")
        SMS = "sms", _("SMS")

    class Status(models.TextChoices):
        ACTIVE = "active", _("Actif")
        EXPIRED = "expired", _("Expiré")
        REVOKED = "revoked", _("Révoqué")
        LOCKED = "locked", _("Verrouillé")
        SEND_FAILED = "send_failed", _("Envoi impossible")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="patient_links",
                             verbose_name=_("demande"))
    created_by = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("envoyé par"))
    channel = models.CharField(_("canal"), max_length=8, choices=Channel.choices)
    recipient = models.CharField(_("destinataire"), max_length=254)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expire le"))
    revoked_at = models.DateTimeField(_("révoqué le"), null=True, blank=True)
    revoked_by = models.ForeignKey(Professional, on_delete=models.PROTECT, null=True, blank=True, related_name="+",
                                   verbose_name=_("révoqué par"))
    failed_attempts = models.PositiveSmallIntegerField(_("essais erronés"), default=0)
    locked_at = models.DateTimeField(_("verrouillé le"), null=True, blank=True)
    last_access_at = models.DateTimeField(_("dernier accès le"), null=True, blank=True)

    class Meta:
        verbose_name = _("accès patient au compte-rendu")
        verbose_name_plural = _("accès patient au compte-rendu")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["case", "created_at"], name="patient_link_case")]
        constraints = [
            models.CheckConstraint(condition=Q(channel__in=["email", "sms"]), name="patient_link_channel"),
        ]

    def __str__(self) -> str:
        return f"{self.case_id} → {self.get_channel_display()} ({self.pk})"

    def status_at(self, now) -> str:
        """Where the link stands; a refusal reason wins over the expiry date (it says more)."""
        if self.revoked_at is not None:
            return self.Status.REVOKED if self.sent_at is not None else self.Status.SEND_FAILED
        if self.locked_at is not None:
            return self.Status.LOCKED
        if self.expires_at <= now:
            return self.Status.EXPIRED
        return self.Status.ACTIVE

    @property
    def status(self) -> str:
        return self.status_at(timezone.now())

    @property
    def recipient_display(self) -> str:
        """+33612345678 → 06 12 34 56 78; e-mail addresses as they are."""
        if self.channel == self.Channel.SMS and self.recipient.startswith("+33") and len(self.recipient) == 12:
            digits = "0" + self.recipient[3:]
            return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
        return self.recipient
