"""The weekly on-call rota of a network: dispatchers edit it, members read it, nobody else knows it exists."""

import html
from datetime import time

from django.urls import reverse

from teleexpertise.audit.models import AuditEvent
from teleexpertise.directory.models import OnCallShift


def _text(response) -> str:
    return html.unescape(response.content.decode())


def _shift(cast, **overrides) -> dict:
    data = {"weekday": "0", "starts_at": "08:00", "ends_at": "18:00", "expert": cast.expert.pk,
            "backup": cast.colleague.pk}
    data.update(overrides)
    return data


def test_the_dispatcher_adds_and_removes_slots(cast, client_for):
    client = client_for(cast.dispatcher)
    url = reverse("directory:rota", args=[cast.network.pk])
    assert client.post(url, _shift(cast)).status_code == 302
    shift = OnCallShift.objects.get(network=cast.network)
    assert (shift.weekday, shift.starts_at, shift.ends_at, shift.expert, shift.backup) == (
        0, time(8), time(18), cast.expert, cast.colleague)
    page = _text(client.get(url))
    assert "lundi" in page and "08:00–18:00" in page and "Dr Anne DERMATO" in page
    event = AuditEvent.objects.get(action="oncall_shift.add")
    assert event.actor_id == cast.dispatcher.user.pk and "lundi 08:00–18:00" in event.summary
    assert client.post(reverse("directory:rota_remove", args=[cast.network.pk, shift.pk])).status_code == 302
    assert not OnCallShift.objects.exists()
    assert AuditEvent.objects.filter(action="oncall_shift.remove", actor_id=cast.dispatcher.user.pk).count() == 1


def test_overlapping_slots_are_refused_with_the_one_they_clash_with(cast, client_for):
    client = client_for(cast.dispatcher)
    url = reverse("directory:rota", args=[cast.network.pk])
    assert client.post(url, _shift(cast, weekday="6", starts_at="20:00", ends_at="08:00")).status_code == 302
    clash = client.post(url, _shift(cast, weekday="0", starts_at="07:00", ends_at="12:00", expert=cast.colleague.pk,
                                    backup=""))
    assert clash.status_code == 400
    assert "chevauche celui du dimanche 20:00–08:00 (Dr Anne DERMATO)" in _text(clash)
    assert 'value="07:00"' in _text(clash)  # what was typed is kept
    assert client.post(url, _shift(cast, weekday="0", starts_at="08:00", ends_at="12:00")).status_code == 302
    assert OnCallShift.objects.count() == 2


def test_only_doctors_of_the_network_and_distinct_backups(cast, client_for):
    client = client_for(cast.dispatcher)
    url = reverse("directory:rota", args=[cast.network.pk])
    assert client.post(url, _shift(cast, expert=cast.outsider.pk)).status_code == 400  # not in the choices
    same = client.post(url, _shift(cast, backup=cast.expert.pk))
    assert same.status_code == 400 and "Le suppléant doit être une autre personne" in _text(same)
    empty = client.post(url, _shift(cast, ends_at="08:00"))
    assert empty.status_code == 400 and "La fin du créneau doit différer de son début." in _text(empty)
    assert not OnCallShift.objects.exists()


def test_members_read_outsiders_get_404(cast, client_for):
    url = reverse("directory:rota", args=[cast.network.pk])
    client_for(cast.dispatcher).post(url, _shift(cast))
    member = client_for(cast.colleague)
    page = member.get(url)
    assert page.status_code == 200 and "Ajouter un créneau" not in _text(page)
    assert member.post(url, _shift(cast, weekday="3")).status_code == 404
    shift = OnCallShift.objects.get()
    assert member.post(reverse("directory:rota_remove", args=[cast.network.pk, shift.pk])).status_code == 404
    for who in (cast.outsider, cast.requester):
        assert client_for(who).get(url).status_code == 404
    assert OnCallShift.objects.count() == 1


def test_the_pool_links_to_the_rota(cast, client_for):
    page = _text(client_for(cast.dispatcher).get(reverse("cases:inbox"), {"box": "pool"}))
    assert reverse("directory:rota", args=[cast.network.pk]) in page
