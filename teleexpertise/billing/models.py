"""Billing: the regulatory rules as dated rows, and the acts (TE2, RQD) created when a report is signed.

A rule is never rewritten once used: the administrator closes it (valid_to) and adds the next one. A billing
record copies the amount, the rule ids and the identities it was made with, so that a later rule change, a
moved professional or a corrected identity never changes what was claimed.
"""

import uuid
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Profession, Professional
from teleexpertise.patients.models import Patient
from teleexpertise.reports.models import ReportVersion


class ActCode(models.TextChoices):
    TE2 = "TE2", _("TE2 — téléexpertise, professionnel requis")
    RQD = "RQD", _("RQD — téléexpertise, professionnel requérant")


class DatedRule(models.Model):
    """valid_from inclusive, valid_to inclusive (empty: still in force)."""

    valid_from = models.DateField(_("en vigueur du"))
    valid_to = models.DateField(_("en vigueur jusqu'au (inclus)"), null=True, blank=True)
    source = models.CharField(_("source"), max_length=255, blank=True,
                              help_text=_("Texte de référence : convention, avenant, page ameli…"))

    class Meta:
        abstract = True

    def clean(self):
        if self.valid_to and self.valid_to < self.valid_from:
            raise ValidationError({"valid_to": _("La fin de validité précède son début.")})
        clashes = self._same_rule().exclude(pk=self.pk).filter(
            Q(valid_to__isnull=True) | Q(valid_to__gte=self.valid_from))
        if self.valid_to:
            clashes = clashes.filter(valid_from__lte=self.valid_to)
        if clashes.exists():
            raise ValidationError(_("Une règle de même nature est déjà en vigueur sur une partie de cette période : "
                                    "fermez-la (date de fin) avant d'ajouter la suivante."))

    def _same_rule(self):
        raise NotImplementedError

    @classmethod
    def in_force(cls, on):
        return cls.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gte=on), valid_from__lte=on)


class Tariff(DatedRule):
    """The amount of an act for the billing professional's profession. No tariff in force: the act is not billed
    by that profession (this is also how "who may bill RQD" is written: one RQD row per allowed profession)."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    act_code = models.CharField(_("acte"), max_length=8, choices=ActCode.choices)
    profession = models.ForeignKey(Profession, on_delete=models.PROTECT, related_name="+",
                                   verbose_name=_("profession du professionnel qui facture"))
    amount = models.DecimalField(_("montant (EUR)"), max_digits=7, decimal_places=2)
    cumulable = models.BooleanField(_("cumulable avec un autre acte ou une majoration"), default=False)
    excess_fee_allowed = models.BooleanField(_("dépassement d'honoraires autorisé"), default=False)
    coverage_percent = models.PositiveSmallIntegerField(_("prise en charge AMO (%)"), default=100)
    third_party_payment = models.BooleanField(_("tiers payant"), default=True)

    class Meta:
        verbose_name = _("tarif")
        verbose_name_plural = _("tarifs")
        ordering = ["act_code", "profession", "-valid_from"]
        indexes = [models.Index(fields=["act_code", "profession", "valid_from"], name="tariff_lookup")]

    def __str__(self) -> str:
        return f"{self.act_code} {self.profession_id} {self.amount} EUR ({self.valid_from}→{self.valid_to or '…'})"

    def _same_rule(self):
        return Tariff.objects.filter(act_code=self.act_code, profession_id=self.profession_id)


class Parameter(DatedRule):
    """A dated numeric rule (the yearly per-patient limit, the remote-activity cap...)."""

    class Key(models.TextChoices):
        PER_PATIENT_YEARLY_LIMIT = "per_patient_yearly_limit", _(
            "Nombre d'actes par an, par patient et par professionnel (au-delà : avertissement)")
        REMOTE_ACTIVITY_CAP_PERCENT = "remote_activity_cap_percent", _(
            "Plafond de l'activité à distance (% de l'activité annuelle)")
        REMOTE_CAP_COUNTS_TELEEXPERTISE = "remote_cap_counts_teleexpertise", _(
            "La téléexpertise compte dans le plafond d'activité à distance (1 = oui, 0 = non)")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    key = models.CharField(_("règle"), max_length=40, choices=Key.choices)
    value = models.DecimalField(_("valeur"), max_digits=9, decimal_places=2)

    class Meta:
        verbose_name = _("paramètre réglementaire")
        verbose_name_plural = _("paramètres réglementaires")
        ordering = ["key", "-valid_from"]

    def __str__(self) -> str:
        return f"{self.get_key_display()} = {self.value} ({self.valid_from}→{self.valid_to or '…'})"

    def _same_rule(self):
        return Parameter.objects.filter(key=self.key)


class BillingRecord(models.Model):
    """One act to claim. Append-only: only the claim status moves afterwards (billing_record_set_status)."""

    class Role(models.TextChoices):
        EXPERT = "expert", _("Requis")
        REQUESTER = "requester", _("Requérant")

    class Status(models.TextChoices):
        TO_BILL = "to_bill", _("À facturer")
        BILLED = "billed", _("Facturé")
        REJECTED = "rejected", _("Rejeté")
        PAID = "paid", _("Payé")
        NOT_BILLABLE = "not_billable", _("Non facturable")

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="billing_records")
    report_version = models.ForeignKey(ReportVersion, on_delete=models.PROTECT, related_name="+")
    act_code = models.CharField(_("acte"), max_length=8, choices=ActCode.choices)
    role = models.CharField(_("rôle"), max_length=12, choices=Role.choices)
    act_date = models.DateField(_("date de l'acte"))
    # Copies made at creation (a rule or an identity edited later never changes a claim).
    professional = models.ForeignKey(Professional, on_delete=models.PROTECT, related_name="billing_records")
    professional_name = models.CharField(_("professionnel"), max_length=320)
    profession_code = models.CharField(_("profession (TRE_G15)"), max_length=8)
    rpps = models.CharField(_("RPPS"), max_length=11, blank=True)
    adeli = models.CharField(_("ADELI"), max_length=9, blank=True)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="+")
    patient_nir = models.CharField(_("NIR du patient"), max_length=15)
    patient_birth_date = models.DateField(_("date de naissance"))
    patient_birth_name = models.CharField(_("nom de naissance"), max_length=150)
    patient_first_names = models.CharField(_("prénoms"), max_length=200)
    patient_sex = models.CharField(_("sexe"), max_length=1)
    tariff = models.ForeignKey(Tariff, on_delete=models.PROTECT, related_name="records")
    limit_rule = models.ForeignKey(Parameter, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    tariff_amount = models.DecimalField(_("tarif (EUR)"), max_digits=7, decimal_places=2)
    amount = models.DecimalField(_("montant facturable (EUR)"), max_digits=7, decimal_places=2)
    cumulable = models.BooleanField(_("cumulable"), default=False)
    excess_fee_allowed = models.BooleanField(_("dépassement autorisé"), default=False)
    coverage_percent = models.PositiveSmallIntegerField(_("prise en charge AMO (%)"), default=100)
    third_party_payment = models.BooleanField(_("tiers payant"), default=True)
    billable = models.BooleanField(_("facturable"), default=True)
    limit_reached = models.BooleanField(_("limite annuelle atteinte"), default=False)
    checks = models.JSONField(_("contrôles"), default=list,
                              help_text=_("Liste de {code, level, text} : explications en clair du contrôle."))
    status = models.CharField(_("statut"), max_length=16, choices=Status.choices, default=Status.TO_BILL)
    rejection_reason = models.CharField(_("motif du rejet"), max_length=500, blank=True)
    status_changed_at = models.DateTimeField(_("statut modifié le"), null=True, blank=True)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)

    class Meta:
        verbose_name = _("acte facturable")
        verbose_name_plural = _("actes facturables")
        ordering = ["-act_date", "act_code"]
        constraints = [
            # One act of each code per case: an amendment or a replayed signature never bills twice.
            models.UniqueConstraint(fields=["case", "act_code"], name="one_act_per_code_per_case"),
            models.CheckConstraint(condition=Q(billable=True) | Q(status="not_billable") | Q(amount=0),
                                   name="not_billable_has_no_amount"),
            models.CheckConstraint(condition=~Q(status="rejected") | ~Q(rejection_reason=""),
                                   name="rejected_has_reason"),
        ]
        indexes = [
            models.Index(fields=["professional", "act_date"], name="billing_pro_month"),
            models.Index(fields=["professional", "patient", "act_code", "act_date"], name="billing_yearly_limit"),
        ]

    def __str__(self) -> str:
        return f"{self.act_code} {self.case_id} {self.act_date}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise ValueError("A billing record is append-only: use billing_record_set_status().")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("A billing record is never deleted.")

    @property
    def national_id(self) -> str:
        return self.rpps or self.adeli


class RemoteActivity(models.Model):
    """What a professional declares of their year: total acts and tele-consultations done outside the platform."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    professional = models.ForeignKey(Professional, on_delete=models.CASCADE, related_name="+")
    year = models.PositiveSmallIntegerField(_("année"))
    total_acts = models.PositiveIntegerField(_("nombre total d'actes de l'année"))
    teleconsultations = models.PositiveIntegerField(_("dont téléconsultations"), default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("activité déclarée")
        verbose_name_plural = _("activités déclarées")
        constraints = [models.UniqueConstraint(fields=["professional", "year"], name="one_activity_per_year")]

    def __str__(self) -> str:
        return f"{self.professional_id} {self.year}: {self.total_acts}"


ZERO = Decimal("0.00")
