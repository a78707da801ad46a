"""Patient identity (INS) and consent records."""

import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from teleexpertise.directory.models import Professional
from teleexpertise.patients.identity import format_nir


def display_name(birth_name: str, used_name: str, first_names: str) -> str:
    """"MARTIN Jeanne": the name in use, then the first given name (also for rows read as values, not models)."""
    first = first_names.split(" ")[0] if first_names else ""
    return f"{(used_name or birth_name).upper()} {first}".strip()


class Patient(models.Model):
    class Sex(models.TextChoices):
        FEMALE = "F", _("Féminin")
        MALE = "M", _("Masculin")
        OTHER = "I", _("Indéterminé")

    class IdentityStatus(models.TextChoices):
        PROVISIONAL = "provisional", _("Identité provisoire")
        RECOVERED = "recovered", _("Identité récupérée")
        VALIDATED = "validated", _("Identité validée")
        QUALIFIED = "qualified", _("Identité qualifiée")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    ins_nir = models.CharField(_("matricule INS (NIR)"), max_length=15, unique=True)
    birth_name = models.CharField(_("nom de naissance"), max_length=150)
    used_name = models.CharField(_("nom utilisé"), max_length=150, blank=True)
    first_names = models.CharField(_("prénoms de naissance"), max_length=200)
    sex = models.CharField(_("sexe"), max_length=1, choices=Sex.choices)
    birth_date = models.DateField(_("date de naissance"))
    birth_place_code = models.CharField(_("code du lieu de naissance (INSEE)"), max_length=5, blank=True)
    identity_status = models.CharField(_("statut de l'identité"), max_length=16, choices=IdentityStatus.choices,
                                       default=IdentityStatus.PROVISIONAL)
    treating_doctor = models.ForeignKey(Professional, on_delete=models.SET_NULL, null=True, blank=True,
                                        related_name="treated_patients", verbose_name=_("médecin traitant"))
    treating_doctor_name = models.CharField(
        _("médecin traitant (hors annuaire)"), max_length=200, blank=True,
        help_text=_("Nom du médecin traitant lorsqu'il n'est pas dans l'annuaire."),
    )
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)

    class Meta:
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        indexes = [models.Index(fields=["birth_name"], name="patient_birth_name")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return display_name(self.birth_name, self.used_name, self.first_names)

    @property
    def ins_display(self) -> str:
        return format_nir(self.ins_nir)


class Consent(models.Model):
    """The patient's informed consent to this tele-expertise, or the traced reason there is none."""

    class Status(models.TextChoices):
        GIVEN = "given", _("Recueilli")
        REFUSED = "refused", _("Refusé")
        IMPOSSIBLE = "impossible", _("Impossible à recueillir")

    class GivenBy(models.TextChoices):
        PATIENT = "patient", _("Le patient")
        REPRESENTATIVE = "representative", _("Son représentant légal")

    class ImpossibleReason(models.TextChoices):
        INCAPACITY = "incapacity", _("Patient hors d'état d'exprimer sa volonté")
        EMERGENCY = "emergency", _("Urgence")
        OTHER = "other", _("Autre raison")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="consents")
    status = models.CharField(_("consentement"), max_length=16, choices=Status.choices)
    given_by = models.CharField(_("exprimé par"), max_length=16, choices=GivenBy.choices, blank=True)
    representative_name = models.CharField(_("nom du représentant légal"), max_length=200, blank=True)
    impossible_reason = models.CharField(_("raison"), max_length=16, choices=ImpossibleReason.choices, blank=True)
    impossible_detail = models.CharField(_("précisions"), max_length=500, blank=True)
    informed_by = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="+",
                                    verbose_name=_("patient informé par"))
    informed_at = models.DateTimeField(_("informé le"))
    explained_interest = models.BooleanField(_("intérêt de la téléexpertise expliqué"), default=False)
    explained_practicalities = models.BooleanField(_("déroulement expliqué"), default=False)
    explained_right_to_refuse = models.BooleanField(_("droit de refuser expliqué"), default=False)
    recorded_at = models.DateTimeField(_("enregistré le"), auto_now_add=True)

    class Meta:
        verbose_name = _("consentement")
        verbose_name_plural = _("consentements")

    def __str__(self) -> str:
        return f"{self.get_status_display()} — {self.patient}"

    @property
    def allows_submission(self) -> bool:
        return self.status in (self.Status.GIVEN, self.Status.IMPOSSIBLE)
