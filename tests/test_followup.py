"""Closing asks a short survey; FOLLOW_UP_DELAY_DAYS later the requester says what happened; the expert reads it."""

import html
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from huey.contrib.djhuey import HUEY

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import services
from teleexpertise.cases.models import Case, ClosingSurvey, FollowUp
from teleexpertise.cases.tasks import request_due_follow_ups
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.messaging.models import Notification

S = Case.State
FOLLOW_UP_VERB = "Suivi à 6 semaines : dites à l'expert ce qu'il est advenu du patient"
ANSWER = {"advice_followed": "partly", "seen": ["other_specialist", "emergency"],
          "outcome": "Vu en chirurgie plastique ; passage aux urgences pour un saignement, exérèse faite."}


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _closed_days_ago(cast, days: float) -> Case:
    case = cast.case_in(S.CLOSED)
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - timedelta(days=days))
    return case


def _asked(cast) -> Case:
    case = _closed_days_ago(cast, 43)
    assert services.follow_ups_request_due() == 1
    return case


# --- Closing survey -------------------------------------------------------------------------------------

def test_closing_without_the_survey_is_refused_and_keeps_what_was_typed(cast, client_for):
    case = cast.case_in(S.ANSWERED)
    client = client_for(cast.requester)
    url = reverse("cases:action", args=[case.pk, "close"])
    response = client.post(url, {"usefulness": "partly", "technical_incidents": "Photos reçues floues"})
    page = _text(response)
    assert response.status_code == 400
    assert "Rien n'a été enregistré" in page and "Cochez ce qui a été évité, ou « Aucun »." in page
    assert "Photos reçues floues" in page and 'value="partly" required id="id_usefulness_1" checked' in page
    exclusive = client.post(url, {"usefulness": "yes", "avoided": ["none", "visit"]})
    assert exclusive.status_code == 400
    assert "« Aucun » ne peut pas être coché avec une autre réponse." in _text(exclusive)
    case.refresh_from_db()
    assert case.state == S.ANSWERED and not ClosingSurvey.objects.exists()


def test_closing_with_the_survey_stores_and_audits_it_with_the_close(cast, client_for):
    case = cast.case_in(S.ANSWERED)
    client = client_for(cast.requester)
    assert "Grâce à cet avis" in client.get(reverse("cases:action", args=[case.pk, "close"])).content.decode()
    response = client.post(reverse("cases:action", args=[case.pk, "close"]), {
        "usefulness": "yes", "avoided": ["emergency", "hospitalisation"], "technical_incidents": " Coupure réseau "})
    assert response.status_code == 302
    case.refresh_from_db()
    survey = case.closing_survey
    assert case.state == S.CLOSED and survey.answered_by == cast.requester
    assert (survey.usefulness, survey.avoided_visit, survey.avoided_emergency, survey.avoided_hospitalisation,
            survey.technical_incidents) == ("yes", False, True, True, "Coupure réseau")
    event = AuditEvent.objects.get(action="closing_survey.record", case_id=case.pk)
    assert event.actor_id == cast.requester.user.pk and event.object_id == str(survey.pk)
    assert "Passage aux urgences, Hospitalisation" in event.summary
    expert_page = client_for(cast.expert).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Questionnaire de clôture" in expert_page and "Coupure réseau" in expert_page


def test_close_service_refuses_an_incomplete_survey_and_changes_nothing(cast):
    case = cast.case_in(S.ANSWERED)
    actor = cast.actor(cast.requester)
    for bad in ({"usefulness": "", "avoided": ["visit"]}, {"usefulness": "yes", "avoided": []},
                {"usefulness": "yes", "avoided": ["none", "visit"]}, {"usefulness": "yes", "avoided": ["cure"]}):
        with pytest.raises(ValidationError):
            services.case_close(actor=actor, case_id=case.pk, **bad)
    case.refresh_from_db()
    assert case.state == S.ANSWERED and not ClosingSurvey.objects.exists()
    services.case_close(actor=actor, case_id=case.pk, usefulness="no", avoided=["none"])
    assert ClosingSurvey.objects.get(case=case).avoided_labels == ["Aucun"]


# --- The periodic request -------------------------------------------------------------------------------

def test_job_asks_each_due_case_once_and_not_recent_or_stale_ones(cast, django_capture_on_commit_callbacks):
    due = _closed_days_ago(cast, 43)
    recent = _closed_days_ago(cast, 41)
    stale = _closed_days_ago(cast, 100)  # closed before the feature could ask: never asked so late
    declined = cast.case_in(S.DECLINED)  # has a closed_at too, but no opinion to follow up
    Case.objects.filter(pk=declined.pk).update(closed_at=timezone.now() - timedelta(days=43))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert request_due_follow_ups.call_local() == 1
        assert services.follow_ups_request_due() == 0  # a second run (or a second worker) asks nobody again
    assert list(FollowUp.objects.values_list("case_id", flat=True)) == [due.pk]
    assert not FollowUp.objects.filter(case__in=[recent, stale, declined]).exists()
    notification = Notification.objects.get(case=due, verb=FOLLOW_UP_VERB)
    assert notification.recipient == cast.requester.user
    assert [m.to for m in mail.outbox] == [[cast.requester.user.email]]
    assert f"/cases/{due.pk}/" in mail.outbox[0].body and "DURAND" not in mail.outbox[0].body
    assert AuditEvent.objects.filter(action="follow_up.request", case_id=due.pk, actor_id=None).count() == 1
    Case.objects.filter(pk=recent.pk).update(closed_at=timezone.now() - timedelta(days=42, minutes=1))
    assert services.follow_ups_request_due() == 1  # its turn has come


def test_the_job_is_registered_to_run_hourly():
    at = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # the consumer asks in UTC
    runs = [m for m in range(60) if any(isinstance(task, request_due_follow_ups.task_class)
                                        for task in HUEY.read_periodic(at.replace(minute=m)))]
    assert runs == [17]


def test_a_second_worker_racing_for_the_same_case_asks_nothing(cast):
    case = _closed_days_ago(cast, 43)
    stale_view = Case.objects.select_related("requester__user").get(pk=case.pk)
    assert services._follow_up_request(stale_view, timezone.now()) == 1
    assert services._follow_up_request(stale_view, timezone.now()) == 0  # the unique row refused it
    assert FollowUp.objects.filter(case=case).count() == 1
    assert Notification.objects.filter(case=case, verb=FOLLOW_UP_VERB).count() == 1


def test_delay_and_title_follow_the_setting(cast, settings):
    settings.FOLLOW_UP_DELAY_DAYS = 10
    case = _closed_days_ago(cast, 11)
    assert services.follow_ups_request_due() == 1
    assert Notification.objects.get(case=case, verb__startswith="Suivi à 10 jours").recipient == cast.requester.user


# --- The requester's answer -----------------------------------------------------------------------------

def test_requester_sees_the_follow_up_waiting_and_answers_it(cast, client_for):
    case = _asked(cast)
    requester = client_for(cast.requester)
    inbox = requester.get(reverse("cases:inbox"), {"box": "requests"}).content.decode()
    assert "Suivi à renseigner" in inbox
    page = requester.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert reverse("cases:follow_up", args=[case.pk]) in page and "Renseigner le suivi" in page

    url = reverse("cases:follow_up", args=[case.pk])
    half = requester.post(url, {"advice_followed": "yes", "seen": ["none"]})
    assert half.status_code == 400
    assert "Décrivez l'évolution du patient." in _text(half)
    assert 'value="none" id="id_seen_4" checked' in _text(half)
    assert requester.post(url, ANSWER).status_code == 302

    follow_up = FollowUp.objects.get(case=case)
    assert follow_up.is_answered and follow_up.answered_by == cast.requester
    assert (follow_up.advice_followed, follow_up.seen_by_expert, follow_up.seen_by_other_specialist,
            follow_up.seen_in_emergency, follow_up.hospitalised) == ("partly", False, True, True, False)
    assert AuditEvent.objects.filter(action="follow_up.answer", case_id=case.pk,
                                     actor_id=cast.requester.user.pk).count() == 1
    assert Notification.objects.filter(case=case, recipient=cast.expert.user,
                                       verb="suivi du patient renseigné par le requérant").count() == 1
    inbox = requester.get(reverse("cases:inbox"), {"box": "requests"}).content.decode()
    assert "Suivi à renseigner" not in inbox


def test_the_answer_is_given_once(cast, client_for):
    case = _asked(cast)
    services.follow_up_answer(actor=cast.actor(cast.requester), case_id=case.pk, **ANSWER)
    again = client_for(cast.requester).post(reverse("cases:follow_up", args=[case.pk]),
                                            {**ANSWER, "outcome": "Réécrit"})
    assert again.status_code == 403 and "déjà été renseigné" in _text(again)
    with pytest.raises(WorkflowError):
        services.follow_up_answer(actor=cast.actor(cast.requester), case_id=case.pk, **{**ANSWER, "outcome": "x"})
    assert FollowUp.objects.get(case=case).outcome == ANSWER["outcome"]


def test_expert_reads_the_answer_on_the_case_page(cast, client_for):
    case = _asked(cast)
    page = client_for(cast.expert).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Suivi à 6 semaines" in page and "en attente de sa réponse" in page
    assert "Renseigner le suivi" not in page
    services.follow_up_answer(actor=cast.actor(cast.requester), case_id=case.pk, **ANSWER)
    page = client_for(cast.expert).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Suivi à 6 semaines" in page and ANSWER["outcome"] in page
    assert "Oui, par un autre spécialiste, Aux urgences" in page and "En partie" in page


@pytest.mark.parametrize("who", ["expert", "colleague", "outsider"])
def test_only_the_requester_answers_and_outsiders_get_404(cast, client_for, who):
    case = _asked(cast)
    client = client_for(getattr(cast, who))
    url = reverse("cases:follow_up", args=[case.pk])
    expected = 403 if who == "expert" else 404  # the expert may read the case, the others may not know of it
    assert client.get(url).status_code == expected
    assert client.post(url, ANSWER).status_code == expected
    with pytest.raises(WorkflowError):
        services.follow_up_answer(actor=cast.actor(getattr(cast, who)), case_id=case.pk, **ANSWER)
    assert not FollowUp.objects.get(case=case).is_answered


def test_no_follow_up_page_before_it_is_asked(cast, client_for):
    case = _closed_days_ago(cast, 10)
    response = client_for(cast.requester).get(reverse("cases:follow_up", args=[case.pk]))
    assert response.status_code == 403 and "Aucun suivi n'est demandé" in _text(response)


def test_default_delay_is_six_weeks():
    assert settings.FOLLOW_UP_DELAY_DAYS == 42
