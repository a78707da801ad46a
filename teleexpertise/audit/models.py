"""The append-only audit trail: every read of patient data and every change, kept after users go.

Rows copy the actor's label instead of pointing to the user with a cascading key, so deleting an account
never deletes its trace. Each row maps to a FHIR AuditEvent (action C/R/U/D/E).
"""


from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    class Kind(models.TextChoices):
        READ = "R", _("Consultation")
        CREATE = "C", _("Création")
        UPDATE = "U", _("Modification")
        EXECUTE = "E", _("Action")

    id = models.BigAutoField(primary_key=True)
    at = models.DateTimeField(_("date"), db_index=True)
    actor_id = models.BigIntegerField(_("utilisateur (id)"), null=True, blank=True, db_index=True)
    actor_label = models.CharField(_("utilisateur"), max_length=255)
    action = models.CharField(_("action"), max_length=64, db_index=True)
    kind = models.CharField(_("type"), max_length=1, choices=Kind.choices)
    object_type = models.CharField(_("objet"), max_length=64)
    object_id = models.CharField(_("identifiant"), max_length=64, blank=True)
    case_id = models.UUIDField(_("demande"), null=True, blank=True)
    patient_id = models.UUIDField(_("patient"), null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("adresse IP"), null=True, blank=True)
    summary = models.CharField(_("résumé"), max_length=500, blank=True)

    class Meta:
        verbose_name = _("événement de traçabilité")
        verbose_name_plural = _("événements de traçabilité")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["case_id", "at"], name="audit_case_at")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor_label} {self.action}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only.")

    @property
    def is_read(self) -> bool:
        return self.kind == self.Kind.READ


