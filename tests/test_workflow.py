"""Every transition of the table, tried by every member of the cast in every state.

The expected matrix is written here by hand from the issue, not derived from workflow.py, so the table
is checked against the rules rather than against itself.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from teleexpertise.cases import services
from teleexpertise.cases.models import Case
from teleexpertise.cases.workflow import TRANSITIONS, WorkflowError
from teleexpertise.reports.services import report_save_draft, report_sign
from tests.factories import consent, identity

S = Case.State
PEOPLE = ("requester", "expert", "colleague", "dispatcher", "outsider")

# (state the case is in, action) -> who may do it. Anything not listed is refused for everyone.
ALLOWED = {
    ("draft", "submit"): {"requester"},
    ("draft", "withdraw"): {"requester"},
    ("draft", "edit_draft"): {"requester"},
    ("submitted", "claim"): {"expert", "colleague"},
    ("submitted", "assign"): {"dispatcher"},
    ("submitted", "withdraw"): {"requester"},
    ("submitted", "transfer"): {"dispatcher"},
    ("submitted", "tag"): {"expert", "colleague", "dispatcher"},
    ("submitted_named", "tag"): {"expert"},
    ("taken", "tag"): {"expert"},
    ("awaiting_information", "tag"): {"expert"},
    ("accepted", "tag"): {"expert"},
    ("submitted_named", "accept"): {"expert"},
    ("submitted_named", "decline"): {"expert"},
    ("submitted_named", "request_information"): {"expert"},
    ("submitted_named", "transfer"): {"expert"},
    ("submitted_named", "withdraw"): {"requester"},
    ("taken", "accept"): {"expert"},
    ("taken", "decline"): {"expert"},
    ("taken", "request_information"): {"expert"},
    ("taken", "transfer"): {"expert"},
    ("taken", "withdraw"): {"requester"},
    ("awaiting_information", "provide_information"): {"requester"},
    ("awaiting_information", "withdraw"): {"requester"},
    ("accepted", "request_information"): {"expert"},
    ("accepted", "transfer"): {"expert"},
    ("accepted", "answer"): {"expert"},
    ("accepted", "withdraw"): {"requester"},
    ("answered", "close"): {"requester"},
    ("answered", "amend_report"): {"expert"},
    ("closed", "amend_report"): {"expert"},
}

EXPECTED_STATE = {
    "submit": S.SUBMITTED, "claim": S.TAKEN, "assign": S.TAKEN, "accept": S.ACCEPTED, "decline": S.DECLINED,
    "request_information": S.AWAITING_INFORMATION, "transfer": S.SUBMITTED, "answer": S.ANSWERED,
    "close": S.CLOSED, "provide_information": S.TAKEN, "edit_draft": S.DRAFT, "withdraw": S.WITHDRAWN,
}
REPORT_ACTIONS = ("answer", "amend_report")
STATES = ["draft", "submitted", "submitted_named", "taken", "awaiting_information", "accepted", "declined",
          "answered", "closed", "withdrawn"]


def _case(cast, state):
    if state == "submitted_named":
        return cast.new_case(to_network=False)
    return cast.case_in(state)


def _case_state(state):
    return S.SUBMITTED if state == "submitted_named" else state


def _perform(cast, action, who, case):
    actor = cast.actor(getattr(cast, who))
    pk = case.pk
    if action == "submit":
        return services.case_submit(actor=actor, case_id=pk)
    if action == "edit_draft":
        return services.case_update_draft(actor=actor, case_id=pk, ins_nir=case.patient.ins_nir, identity=identity(),
                                          consent=consent(), fields={"question": "Question précisée ?"})
    if action == "claim":
        return services.case_claim(actor=actor, case_id=pk)
    if action == "assign":
        return services.case_assign(actor=actor, case_id=pk, expert=cast.colleague)
    if action == "accept":
        return services.case_accept(actor=actor, case_id=pk, due_at=timezone.now() + timedelta(days=3),
                                    patient_informed=True)
    if action == "decline":
        return services.case_decline(actor=actor, case_id=pk, reason="Relève d'une consultation présentielle")
    if action == "request_information":
        return services.case_request_information(actor=actor, case_id=pk, question="Photo en lumière du jour ?")
    if action == "provide_information":
        return services.case_provide_information(actor=actor, case_id=pk, answer="Photo jointe.")
    if action == "transfer":
        return services.case_transfer(actor=actor, case_id=pk, note="Relève d'un autre réseau", network=cast.network)
    if action == "tag":
        return services.case_tag(actor=actor, case_id=pk, tags="à revoir, photo floue")
    if action == "acknowledge":  # only synchronous requests paged to the on-call expert (tests/test_oncall.py)
        return services.case_acknowledge(actor=actor, case_id=pk)
    if action == "close":
        return services.case_close(actor=actor, case_id=pk, usefulness="yes", avoided=["none"])
    if action == "withdraw":
        return services.case_withdraw(actor=actor, case_id=pk, reason="Patient hospitalisé entre-temps")
    data = {"act_at": timezone.now(), "answer": "Naevus bénin.", "conclusion": "Surveillance annuelle.",
            "amendment_reason": "Précision ajoutée"}
    report_save_draft(actor=actor, case_id=pk, data=data)
    return report_sign(actor=actor, case_id=pk)


def test_matrix_names_only_real_actions():
    actions = {t.action for t in TRANSITIONS}
    assert {action for _, action in ALLOWED} <= actions
    assert {s for s, _ in ALLOWED} <= set(STATES)


@pytest.mark.parametrize("state", STATES)
def test_every_action_by_every_role(cast, state):
    case = _case(cast, state)
    for transition in TRANSITIONS:
        allowed = ALLOWED.get((state, transition.action), set())
        if transition.action in REPORT_ACTIONS:  # one report service signs a first version or an amendment
            allowed = set().union(*(ALLOWED.get((state, a), set()) for a in REPORT_ACTIONS))
        for who in PEOPLE:
            if who in allowed:
                continue
            with pytest.raises(WorkflowError) as refused:
                _perform(cast, transition.action, who, case)
            assert str(refused.value), f"{transition.action} by {who} refused without a message"
        case.refresh_from_db()
        assert case.state == (S.SUBMITTED if state == "submitted_named" else state), "a refused action changed it"


@pytest.mark.parametrize(("state", "action", "who"),
                         [(s, a, w) for (s, a), people in ALLOWED.items() for w in sorted(people)])
def test_every_allowed_transition_works(cast, state, action, who):
    case = _case(cast, state)
    _perform(cast, action, who, case)
    case.refresh_from_db()
    if action == "amend_report":
        assert case.state == state and case.report_versions.filter(status="signed").count() == 2
    elif action == "tag":
        assert case.state == _case_state(state) and set(case.tags.values_list("label", flat=True)) == {
            "à revoir", "photo floue"}
    elif action == "answer":
        assert case.state == S.ANSWERED
    else:
        assert case.state == EXPECTED_STATE[action]


def test_information_request_pauses_the_deadline_and_resumes_it(cast):
    case = cast.case_in(S.ACCEPTED)
    expert, requester = cast.actor(cast.expert), cast.actor(cast.requester)
    left_before = case.due_at - timezone.now()
    case = services.case_request_information(actor=expert, case_id=case.pk, question="Bilan thyroïdien ?")
    assert case.state == S.AWAITING_INFORMATION and case.deadline_remaining is not None
    assert not case.is_overdue
    case = services.case_provide_information(actor=requester, case_id=case.pk, answer="TSH normale.")
    assert case.state == S.ACCEPTED and case.deadline_remaining is None
    assert abs((case.due_at - timezone.now()) - left_before) < timedelta(seconds=5)


def test_accept_refuses_a_deadline_beyond_the_maximum(cast, settings):
    from django.core.exceptions import ValidationError

    settings.CASE_MAX_DEADLINE_DAYS = 7
    case = cast.case_in(S.TAKEN)
    with pytest.raises(ValidationError):
        services.case_accept(actor=cast.actor(cast.expert), case_id=case.pk,
                             due_at=timezone.now() + timedelta(days=8), patient_informed=True)
    with pytest.raises(ValidationError):
        services.case_accept(actor=cast.actor(cast.expert), case_id=case.pk,
                             due_at=timezone.now() + timedelta(days=2), patient_informed=False)
    case.refresh_from_db()
    assert case.state == S.TAKEN


def test_refused_consent_blocks_submission_with_its_reason(cast):
    from tests.factories import nir

    case = services.case_create(actor=cast.actor(cast.requester), ins_nir=nir(), identity=identity(),
                                consent=consent("refused"), question="Avis ?", network=cast.network)
    with pytest.raises(WorkflowError, match="refusé"):
        services.case_submit(actor=cast.actor(cast.requester), case_id=case.pk)
    no_consent = services.case_create(actor=cast.actor(cast.requester), ins_nir=nir(), identity=identity(),
                                      consent=None, question="Avis ?", network=cast.network)
    with pytest.raises(WorkflowError, match="consentement"):
        services.case_submit(actor=cast.actor(cast.requester), case_id=no_consent.pk)


def test_claim_after_someone_else_names_who_took_it(cast):
    case = cast.case_in(S.SUBMITTED)
    services.case_claim(actor=cast.actor(cast.expert), case_id=case.pk)
    with pytest.raises(WorkflowError, match="Anne DERMATO"):
        services.case_claim(actor=cast.actor(cast.colleague), case_id=case.pk)


def test_same_submit_token_creates_one_case(cast):
    import uuid

    token = uuid.uuid4()
    first = cast.new_case(submit_token=token)
    second = cast.new_case(submit_token=token)
    assert first.pk == second.pk
    assert Case.objects.filter(submit_token=token).count() == 1


def test_signed_report_never_changes_and_amendment_keeps_old_version(cast):
    from teleexpertise.reports.models import ReportVersion

    case = cast.case_in(S.ANSWERED)
    expert = cast.actor(cast.expert)
    first = ReportVersion.objects.get(case=case)
    report_save_draft(actor=expert, case_id=case.pk, data={"answer": "Corrigé", "conclusion": "Exérèse.",
                                                          "act_at": timezone.now(), "amendment_reason": "Erreur"})
    first.refresh_from_db()
    assert first.status == "signed" and first.conclusion == "Surveillance."
    report_sign(actor=expert, case_id=case.pk)
    versions = list(ReportVersion.objects.filter(case=case).order_by("number"))
    assert [v.number for v in versions] == [1, 2] and all(v.is_signed for v in versions)
    assert versions[0].conclusion == "Surveillance." and versions[1].conclusion == "Exérèse."


def test_pharmacist_request_needs_justification_for_a_prescription(cast):
    from django.core.exceptions import ValidationError

    from tests.factories import make_professional, nir

    pharmacist = make_professional("pharma@test.fr", profession="21", first="Lina", last="Officine")
    case = services.case_create(actor=cast.actor(pharmacist), ins_nir=nir(), identity=identity(), consent=consent(),
                                question="Adapter le traitement ?", expert=cast.expert, send=True)
    expert = cast.actor(cast.expert)
    services.case_accept(actor=expert, case_id=case.pk, due_at=timezone.now() + timedelta(days=1),
                         patient_informed=True)
    report_save_draft(actor=expert, case_id=case.pk, data={"answer": "Oui", "conclusion": "Adapter",
                                                          "treatments": "Dermocorticoïde 2 semaines",
                                                          "act_at": timezone.now()})
    with pytest.raises(ValidationError) as error:
        report_sign(actor=expert, case_id=case.pk)
    assert "prescription_justification" in error.value.error_dict
    case.refresh_from_db()
    assert case.state == S.ACCEPTED


def test_a_patient_created_at_the_same_moment_by_another_request_is_reused(cast, monkeypatch):
    """Two requesters create a request for the same new patient at once: the one whose INSERT loses the race
    takes the record the other made (checked on its identity traits) instead of failing."""
    from django.core.exceptions import ValidationError

    from teleexpertise.patients import services as patients
    from teleexpertise.patients.models import Patient
    from tests.factories import make_patient, nir

    ins = nir()
    theirs = make_patient(ins_nir=ins, birth_name="DURAND", first_names="Marie Claire", sex="F")
    real_first, calls = patients._patient_by_ins.first, []

    def not_yet_committed_on_first_read(**values):  # our read came before their commit
        calls.append(values)
        return None if len(calls) == 1 else real_first(**values)

    monkeypatch.setattr(patients._patient_by_ins, "first", not_yet_committed_on_first_read)
    case = services.case_create(actor=cast.actor(cast.requester), ins_nir=ins, identity=identity(),
                                consent=consent(), question="Avis ?", network=cast.network)
    case.refresh_from_db()
    assert case.patient_id == theirs.pk and case.consent.patient_id == theirs.pk
    assert Patient.objects.filter(ins_nir=ins).count() == 1 and len(calls) == 2
    calls.clear()
    with pytest.raises(ValidationError, match="autres traits"):  # theirs, but not this patient: refused as ever
        services.case_create(actor=cast.actor(cast.requester), ins_nir=ins, identity=identity(first_names="Jean"),
                             consent=consent(), question="Avis ?", network=cast.network)
