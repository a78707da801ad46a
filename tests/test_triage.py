"""Triage in the pool: the queue's order, free tags, the members' load, assignment and transfer by the dispatcher."""

import html
import re
from datetime import timedelta

from django.urls import reverse

from teleexpertise.cases import deadlines, services
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Network

S = Case.State


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _pool(client, **params) -> str:
    response = client.get(reverse("cases:inbox"), {"box": "pool", **params})
    assert response.status_code == 200
    return _text(response)


def _order(page, cases) -> list:
    positions = {case.reference: page.index(case.reference) for case in cases if case.reference in page}
    return sorted(positions, key=positions.get)


def test_pool_lists_urgent_first_then_oldest_first(cast, client_for):
    old = cast.new_case()
    new = cast.new_case()
    urgent = cast.new_case(priority="urgent")
    Case.objects.filter(pk=old.pk).update(submitted_at=old.submitted_at - timedelta(hours=5))
    page = _pool(client_for(cast.dispatcher))
    assert _order(page, [old, new, urgent]) == [urgent.reference, old.reference, new.reference]


def test_members_and_dispatchers_tag_a_pooled_case_and_filter_the_queue_by_tag(cast, client_for):
    tagged, other = cast.new_case(), cast.new_case()
    for who, tags in ((cast.colleague, "photo floue, à revoir"), (cast.dispatcher, "photo floue, dermato-onco")):
        response = client_for(who).post(reverse("cases:action", args=[tagged.pk, "tag"]), {"tags": tags})
        assert response.status_code == 302
    assert set(tagged.tags.values_list("label", flat=True)) == {"photo floue", "dermato-onco"}
    page = _pool(client_for(cast.expert))
    assert "dermato-onco" in page
    filtered = _pool(client_for(cast.expert), tag="dermato-onco")
    assert tagged.reference in filtered and other.reference not in filtered
    form = client_for(cast.expert).get(reverse("cases:action", args=[tagged.pk, "tag"]))
    assert 'value="dermato-onco, photo floue"' in _text(form)  # the form starts from the current tags


def test_tags_are_refused_to_the_requester_and_hidden_from_outsiders(cast, client_for):
    case = cast.new_case()
    url = reverse("cases:action", args=[case.pk, "tag"])
    assert client_for(cast.requester).post(url, {"tags": "x"}).status_code == 403
    assert client_for(cast.outsider).post(url, {"tags": "x"}).status_code == 404
    assert not case.tags.exists()


def test_too_long_a_tag_is_refused_and_the_input_kept(cast, client_for):
    case = cast.new_case()
    response = client_for(cast.dispatcher).post(reverse("cases:action", args=[case.pk, "tag"]),
                                                {"tags": "ok, " + "x" * 41})
    assert response.status_code == 400
    assert "Au plus 10 étiquettes de 40 caractères" in _text(response) and "x" * 41 in _text(response)
    assert not case.tags.exists()


def test_the_pool_shows_each_members_load_and_the_assign_form_too(cast, client_for):
    cast.case_in(S.TAKEN)  # the expert holds one open case
    cast.case_in(S.CLOSED)  # a closed one is no load
    pooled = cast.new_case()
    page = _pool(client_for(cast.dispatcher))
    load = page[page.index("Charge des membres"):]
    rows = dict(re.findall(r"<td>Dr ([^<]+)</td><td>(\d+)</td>", load))
    assert rows == {"Anne DERMATO": "1", "Luc COLLÈGUE": "0"}  # the dispatcher (a nurse) takes no case
    form = _text(client_for(cast.dispatcher).get(reverse("cases:action", args=[pooled.pk, "assign"])))
    assert "Anne DERMATO, Dermatologie et Vénéréologie — CHU de Test — demandes en cours : 1" in form
    assert "Luc COLLÈGUE, Dermatologie et Vénéréologie — CHU de Test — demandes en cours : 0" in form


def test_the_dispatcher_assigns_or_transfers_a_pooled_case(cast, client_for):
    client = client_for(cast.dispatcher)
    assigned, moved = cast.new_case(), cast.new_case()
    response = client.post(reverse("cases:action", args=[assigned.pk, "assign"]), {"expert": cast.colleague.pk})
    assert response.status_code == 302
    assigned.refresh_from_db()
    assert (assigned.state, assigned.expert) == (S.TAKEN, cast.colleague)
    plastic = Network.objects.create(name="Chirurgie plastique", specialty_id="SM15")
    response = client.post(reverse("cases:action", args=[moved.pk, "transfer"]),
                           {"network": plastic.pk, "note": "Relève de la chirurgie plastique"})
    assert response.status_code == 302
    moved.refresh_from_db()
    assert (moved.state, moved.network, moved.expert) == (S.SUBMITTED, plastic, None)
    assert client.get(reverse("cases:detail", args=[moved.pk])).status_code == 404  # out of their pool now


def test_an_escalated_case_is_marked_in_the_queue(cast, client_for):
    case = cast.new_case()
    assert "Régulateurs alertés" not in _pool(client_for(cast.dispatcher))
    deadlines.pool_cases_escalate(now=case.submitted_at + timedelta(hours=25))
    assert "Régulateurs alertés" in _pool(client_for(cast.dispatcher))


def test_the_expert_tags_their_own_case(cast):
    case = cast.case_in(S.ACCEPTED)
    services.case_tag(actor=cast.actor(cast.expert), case_id=case.pk, tags=" relire ,relire, ")
    assert list(case.tags.values_list("label", flat=True)) == ["relire"]
    services.case_tag(actor=cast.actor(cast.expert), case_id=case.pk, tags="")
    assert not case.tags.exists()
