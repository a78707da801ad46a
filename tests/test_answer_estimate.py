"""The expected answer time shown before sending: median of the last 30 days and queue, from live data."""

from datetime import timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from teleexpertise.cases.estimates import answer_estimate
from teleexpertise.cases.models import Case
from tests.test_journey_http import _request_form


def _answered(cast, hours: float, days_ago: float = 1):
    """An answered case sent `hours` before its answer, answered `days_ago` days ago."""
    case = cast.case_in("answered")
    answered = timezone.now() - timedelta(days=days_ago)
    Case.objects.filter(pk=case.pk).update(answered_at=answered, submitted_at=answered - timedelta(hours=hours))
    return case


def test_too_few_answered_cases_give_a_plain_sentence(cast):
    for hours in (2, 3, 4, 5):
        _answered(cast, hours)
    cast.new_case()
    estimate = answer_estimate(network=cast.network)
    assert estimate.median is None and estimate.answered == 4 and estimate.queue == 1
    assert estimate.sentence() == ("Pas encore assez de demandes répondues ces 30 derniers jours pour estimer le "
                                   "délai de réponse (4 sur 5 nécessaires). 1 demande en attente.")


def test_the_median_of_the_last_30_days_and_the_queue(cast):
    for hours in (2, 10, 20, 30, 100):
        _answered(cast, hours)
    _answered(cast, 1, days_ago=31)  # out of the window
    cast.new_case()
    cast.case_in("taken")
    with CaptureQueriesContext(connection) as queries:
        estimate = answer_estimate(network=cast.network)
    assert len(queries) == 2  # whatever the number of cases
    assert estimate.median == timedelta(hours=20) and estimate.answered == 5 and estimate.queue == 2
    assert estimate.sentence() == ("Délai de réponse habituel : environ 20 heures (médiane des 5 demandes répondues "
                                   "ces 30 derniers jours). 2 demandes en attente.")


def test_an_experts_own_figures_count_only_their_cases(cast):
    for hours in (50, 60, 70, 80, 90):
        _answered(cast, hours)  # all answered by cast.expert (case_in claims with the expert)
    estimate = answer_estimate(expert=cast.colleague)
    assert estimate.answered == 0 and estimate.queue == 0
    assert "Aucune demande en attente." in estimate.sentence()
    assert "environ 3 jours" in answer_estimate(expert=cast.expert).sentence()


def test_the_estimate_is_shown_before_sending(cast, client_for):
    for hours in (2, 3, 4, 5, 6):
        _answered(cast, hours)
    client = client_for(cast.requester)
    page = client.post(reverse("cases:new"), {**_request_form(cast), "refresh": "1"}).content.decode()
    assert "Délai de réponse attendu" in page and "environ 4 heures" in page
    draft = cast.new_case(send=False)
    assert "environ 4 heures" in client.get(reverse("cases:detail", args=[draft.pk])).content.decode()
    assert "environ 4 heures" in client.get(reverse("cases:action", args=[draft.pk, "submit"])).content.decode()
