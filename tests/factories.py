"""Builders of valid test data: identifiers with correct check digits, a fixed cast, cases in any state."""

import itertools
from datetime import date, timedelta

from django.utils import timezone
from stdnum import luhn

from teleexpertise.accounts.models import User
from teleexpertise.billing.models import Tariff
from teleexpertise.billing.rules import load_rules
from teleexpertise.cases import services
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Network, NetworkMembership, Organisation, Profession, Professional
from teleexpertise.directory.reference import load_reference_codes
from teleexpertise.patients.models import Consent, Patient
from teleexpertise.reports.services import report_save_draft, report_sign

_serial = itertools.count(1)
PASSWORD = "correct horse battery staple 42"


def luhn_number(prefix: str, length: int) -> str:
    body = prefix + str(next(_serial)).zfill(length - len(prefix) - 1)
    return body + luhn.calc_check_digit(body)


def nir(sex: str = "1", yymm: str = "8405", place: str = "75123", order: str | None = None) -> str:
    first13 = f"{sex}{yymm}{place}{order or str(next(_serial) % 1000).zfill(3)}"
    corsica = first13.replace("2A", "19", 1).replace("2B", "18", 1)
    return f"{first13}{97 - int(corsica) % 97:02d}"


def make_user(email: str, *, staff: bool = False, demo: bool = True, **names) -> User:
    return User.objects.create_user(email, PASSWORD, is_staff=staff, is_superuser=staff, is_demo=demo, **names)


def make_professional(email: str, *, profession="10", specialty=None, first="Camille", last="Martin",
                      organisation=None, user=True, adeli=False) -> Professional:
    account = make_user(email, first_name=first, last_name=last) if user else None
    ids = {"adeli": luhn_number("75", 9)} if adeli else {"rpps": luhn_number("10", 11)}
    return Professional.objects.create(user=account, first_name=first, last_name=last, profession_id=profession,
                                       specialty_id=specialty, organisation=organisation, title="Dr" if
                                       profession == "10" else "", mssante_email=f"{email.split('@')[0]}@x.mssante.fr",
                                       **ids)


def make_patient(**overrides) -> Patient:
    data = {"ins_nir": nir(), "birth_name": "DURAND", "first_names": "Marie Claire", "sex": "F",
            "birth_date": date(1984, 5, 12), "birth_place_code": "75123"}
    data.update(overrides)
    return Patient.objects.create(**data)


def identity(**overrides) -> dict:
    data = {"birth_name": "DURAND", "used_name": "", "first_names": "Marie Claire", "sex": "F",
            "birth_date": date(1984, 5, 12), "birth_place_code": "75123", "identity_status": "validated",
            "treating_doctor": None, "treating_doctor_name": ""}
    data.update(overrides)
    return data


def consent(status=Consent.Status.GIVEN) -> dict:
    return {"status": status, "given_by": "patient" if status == "given" else "", "representative_name": "",
            "impossible_reason": "emergency" if status == "impossible" else "", "impossible_detail": "",
            "informed_at": timezone.now() - timedelta(minutes=5), "explained_interest": True,
            "explained_practicalities": True, "explained_right_to_refuse": True}


class Cast:
    """The fixed cast every view is tried with."""

    def __init__(self):
        if not Profession.objects.exists():  # a transactional test flushed the migration's data
            load_reference_codes()
        if not Tariff.objects.exists():  # likewise for the billing rules
            load_rules()
        self.hospital = Organisation.objects.create(name="CHU de Test", finess=luhn_number("75", 9), city="Paris")
        self.requester = make_professional("requester@test.fr", specialty="SM54", first="Paul", last="Généraliste")
        self.expert = make_professional("expert@test.fr", specialty="SM15", first="Anne", last="Dermato",
                                        organisation=self.hospital)
        self.colleague = make_professional("colleague@test.fr", specialty="SM15", first="Luc", last="Collègue",
                                           organisation=self.hospital)
        self.dispatcher = make_professional("dispatcher@test.fr", profession="60", first="Nina", last="Régulatrice",
                                            organisation=self.hospital, adeli=True)
        self.outsider = make_professional("outsider@test.fr", specialty="SM54", first="Olga", last="Extérieure")
        self.admin = make_user("admin@test.fr", staff=True, first_name="Ada", last_name="Admin")
        self.network = Network.objects.create(name="Dermatologie", specialty_id="SM15", organisation=self.hospital)
        for pro, role in ((self.expert, "member"), (self.colleague, "member"), (self.dispatcher, "dispatcher")):
            NetworkMembership.objects.create(network=self.network, professional=pro, role=role)

    def actor(self, who):
        user = who if isinstance(who, User) else who.user
        return services.actor_for(user)

    def new_case(self, *, send=True, to_network=True, patient_ins=None, **kwargs) -> Case:
        return services.case_create(
            actor=self.actor(self.requester), ins_nir=patient_ins or nir(), identity=identity(), consent=consent(),
            question=kwargs.pop("question", "Lésion pigmentée du dos évolutive : exérèse ?"),
            expert=None if to_network else self.expert, network=self.network if to_network else None,
            send=send, **kwargs)

    def case_in(self, state: str) -> Case:
        """A case brought to `state` through the services, as users would."""
        S = Case.State
        if state == S.DRAFT:
            return self.new_case(send=False)
        case = self.new_case()
        if state == S.SUBMITTED:
            return case
        if state == S.WITHDRAWN:
            return services.case_withdraw(actor=self.actor(self.requester), case_id=case.pk, reason="Patient guéri")
        expert = self.actor(self.expert)
        case = services.case_claim(actor=expert, case_id=case.pk)
        if state == S.TAKEN:
            return case
        if state == S.DECLINED:
            return services.case_decline(actor=expert, case_id=case.pk, reason="Hors de mon champ")
        if state == S.AWAITING_INFORMATION:
            return services.case_request_information(actor=expert, case_id=case.pk, question="Photo ?")
        case = services.case_accept(actor=expert, case_id=case.pk, due_at=timezone.now() + timedelta(days=2),
                                    patient_informed=True)
        if state == S.ACCEPTED:
            return case
        report_save_draft(actor=expert, case_id=case.pk, data={"act_at": timezone.now(), "answer": "Bénin.",
                                                               "conclusion": "Surveillance."})
        report_sign(actor=expert, case_id=case.pk)
        if state == S.ANSWERED:
            return Case.objects.get(pk=case.pk)
        return services.case_close(actor=self.actor(self.requester), case_id=case.pk, usefulness="yes",
                                   avoided=["visit"])
