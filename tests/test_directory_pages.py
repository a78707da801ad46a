"""Directory search (selector and page) and the administrators' upload of the national directory extract."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from teleexpertise.audit.models import AuditEvent
from teleexpertise.directory.models import DirectoryImport, NetworkMembership, Professional
from teleexpertise.directory.search import professionals_search, search_key
from tests.factories import make_professional

SAMPLE = Path(__file__).parent / "data" / "Extraction_ProSanteConnect_Personne_activite_sample.txt"

pytestmark = pytest.mark.django_db


def names(queryset) -> list[str]:
    return [p.last_name for p in queryset]


@pytest.fixture
def people(cast):
    """Beside the cast: three doctors in two cities and a nurse."""
    made = {
        "lyon": make_professional("a@x.fr", specialty="SM04", first="Élise", last="Dupont-Lévy", user=False),
        "lyon2": make_professional("b@x.fr", specialty="SM15", first="Jean", last="Dupond", user=False),
        "brest": make_professional("c@x.fr", specialty="SM04", first="Marc", last="Durand", user=False),
        "nurse": make_professional("d@x.fr", profession="60", first="Lucie", last="Dupuis", user=False, adeli=True),
    }
    for key, city, department in (("lyon", "Lyon", "69"), ("lyon2", "LYON", "69"), ("brest", "Brest", "29"),
                                  ("nurse", "Lyon", "69")):
        made[key].city, made[key].department = city, department
        made[key].save()
    return made


def test_search_key_drops_accents_case_and_punctuation():
    assert search_key("  Émilie d'Arc-Dupont ") == "EMILIE D ARC DUPONT"


def test_search_by_name_prefix_without_accents_or_case(people):
    assert names(professionals_search(q="dupon")) == ["Dupond", "Dupont-Lévy"]
    assert names(professionals_search(q="DUPONT LEVY")) == ["Dupont-Lévy"]
    assert names(professionals_search(q="zzz")) == []


def test_search_by_profession_specialty_city_department(people):
    assert names(professionals_search(q="du", profession="60")) == ["Dupuis"]
    assert names(professionals_search(specialty="SM04")) == ["Dupont-Lévy", "Durand"]
    assert names(professionals_search(q="du", city="lyon")) == ["Dupond", "Dupont-Lévy", "Dupuis"]
    assert names(professionals_search(department="29")) == ["Durand"]
    assert names(professionals_search(q="du", experts_only=True)) == ["Dupond", "Dupont-Lévy", "Durand"]


def test_search_by_network(cast, people):
    NetworkMembership.objects.create(network=cast.network, professional=people["brest"])
    found = names(professionals_search(network=cast.network))
    assert "Durand" in found and "Dupond" not in found
    assert set(found) == set(cast.network.members.values_list("last_name", flat=True))


def test_the_search_page_lists_matches_and_links_experts_with_an_account_to_a_new_request(cast, client_for, people):
    response = client_for(cast.requester).get(reverse("directory:search"), {"q": "dermato"})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Dermato" in page and f"?expert={cast.expert.pk}" in page
    new = client_for(cast.requester).get(reverse("cases:new"), {"expert": str(cast.expert.pk)})
    assert f'<option value="{cast.expert.pk}" selected>' in new.content.decode()
    response = client_for(cast.requester).get(reverse("directory:search"), {"department": "69", "q": "du"})
    assert "Lucie DUPUIS" in response.content.decode() and "?expert=" not in response.content.decode()  # no accounts


def test_the_search_page_refuses_a_malformed_department_in_french(cast, client_for):
    response = client_for(cast.requester).get(reverse("directory:search"), {"department": "Rhône"})
    assert "Un numéro de département" in response.content.decode()


def test_anonymous_visitors_go_to_login(client):
    response = client.get(reverse("directory:search"), {"q": "a"})
    assert response.status_code == 302 and "/accounts/login" in response["Location"]


def test_only_staff_see_the_import_pages(cast, client_for):
    for name, args in (("directory:imports", []),):
        assert client_for(cast.requester).get(reverse(name, args=args)).status_code == 404
    run = DirectoryImport.objects.create(source_name="x.txt", path="/nonexistent")
    for name in ("directory:import_detail", "directory:import_progress", "directory:import_report"):
        assert client_for(cast.expert).get(reverse(name, args=[run.pk])).status_code == 404


def test_an_administrator_uploads_the_extract_and_follows_its_progress(cast, client_for,
                                                                      django_capture_on_commit_callbacks):
    admin = client_for(cast.admin)
    upload = SimpleUploadedFile("extraction.txt", SAMPLE.read_bytes(), content_type="text/plain")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin.post(reverse("directory:imports"), {"extract": upload})
    run = DirectoryImport.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse("directory:import_detail", args=[run.pk])
    assert (run.status, run.lines, run.created, run.rejected) == ("done", 10, 4, 2)
    assert not Path(run.path).exists()  # the spooled upload is removed once imported
    progress = admin.get(reverse("directory:import_progress", args=[run.pk])).json()
    assert progress | {"percent": 100, "finished": True, "rejected": 2} == progress
    page = admin.get(reverse("directory:import_detail", args=[run.pk])).content.decode()
    assert "clé de contrôle" in page and "<td>10</td>" in page and "<td>11</td>" in page
    report = admin.get(reverse("directory:import_report", args=[run.pk])).content.decode()
    assert report.splitlines()[1].startswith("10;")
    assert AuditEvent.objects.filter(action="directory.import_upload", actor_id=cast.admin.pk).count() == 1
    assert Professional.objects.filter(adeli="012800728", user__isnull=True).exists()


def test_an_empty_upload_is_refused_in_french(cast, client_for):
    upload = SimpleUploadedFile("vide.txt", b"", content_type="text/plain")
    response = client_for(cast.admin).post(reverse("directory:imports"), {"extract": upload})
    assert response.status_code == 400 and not DirectoryImport.objects.exists()
