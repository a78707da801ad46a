"""Clinical documents attached to a case: checked by content, stored encrypted, served only through selectors."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Professional
from teleexpertise.messaging.models import Message


class Document(models.Model):
    class Kind(models.TextChoices):
        PHOTO = "photo", _("Photo")
        ECG = "ecg", _("ECG")
        LAB = "lab", _("Résultats de biologie")
        IMAGING = "imaging", _("Imagerie")
        REPORT = "report", _("Compte-rendu")
        VIDEO = "video", _("Vidéo")
        AUDIOGRAM = "audiogram", _("Audiogramme")
        OTHER = "other", _("Autre")

    class AttachedTo(models.TextChoices):
        REQUEST = "request", _("Demande")
        MESSAGE = "message", _("Message")
        INFORMATION = "information", _("Réponse aux compléments")
        REPORT = "report", _("Compte-rendu")

    class Category(models.TextChoices):
        PHOTO = "photo", _("Photo")
        PDF = "pdf", _("PDF")
        DICOM = "dicom", _("DICOM")
        VIDEO = "video", _("Vidéo")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="documents")
    attached_to = models.CharField(_("rattaché à"), max_length=16, choices=AttachedTo.choices,
                                   default=AttachedTo.REQUEST)
    message = models.ForeignKey(Message, on_delete=models.PROTECT, null=True, blank=True, related_name="documents")
    kind = models.CharField(_("type de document"), max_length=16, choices=Kind.choices)
    category = models.CharField(_("format"), max_length=8, choices=Category.choices)
    media_type = models.CharField(max_length=64)
    name = models.CharField(_("nom"), max_length=160)
    size = models.BigIntegerField(_("taille"))
    sha256 = models.CharField(max_length=64)
    storage_key = models.CharField(max_length=200, unique=True)
    key_id = models.CharField(max_length=64)
    wrapped_key = models.BinaryField()
    flags = models.JSONField(default=list, blank=True)
    details = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("ajouté par"))
    uploaded_at = models.DateTimeField(_("ajouté le"), auto_now_add=True)

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["uploaded_at", "id"]
        indexes = [models.Index(fields=["case", "uploaded_at"], name="document_case_time")]

    def __str__(self) -> str:
        return f"{self.name} ({self.case_id})"
