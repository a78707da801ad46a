"""Races that real users produce: two pool members claiming at once, a double-clicked send."""

import threading
import uuid

import pytest
from django.db import connection, connections

from teleexpertise.cases import services
from teleexpertise.cases.models import Case
from teleexpertise.cases.workflow import WorkflowError
from tests.factories import Cast

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need PostgreSQL")


def _race(functions):
    """Run the functions in threads released together; each returns a result or the exception it raised."""
    barrier = threading.Barrier(len(functions))
    results = [None] * len(functions)

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        except Exception as exc:  # the race's loser is an expected outcome, kept for the asserts
            results[i] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(functions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_pool_members_claim_at_once_exactly_one_wins():
    cast = Cast()
    for _ in range(5):
        case = cast.case_in("submitted")
        members = (cast.expert, cast.colleague)
        results = _race([lambda m=m, pk=case.pk: services.case_claim(actor=cast.actor(m), case_id=pk) for m in members])
        winners = [r for r in results if isinstance(r, Case)]
        losers = [r for r in results if isinstance(r, WorkflowError)]
        assert len(winners) == 1 and len(losers) == 1, results
        case.refresh_from_db()
        assert case.state == Case.State.TAKEN and case.expert_id == winners[0].expert_id
        assert case.expert.display_name in str(losers[0])


@pytest.mark.django_db(transaction=True)
def test_double_submit_creates_one_case():
    cast = Cast()
    token = uuid.uuid4()
    results = _race([lambda: cast.new_case(submit_token=token, patient_ins=None) for _ in range(2)])
    assert all(isinstance(r, Case) for r in results), results
    assert Case.objects.filter(submit_token=token).count() == 1
    assert results[0].pk == results[1].pk
