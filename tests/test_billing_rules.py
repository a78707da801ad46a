"""Billing acts created at the report's signature, driven by the dated rules: one table of situations."""

import itertools
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.billing.models import BillingRecord, Parameter, Tariff
from teleexpertise.billing.services import billing_records_create_for_report
from teleexpertise.cases import services
from teleexpertise.directory.models import Organisation, Site
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import report_save_draft, report_sign
from tests.factories import consent, identity, luhn_number, make_professional, nir

PARIS = ZoneInfo("Europe/Paris")
_emails = itertools.count(1)


def pro(profession="10", *, ipa=False, organisation=None, site=None):
    specialty = "SM15" if profession == "10" else None
    person = make_professional(f"p{next(_emails)}@billing.test", profession=profession, specialty=specialty,
                               organisation=organisation, adeli=profession not in ("10", "50", "21"))
    if ipa or site:
        person.advanced_practice, person.site = ipa, site
        person.save()
    return person


def act_time(when) -> datetime:
    return when if isinstance(when, datetime) else datetime.combine(when, time(10, 0), tzinfo=PARIS)


def case_to(requester, expert, ins, state="answered", when=date(2026, 2, 10)):
    """A case from requester to a named expert, brought to `state` through the services."""
    req, exp = services.actor_for(requester.user), services.actor_for(expert.user)
    case = services.case_create(actor=req, ins_nir=ins, identity=identity(), consent=consent(),
                                question="Avis sur cette lésion ?", expert=expert, send=True)
    if state == "declined":
        return services.case_decline(actor=exp, case_id=case.pk, reason="Hors de mon champ")
    if state == "withdrawn":
        return services.case_withdraw(actor=req, case_id=case.pk, reason="Patient guéri")
    if state == "awaiting_information":
        return services.case_request_information(actor=exp, case_id=case.pk, question="Une photo ?")
    case = services.case_accept(actor=exp, case_id=case.pk, due_at=timezone.now() + timedelta(days=3),
                                patient_informed=True)
    if state == "accepted":
        return case
    report_save_draft(actor=exp, case_id=case.pk, data={"act_at": act_time(when), "answer": "Bénin.",
                                                        "conclusion": "Surveillance."})
    report_sign(actor=exp, case_id=case.pk)
    return case


def acts(case) -> dict:
    return {r.act_code: (r.amount, r.billable, r.limit_reached)
            for r in BillingRecord.objects.filter(case=case)}


def _plain(requester, expert, when, state="answered"):
    return case_to(requester, expert, nir(), state=state, when=when)


def _after_acts(n, *, same_requester=True, years=(2026,)):
    """n earlier acts for the same patient and expert (in `years`, cycled), then the act measured."""
    def build(requester, expert, when):
        ins = nir()
        for i in range(n):
            earlier = requester if same_requester else pro("10")
            case_to(earlier, expert, ins, when=date(years[i % len(years)], 1, 5 + i))
        return case_to(requester, expert, ins, when=when)
    return build


def _same_practice(*, group=True, same_site=True):
    def build(requester, expert, when):
        org = Organisation.objects.create(name="Maison de santé du Port", is_group_practice=group,
                                          finess=luhn_number("13", 9))
        site_a = Site.objects.create(organisation=org, name="Quai")
        site_b = site_a if same_site else Site.objects.create(organisation=org, name="Gare")
        for person, site in ((requester, site_a), (expert, site_b)):
            person.organisation, person.site = org, site
            person.save()
        return case_to(requester, expert, nir(), when=when)
    return build


def _amended(requester, expert, when):
    case = case_to(requester, expert, nir(), when=when)
    exp = services.actor_for(expert.user)
    report_save_draft(actor=exp, case_id=case.pk, data={"act_at": act_time(when), "answer": "Bénin, revu.",
                                                        "conclusion": "Surveillance.", "amendment_reason": "Typo"})
    report_sign(actor=exp, case_id=case.pk)
    assert ReportVersion.objects.filter(case=case, status="signed").count() == 2
    return case


def _state(state):
    return lambda requester, expert, when: _plain(requester, expert, when, state=state)


D = Decimal
OK20, OK23, OK10, OK25 = (D("20.00"), True, False), (D("23.00"), True, False), (D("10.00"), True, False), \
    (D("25.00"), True, False)
W23, W10 = (D("23.00"), True, True), (D("10.00"), True, True)
BLOCKED = (D("0.00"), False, False)

# (id, requester profession, requester IPA, expert profession, act date (Paris), situation, expected acts)
TABLE = [
    ("gp-derm-2025-12-30", "10", False, "10", date(2025, 12, 30), _plain, {"TE2": OK20, "RQD": OK10}),
    ("gp-derm-2026-01-02", "10", False, "10", date(2026, 1, 2), _plain, {"TE2": OK23, "RQD": OK10}),
    ("last-day-at-20", "10", False, "10", date(2025, 12, 31), _plain, {"TE2": OK20, "RQD": OK10}),
    ("first-day-at-23", "10", False, "10", date(2026, 1, 1), _plain, {"TE2": OK23, "RQD": OK10}),
    ("paris-midnight-is-2026", "10", False, "10", datetime(2026, 1, 1, 0, 30, tzinfo=PARIS), _plain,
     {"TE2": OK23, "RQD": OK10}),
    ("avenant-9-first-day", "10", False, "10", date(2022, 4, 1), _plain, {"TE2": OK20, "RQD": OK10}),
    ("before-any-rule", "10", False, "10", date(2022, 3, 31), _plain, {}),
    ("midwife-expert-2025", "10", False, "50", date(2025, 12, 30), _plain, {"TE2": OK20, "RQD": OK10}),
    ("midwife-expert-2026-stays-20", "10", False, "50", date(2026, 1, 2), _plain, {"TE2": OK20, "RQD": OK10}),
    ("midwife-requester", "50", False, "10", date(2026, 3, 1), _plain, {"TE2": OK23, "RQD": OK10}),
    ("pharmacist-requester", "21", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23}),
    ("pharmacist-requester-2025", "21", False, "10", date(2025, 6, 1), _plain, {"TE2": OK20}),
    ("nurse-requester", "60", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23, "RQD": OK10}),
    ("ipa-nurse-requester", "60", True, "10", date(2026, 2, 10), _plain, {"TE2": OK23, "RQD": OK10}),
    ("ipa-nurse-to-midwife", "60", True, "50", date(2026, 2, 10), _plain, {"TE2": OK20, "RQD": OK10}),
    ("psychiatric-nurse-requester", "69", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23, "RQD": OK10}),
    ("physiotherapist-requester", "70", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23, "RQD": OK10}),
    ("podiatrist-requester", "80", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23, "RQD": OK10}),
    ("speech-therapist-requester", "91", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23, "RQD": OK10}),
    ("dentist-requester", "40", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23}),
    ("orthoptist-requester", "92", False, "10", date(2026, 2, 10), _plain, {"TE2": OK23}),
    ("dietitian-requester", "95", False, "50", date(2026, 2, 10), _plain, {"TE2": OK20}),
    ("declined", "10", False, "10", date(2026, 2, 10), _state("declined"), {}),
    ("withdrawn", "10", False, "10", date(2026, 2, 10), _state("withdrawn"), {}),
    ("accepted-unanswered", "10", False, "10", date(2026, 2, 10), _state("accepted"), {}),
    ("awaiting-information", "10", False, "10", date(2026, 2, 10), _state("awaiting_information"), {}),
    ("fourth-act-no-warning", "10", False, "10", date(2026, 3, 1), _after_acts(3), {"TE2": OK23, "RQD": OK10}),
    ("fifth-act-warns-both", "10", False, "10", date(2026, 3, 1), _after_acts(4), {"TE2": W23, "RQD": W10}),
    ("fifth-act-other-requesters", "10", False, "10", date(2026, 3, 1), _after_acts(4, same_requester=False),
     {"TE2": W23, "RQD": OK10}),
    ("fifth-act-across-years", "10", False, "10", date(2026, 3, 1), _after_acts(4, years=(2025, 2026)),
     {"TE2": OK23, "RQD": OK10}),
    ("pharmacist-fifth-act", "21", False, "10", date(2026, 3, 1), _after_acts(4), {"TE2": W23}),
    ("same-group-practice-same-site", "10", False, "10", date(2026, 2, 10), _same_practice(),
     {"TE2": BLOCKED, "RQD": BLOCKED}),
    ("same-group-practice-other-site", "10", False, "10", date(2026, 2, 10), _same_practice(same_site=False),
     {"TE2": OK23, "RQD": OK10}),
    ("same-organisation-not-group-practice", "70", False, "10", date(2026, 2, 10), _same_practice(group=False),
     {"TE2": OK23, "RQD": OK10}),
    ("amendment-bills-once", "10", False, "10", date(2026, 2, 10), _amended, {"TE2": OK23, "RQD": OK10}),
]


@pytest.mark.parametrize(("requester_code", "ipa", "expert_code", "when", "situation", "expected"),
                         [row[1:] for row in TABLE], ids=[row[0] for row in TABLE])
def test_acts_and_amounts(db, requester_code, ipa, expert_code, when, situation, expected):
    requester, expert = pro(requester_code, ipa=ipa), pro(expert_code)
    case = situation(requester, expert, when)
    assert acts(case) == expected
    for record in BillingRecord.objects.filter(case=case):
        owner = expert if record.act_code == "TE2" else requester
        assert record.professional == owner
        assert (record.rpps, record.adeli) == (owner.rpps or "", owner.adeli or "")
        assert record.patient_nir == case.patient.ins_nir
        assert record.tariff_amount == record.tariff.amount
        assert record.status == ("to_bill" if record.billable else "not_billable")
        codes = [c["code"] for c in record.checks]
        assert {"not_cumulable", "no_excess_fee", "full_coverage", "third_party_payment"} <= set(codes)
        assert ("same_practice" in codes) is (not record.billable)
        assert ("yearly_limit" in codes) is record.limit_reached


def test_table_is_large_enough():
    assert len(TABLE) >= 30


def test_a_tariff_added_later_leaves_old_records_unchanged(db):
    requester, expert = pro("10"), pro("10")
    old_case = case_to(requester, expert, nir(), when=date(2026, 1, 2))
    old = BillingRecord.objects.get(case=old_case, act_code="TE2")
    # The administrator closes the 23 EUR row and adds a new one, as the admin form requires.
    current = Tariff.objects.get(act_code="TE2", profession_id="10", valid_to__isnull=True)
    current.valid_to = date(2026, 5, 31)
    current.save()
    new_tariff = Tariff(act_code="TE2", profession_id="10", amount=D("25.00"), valid_from=date(2026, 6, 1))
    new_tariff.full_clean()
    new_tariff.save()
    new_case = case_to(requester, expert, nir(), when=date(2026, 6, 2))
    assert acts(new_case)["TE2"] == OK25
    old.refresh_from_db()
    assert (old.amount, old.tariff_amount, old.tariff_id) == (D("23.00"), D("23.00"), current.pk)
    assert BillingRecord.objects.get(case=new_case, act_code="TE2").tariff_id == new_tariff.pk


def test_an_overlapping_rule_is_refused(db):
    clash = Tariff(act_code="TE2", profession_id="10", amount=D("30.00"), valid_from=date(2026, 3, 1))
    with pytest.raises(ValidationError):
        clash.full_clean()
    clash = Parameter(key="per_patient_yearly_limit", value=D("6"), valid_from=date(2026, 3, 1))
    with pytest.raises(ValidationError):
        clash.full_clean()


def test_records_are_append_only_and_audited(db):
    case = case_to(pro("10"), pro("10"), nir())
    record = BillingRecord.objects.get(case=case, act_code="TE2")
    with pytest.raises(ValueError):
        record.save()
    with pytest.raises(ValueError):
        record.delete()
    assert AuditEvent.objects.filter(action="billing.create", case_id=case.pk).count() == 2


def test_a_replayed_creation_never_bills_twice(db):
    case = case_to(pro("10"), pro("10"), nir())
    version = ReportVersion.objects.get(case=case, number=1)
    actor = services.actor_for(version.author.user)
    assert billing_records_create_for_report(actor=actor, case=case, version=version) == []
    record = BillingRecord.objects.filter(case=case).first()
    with transaction.atomic(), pytest.raises(IntegrityError):
        BillingRecord.objects.create(**{f.attname: getattr(record, f.attname) for f in record._meta.concrete_fields
                                        if f.name not in ("id", "created_at")})
    assert BillingRecord.objects.filter(case=case).count() == 2


def test_a_changed_identity_does_not_change_the_claim(db):
    requester = pro("10")
    case = case_to(requester, pro("10"), nir())
    requester.last_name = "Nouveau"
    requester.save()
    record = BillingRecord.objects.get(case=case, act_code="RQD")
    assert "NOUVEAU" not in record.professional_name
