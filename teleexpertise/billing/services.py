"""Every change to billing: the acts created at the report's signature, their claim status, declared activity."""

import logging
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.billing import checks as C
from teleexpertise.billing import selectors
from teleexpertise.billing.models import ZERO, ActCode, BillingRecord, Parameter, RemoteActivity
from teleexpertise.billing.rules import parameter_in_force, tariff_in_force

logger = logging.getLogger(__name__)
S = BillingRecord.Status

# Which claim status may follow which: the professional records what their billing software and the fund did.
NEXT_STATUSES = {
    S.TO_BILL: {S.BILLED},
    S.BILLED: {S.PAID, S.REJECTED, S.TO_BILL},
    S.REJECTED: {S.BILLED, S.TO_BILL},
    S.PAID: {S.BILLED},  # a payment recorded by mistake
    S.NOT_BILLABLE: set(),
}


def same_group_practice(a, b) -> bool:
    """Same group practice at the same site (a practice without sites is one site)."""
    org = a.organisation
    return bool(org is not None and org.is_group_practice and a.organisation_id == b.organisation_id
                and a.site_id == b.site_id)


def billing_records_create_for_report(*, actor, case, version, ip=None) -> list[BillingRecord]:
    """The acts of an answered case: TE2 for the expert, RQD for the requester when their profession bills it.

    Called inside report_sign's transaction for the first signed version only; the unique (case, act) constraint
    makes a replay fail loudly instead of billing twice. No tariff in force for a profession: no act.
    """
    if version.number != 1 or BillingRecord.objects.filter(case=case).exists():
        return []
    act_date = timezone.localdate(version.act_at)
    expert, requester = version.author, case.requester
    blocked = same_group_practice(requester, expert)
    created = []
    for role, professional, act in ((BillingRecord.Role.EXPERT, expert, ActCode.TE2),
                                    (BillingRecord.Role.REQUESTER, requester, ActCode.RQD)):
        tariff = tariff_in_force(act, professional.profession_id, act_date)
        if tariff is None:
            if role == BillingRecord.Role.EXPERT:
                logger.warning("no TE2 tariff in force", extra={"profession": professional.profession_id,
                                                                "act_date": act_date.isoformat()})
            continue
        record = _record(case=case, version=version, role=role, professional=professional, act=act,
                         act_date=act_date, tariff=tariff, blocked=blocked, organisation=requester.organisation)
        audit_log(actor=actor.user, action="billing.create", kind=AuditEvent.Kind.CREATE, obj=record, case=case,
                  ip=ip, summary=_("Acte %(act)s créé (%(amount)s EUR)") % {"act": act, "amount": record.amount})
        created.append(record)
    return created


def _record(*, case, version, role, professional, act, act_date, tariff, blocked, organisation) -> BillingRecord:
    patient = case.patient
    limit_rule = parameter_in_force(Parameter.Key.PER_PATIENT_YEARLY_LIMIT, act_date)
    found = []
    if blocked:
        found.append(C.check("same_practice", C.ERROR, organisation=organisation.name))
    earlier = BillingRecord.objects.filter(professional=professional, patient=patient, act_code=act,
                                           act_date__year=act_date.year, billable=True).count()
    limit_reached = limit_rule is not None and earlier >= int(limit_rule.value)
    if limit_reached:
        found.append(C.check("yearly_limit", C.WARNING, count=earlier, act=act, year=act_date.year,
                             limit=int(limit_rule.value)))
    found += _tariff_checks(tariff)
    return BillingRecord.objects.create(
        case=case, report_version=version, act_code=act, role=role, act_date=act_date,
        professional=professional, professional_name=professional.display_name[:320],
        profession_code=professional.profession_id, rpps=professional.rpps or "", adeli=professional.adeli or "",
        patient=patient, patient_nir=patient.ins_nir, patient_birth_date=patient.birth_date,
        patient_birth_name=patient.birth_name, patient_first_names=patient.first_names, patient_sex=patient.sex,
        tariff=tariff, limit_rule=limit_rule, tariff_amount=tariff.amount, amount=ZERO if blocked else tariff.amount,
        cumulable=tariff.cumulable, excess_fee_allowed=tariff.excess_fee_allowed,
        coverage_percent=tariff.coverage_percent, third_party_payment=tariff.third_party_payment,
        billable=not blocked, limit_reached=limit_reached, checks=found,
        status=S.NOT_BILLABLE if blocked else S.TO_BILL)


def _tariff_checks(tariff) -> list[dict]:
    found = []
    if not tariff.cumulable:
        found.append(C.check("not_cumulable", C.INFO))
    if not tariff.excess_fee_allowed:
        found.append(C.check("no_excess_fee", C.INFO))
    found.append(C.check("full_coverage", C.INFO, percent=tariff.coverage_percent))
    if tariff.third_party_payment:
        found.append(C.check("third_party_payment", C.INFO))
    found.append(C.check("sesam_without_vitale", C.INFO))
    return found


def billing_record_set_status(*, user, record_id, status: str, reason: str = "", ip=None) -> BillingRecord:
    """The professional records where their claim stands; only their own acts (others: 404)."""
    reason = (reason or "").strip()
    with transaction.atomic():
        record = selectors.billing_record_for_user(user, record_id, lock=True)
        if status not in S.values or status not in NEXT_STATUSES[record.status]:
            raise ValidationError(_("Passage de « %(old)s » à « %(new)s » impossible.") % {
                "old": record.get_status_display(), "new": dict(S.choices).get(status, status)})
        if status == S.REJECTED and not reason:
            raise ValidationError(_("Indiquez le motif du rejet donné par la caisse."))
        now = timezone.now()
        changes = {"status": status, "rejection_reason": reason[:500] if status == S.REJECTED else "",
                   "status_changed_at": now}
        if not BillingRecord.objects.filter(pk=record.pk, status=record.status).update(**changes):
            raise ValidationError(_("L'acte a été modifié entre-temps : rechargez la page."))
        previous = record.get_status_display()
        for name, value in changes.items():
            setattr(record, name, value)
        audit_log(actor=user, action="billing.status", kind=AuditEvent.Kind.UPDATE, obj=record,
                  case=record.case, ip=ip, summary=f"{record.act_code} : {previous} → {record.get_status_display()}"
                  + (f" ({record.rejection_reason})" if record.rejection_reason else ""))
    return record


def remote_activity_declare(*, user, year: int, total_acts: int, teleconsultations: int = 0,
                            ip=None) -> RemoteActivity:
    professional = selectors.professional_of(user)
    if total_acts <= 0:
        raise ValidationError({"total_acts": _("Indiquez un nombre d'actes supérieur à zéro.")})
    if teleconsultations > total_acts:
        raise ValidationError({"teleconsultations": _(
            "Les téléconsultations ne peuvent dépasser le nombre total d'actes.")})
    with transaction.atomic():
        row, _created = RemoteActivity.objects.update_or_create(
            professional=professional, year=year,
            defaults={"total_acts": total_acts, "teleconsultations": teleconsultations})
        audit_log(actor=user, action="billing.activity_declare", kind=AuditEvent.Kind.UPDATE, obj=row, ip=ip,
                  summary=f"{year} : {total_acts} actes, {teleconsultations} téléconsultations")
    return row


def remote_activity_indicator(*, user, year: int) -> dict:
    """Share of remote acts in the declared yearly activity, against the cap in force at the end of that year."""
    from datetime import date

    professional = selectors.professional_of(user)
    on = min(date(year, 12, 31), timezone.localdate())
    cap = parameter_in_force(Parameter.Key.REMOTE_ACTIVITY_CAP_PERCENT, on)
    counts_rule = parameter_in_force(Parameter.Key.REMOTE_CAP_COUNTS_TELEEXPERTISE, on)
    counts_te = bool(counts_rule and counts_rule.value)
    te_acts = selectors.billing_records_for_user(user).filter(act_date__year=year).count()
    declared = RemoteActivity.objects.filter(professional=professional, year=year).first()
    result = {"year": year, "declared": declared, "te_acts": te_acts, "counts_te": counts_te,
              "cap": cap.value if cap else None, "cap_rule": cap, "counts_rule": counts_rule,
              "share": None, "over_cap": False}
    if declared is not None:
        counted = declared.teleconsultations + (te_acts if counts_te else 0)
        result["counted"] = counted
        result["share"] = (Decimal(counted) * 100 / declared.total_acts).quantize(Decimal("0.1"))
        result["over_cap"] = cap is not None and result["share"] > cap.value
    return result
