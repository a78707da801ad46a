"""Every event that needs someone's action notifies exactly the right people, in the app and by an e-mail that
carries the case reference and a link, and nothing clinical (no patient name, no question, no report text)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from teleexpertise.cases import services
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import NetworkMembership
from teleexpertise.messaging.models import Notification
from teleexpertise.reports.services import report_save_draft, report_sign

S = Case.State
QUESTION = "Lésion pigmentée du dos évolutive : exérèse ?"
REPORT = {"answer": "Naevus dysplasique probable.", "conclusion": "Exérèse programmée sous un mois."}


def _sign(cast, case, **extra):
    expert = cast.actor(cast.expert)
    report_save_draft(actor=expert, case_id=case.pk, data={"act_at": timezone.now(), **REPORT, **extra})
    report_sign(actor=expert, case_id=case.pk)


def _pool_submit(cast):
    # The requester also belongs to the network: they must not be told about their own request.
    NetworkMembership.objects.create(network=cast.network, professional=cast.requester)
    case = cast.new_case(send=False)
    return case, lambda: services.case_submit(actor=cast.actor(cast.requester), case_id=case.pk)


def _named_submit(cast):
    case = cast.new_case(send=False, to_network=False)
    return case, lambda: services.case_submit(actor=cast.actor(cast.requester), case_id=case.pk)


def _on(state, act):
    """An event on a case brought to `state`: `act(cast, case)` performs it."""
    def prepare(cast):
        case = cast.case_in(state)
        return case, lambda: act(cast, case)
    return prepare


def _transfer_to_network(cast):
    case = cast.new_case(to_network=False)
    return case, lambda: services.case_transfer(actor=cast.actor(cast.expert), case_id=case.pk,
                                                note="Relève de la file", network=cast.network)


def _follow_up_asked(cast):
    case = cast.case_in(S.CLOSED)
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - timedelta(days=43))
    return case, services.follow_ups_request_due


def _follow_up_answered(cast):
    case, ask = _follow_up_asked(cast)
    ask()
    return case, lambda: services.follow_up_answer(
        actor=cast.actor(cast.requester), case_id=case.pk, advice_followed="yes", seen=["by_expert"],
        outcome="Exérèse faite, histologie bénigne.")


EVENTS = {  # event -> (prepare(cast) -> (case, act), who is notified)
    "new case to a named expert": (_named_submit, {"expert"}),
    "new case in a pool": (_pool_submit, {"expert", "colleague", "dispatcher"}),
    "claimed": (_on(S.SUBMITTED, lambda c, case: services.case_claim(actor=c.actor(c.expert), case_id=case.pk)),
                {"requester"}),
    "assigned": (_on(S.SUBMITTED, lambda c, case: services.case_assign(
        actor=c.actor(c.dispatcher), case_id=case.pk, expert=c.colleague)), {"colleague", "requester"}),
    "information requested": (_on(S.TAKEN, lambda c, case: services.case_request_information(
        actor=c.actor(c.expert), case_id=case.pk, question="Photo en lumière du jour ?")), {"requester"}),
    "information provided": (_on(S.AWAITING_INFORMATION, lambda c, case: services.case_provide_information(
        actor=c.actor(c.requester), case_id=case.pk, answer="Photo jointe.")), {"expert"}),
    "accepted with a deadline": (_on(S.TAKEN, lambda c, case: services.case_accept(
        actor=c.actor(c.expert), case_id=case.pk, due_at=timezone.now() + timedelta(days=2),
        patient_informed=True)), {"requester"}),
    "report signed": (_on(S.ACCEPTED, _sign), {"requester"}),
    "report amended": (_on(S.CLOSED, lambda c, case: _sign(c, case, amendment_reason="Marges précisées")),
                       {"requester"}),
    "declined": (_on(S.TAKEN, lambda c, case: services.case_decline(
        actor=c.actor(c.expert), case_id=case.pk, reason="Relève d'une consultation")), {"requester"}),
    "transferred to an expert": (_on(S.TAKEN, lambda c, case: services.case_transfer(
        actor=c.actor(c.expert), case_id=case.pk, note="Plus compétent", expert=c.colleague)),
        {"colleague", "requester"}),
    "transferred to a network": (_transfer_to_network, {"colleague", "dispatcher", "requester"}),
    "withdrawn": (_on(S.TAKEN, lambda c, case: services.case_withdraw(
        actor=c.actor(c.requester), case_id=case.pk, reason="Patient vu entre-temps")), {"expert"}),
    "message": (_on(S.TAKEN, lambda c, case: services.case_post_message(
        actor=c.actor(c.expert), case_id=case.pk, body="Merci pour ces éléments.")), {"requester"}),
    "follow-up asked": (_follow_up_asked, {"requester"}),
    "follow-up answered": (_follow_up_answered, {"expert"}),
}


@pytest.mark.parametrize("event", EVENTS)
def test_event_notifies_the_right_people_in_the_app_and_by_a_link_only_e_mail(
        cast, django_capture_on_commit_callbacks, event):
    prepare, expected = EVENTS[event]
    case, act = prepare(cast)
    before = set(Notification.objects.values_list("pk", flat=True))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        act()

    new = Notification.objects.exclude(pk__in=before).filter(case=case)
    users = {who: getattr(cast, who).user for who in ("requester", "expert", "colleague", "dispatcher", "outsider")}
    notified = {who for who, user in users.items() if new.filter(recipient=user).exists()}
    assert notified == expected
    assert new.count() == len(expected), list(new.values_list("recipient__email", "verb"))

    # The signed report's own delivery (PDF attached, tests/test_report_delivery.py) is not a notification.
    notices = [m for m in mail.outbox if not m.attachments]
    assert sorted(m.to[0] for m in notices) == sorted(users[who].email for who in expected)
    link = settings.SITE_URL.rstrip("/") + f"/cases/{case.pk}/"
    patient = case.patient
    clinical = [patient.birth_name, patient.first_names, *patient.first_names.split(), QUESTION, "Lésion",
                REPORT["answer"], REPORT["conclusion"], "Photo", "Exérèse"]
    for message in notices:
        assert len(message.to) == 1 and link in message.body and case.reference in message.body
        for text in clinical:
            assert text.lower() not in message.subject.lower(), (text, message.subject)
            assert text.lower() not in message.body.lower(), (text, message.body)
