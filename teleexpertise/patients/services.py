"""Changes to patient identities and consent records."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.core.compiled import CompiledInsert, CompiledQuery
from teleexpertise.patients.models import Consent, Patient

_TRAITS = ("birth_name", "first_names", "sex", "birth_date")


def _same(stored, typed) -> bool:
    if isinstance(stored, str):
        return stored.strip().casefold() == str(typed).strip().casefold()
    return stored == typed


# Read and written on every request created: compiled once (core/compiled.py). No save() override or signal.
_patient_by_ins = CompiledQuery(lambda ins: Patient.objects.filter(ins_nir=ins).order_by(), ins=str)
_insert_patient = CompiledInsert(Patient)
_insert_consent = CompiledInsert(Consent)


def patient_get_or_create(*, actor, ins_nir: str, identity: dict, ip: str | None = None) -> Patient:
    """One patient per INS: a second request with the same INS reuses the record.

    The typed identity must match the stored one on the INS traits, a check of identity vigilance: a
    mismatch means a typing error or the wrong patient, never a silent overwrite.
    """
    patient = _patient_by_ins.first(ins=ins_nir)
    if patient is None:
        try:
            with transaction.atomic():  # a savepoint: another request may create this INS at the same moment
                patient = _insert_patient.create(ins_nir=ins_nir, **identity)
        except IntegrityError:
            patient = _patient_by_ins.first(ins=ins_nir)  # theirs, committed: checked below like any other
            if patient is None:
                raise
        else:
            audit_log(actor=actor, action="patient.create", kind=AuditEvent.Kind.CREATE, obj=patient,
                      patient=patient, ip=ip, summary=f"INS {patient.ins_display}")
            return patient
    mismatched = [f for f in _TRAITS if f in identity and not _same(getattr(patient, f), identity[f])]
    if mismatched:
        labels = ", ".join(str(Patient._meta.get_field(f).verbose_name) for f in mismatched)
        raise ValidationError(
            _("Un patient est déjà enregistré avec ce matricule INS, mais avec d'autres traits d'identité "
              "(%(fields)s). Vérifiez l'identité du patient et le matricule saisi.") % {"fields": labels},
            code="identity_mismatch",
        )
    changed = [f for f in ("used_name", "birth_place_code", "treating_doctor", "treating_doctor_name")
               if identity.get(f) and not getattr(patient, f)]
    for name in changed:
        setattr(patient, name, identity[name])
    if changed:
        patient.save(update_fields=changed)
        audit_log(actor=actor, action="patient.update", kind=AuditEvent.Kind.UPDATE, obj=patient, patient=patient,
                  ip=ip, summary=f"Complété : {', '.join(changed)}")
    return patient


def consent_record(*, actor, patient: Patient, informed_by, data: dict, case=None, ip: str | None = None) -> Consent:
    consent = _insert_consent.create(patient=patient, informed_by=informed_by, **data)
    audit_log(actor=actor, action="consent.record", kind=AuditEvent.Kind.CREATE, obj=consent, patient=patient, ip=ip,
              case=case,
              summary=f"Consentement : {consent.get_status_display()}")
    return consent
