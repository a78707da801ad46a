"""Expert and network profiles, enforced by the services that address a case: professions that may ask,
capacity (open cases), absences (substitute or network pool)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import services
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Absence, Network
from teleexpertise.messaging.models import Notification
from tests.factories import consent, identity, make_professional, nir


def _absent(pro, substitute=None, network=None):
    today = timezone.localdate()
    return Absence.objects.create(professional=pro, starts_on=today - timedelta(days=1),
                                  ends_on=today + timedelta(days=6), substitute=substitute, network=network)


# --- Professions that may ask --------------------------------------------------------------------------

def test_an_expert_reserved_to_doctors_refuses_a_nurse_and_accepts_a_doctor(cast):
    cast.expert.requester_professions.set(["10"])
    nurse = make_professional("nurse@test.fr", profession="60", first="Inès", last="Infirmière", adeli=True)
    draft = services.case_create(actor=cast.actor(nurse), ins_nir=nir(), identity=identity(), consent=consent(),
                                 question="Plaie chronique : avis ?", expert=cast.expert)
    with pytest.raises(ValidationError, match="ne reçoit pas de demande d'un professionnel de votre profession"):
        services.case_submit(actor=cast.actor(nurse), case_id=draft.pk)
    assert cast.new_case(to_network=False).state == Case.State.SUBMITTED  # the requester is a doctor


def test_a_network_reserved_to_pharmacists_refuses_a_doctor(cast):
    cast.network.requester_professions.set(["21"])
    with pytest.raises(ValidationError, match="Dermatologie"):
        cast.new_case()


# --- Capacity ------------------------------------------------------------------------------------------

def test_an_expert_at_capacity_receives_no_new_request_until_one_closes(cast):
    cast.expert.max_open_cases = 1
    cast.expert.save(update_fields=["max_open_cases"])
    first = cast.new_case(to_network=False)
    with pytest.raises(ValidationError, match=r"nombre maximal de demandes en cours \(1\)"):
        cast.new_case(to_network=False)
    services.case_withdraw(actor=cast.actor(cast.requester), case_id=first.pk, reason="Vu en consultation")
    assert cast.new_case(to_network=False).state == Case.State.SUBMITTED


def test_a_network_at_capacity_refuses_and_an_expert_at_capacity_cannot_claim(cast):
    cast.network.max_open_cases = 1
    cast.network.save(update_fields=["max_open_cases"])
    pooled = cast.new_case()
    with pytest.raises(ValidationError, match="Dermatologie"):
        cast.new_case()
    cast.expert.max_open_cases = 0
    cast.expert.save(update_fields=["max_open_cases"])
    with pytest.raises(ValidationError, match="nombre maximal"):
        services.case_claim(actor=cast.actor(cast.expert), case_id=pooled.pk)
    assert services.case_claim(actor=cast.actor(cast.colleague), case_id=pooled.pk).expert == cast.colleague


# --- Absences ------------------------------------------------------------------------------------------

def test_a_request_to_an_absent_expert_goes_to_the_substitute_and_says_so(cast):
    _absent(cast.expert, substitute=cast.colleague)
    case = cast.new_case(to_network=False)
    stored = Case.objects.get(pk=case.pk)
    assert stored.expert == cast.colleague and stored.network is None and stored.state == Case.State.SUBMITTED
    event = AuditEvent.objects.get(action="case.reroute", case_id=case.pk)
    assert "est absent(e) jusqu'au" in event.summary and cast.colleague.display_name in event.summary
    assert Notification.objects.filter(recipient=cast.requester.user, case=case,
                                       verb__startswith="expert absent : demande adressée à").exists()
    assert Notification.objects.filter(recipient=cast.colleague.user, case=case).exists()
    assert not Notification.objects.filter(recipient=cast.expert.user, case=case).exists()


def test_without_a_present_substitute_the_request_goes_to_the_experts_network_pool(cast):
    _absent(cast.colleague)
    _absent(cast.expert, substitute=cast.colleague)  # the substitute is away too
    case = Case.objects.get(pk=cast.new_case(to_network=False).pk)
    assert case.expert is None and case.network == cast.network and case.is_pooled


def test_an_absence_may_name_the_fallback_network(cast):
    other = Network.objects.create(name="Dermatologie de garde", specialty_id="SM15", organisation=cast.hospital)
    _absent(cast.expert, network=other)
    assert Case.objects.get(pk=cast.new_case(to_network=False).pk).network == other


def test_an_absent_expert_with_no_substitute_nor_network_is_refused_with_the_return_date(cast):
    loner = make_professional("loner@test.fr", specialty="SM15", first="Léa", last="Seule")
    absence = _absent(loner)
    draft = cast.new_case(send=False, to_network=False)
    Case.objects.filter(pk=draft.pk).update(expert=loner)
    with pytest.raises(ValidationError, match=absence.ends_on.strftime("%d/%m/%Y")):
        services.case_submit(actor=cast.actor(cast.requester), case_id=draft.pk)


def test_an_absence_in_the_past_or_future_changes_nothing(cast):
    today = timezone.localdate()
    Absence.objects.create(professional=cast.expert, starts_on=today + timedelta(days=1),
                           ends_on=today + timedelta(days=3), substitute=cast.colleague)
    Absence.objects.create(professional=cast.expert, starts_on=today - timedelta(days=9),
                           ends_on=today - timedelta(days=1), substitute=cast.colleague)
    assert Case.objects.get(pk=cast.new_case(to_network=False).pk).expert == cast.expert


def test_the_dispatcher_cannot_assign_an_absent_member(cast):
    _absent(cast.expert)
    case = cast.new_case()
    with pytest.raises(ValidationError, match="absent"):
        services.case_assign(actor=cast.actor(cast.dispatcher), case_id=case.pk, expert=cast.expert)
    assert services.case_assign(actor=cast.actor(cast.dispatcher), case_id=case.pk,
                                expert=cast.colleague).expert == cast.colleague


def test_a_transfer_to_an_absent_expert_is_refused(cast):
    _absent(cast.colleague)
    case = cast.case_in("taken")
    with pytest.raises(ValidationError, match="absent"):
        services.case_transfer(actor=cast.actor(cast.expert), case_id=case.pk, note="Votre domaine",
                               expert=cast.colleague)
