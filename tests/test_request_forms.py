"""Structured request forms (FHIR Questionnaire) and the completeness check before sending.

The issue's check: a request to a network whose form requires a photo cannot be submitted without one; with it,
it can — through the service and through the pages.
"""

import copy
import json

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases import questionnaires, services
from teleexpertise.cases.models import Case, RequestForm
from teleexpertise.documents.services import document_add
from tests.documents.hostile import jpeg_bytes
from tests.test_journey_http import _request_form

DERM = {
    "resourceType": "Questionnaire", "url": "https://test.example/Questionnaire/derm", "version": "1",
    "status": "active", "title": "Dermatologie (test)",
    "extension": [{"url": questionnaires.REQUIRED_DOCUMENT_KIND, "valueCode": "photo"}],
    "item": [
        {"linkId": "site", "text": "Siège de la lésion", "type": "string", "required": True},
        {"linkId": "duration", "text": "Ancienneté (mois)", "type": "integer"},
        {"linkId": "evolution", "text": "Évolution", "type": "choice", "required": True, "answerOption": [
            {"valueCoding": {"code": "stable", "display": "Stable"}},
            {"valueCoding": {"code": "growing", "display": "En extension"}}]},
    ],
}
ANSWERS = {"site": "Dos", "duration": 3, "evolution": "growing"}


@pytest.fixture
def derm_form(cast):
    form = RequestForm.objects.create(title="Dermatologie (test)", questionnaire=copy.deepcopy(DERM))
    form.networks.add(cast.network)
    return form


def _add_photo(cast, case):
    return document_add(actor=cast.actor(cast.requester), case_id=case.pk, kind="photo",
                        upload=SimpleUploadedFile("lesion.jpg", jpeg_bytes()))


def _submit(cast, case):
    return services.case_submit(actor=cast.actor(cast.requester), case_id=case.pk)


# --- The check of the issue, at the service ------------------------------------------------------------

def test_service_refuses_a_request_without_the_required_photo_and_sends_it_with_one(cast, derm_form):
    draft = cast.new_case(send=False, answers=ANSWERS)
    with pytest.raises(ValidationError) as refused:
        _submit(cast, draft)
    assert refused.value.messages[1:] == ["Document manquant : au moins un document de type « Photo »"]
    assert Case.objects.get(pk=draft.pk).state == Case.State.DRAFT

    _add_photo(cast, draft)
    sent = _submit(cast, draft)
    assert sent.state == Case.State.SUBMITTED
    stored = Case.objects.get(pk=draft.pk)
    assert stored.request_form == derm_form
    assert stored.questionnaire_response["status"] == "completed"
    assert stored.questionnaire_response["questionnaire"] == "https://test.example/Questionnaire/derm|1"
    QuestionnaireResponse.model_validate(stored.questionnaire_response)
    assert questionnaires.answers_of(stored.questionnaire_response) == ANSWERS


def test_each_missing_answer_and_document_is_listed_in_french(cast, derm_form):
    draft = cast.new_case(send=False, answers={"duration": 2})
    with pytest.raises(ValidationError) as refused:
        _submit(cast, draft)
    assert refused.value.messages == [
        "La demande est incomplète : le réseau Dermatologie demande les éléments suivants avant l'envoi.",
        "Réponse manquante : Siège de la lésion", "Réponse manquante : Évolution",
        "Document manquant : au moins un document de type « Photo »"]


def test_sending_at_creation_is_refused_whole_when_incomplete(cast, derm_form):
    before = Case.objects.count()
    with pytest.raises(ValidationError):
        cast.new_case(send=True, answers=ANSWERS)
    assert Case.objects.count() == before  # the draft is not left behind: the caller keeps the form


def test_a_form_that_does_not_block_lets_an_incomplete_request_go(cast, derm_form):
    RequestForm.objects.filter(pk=derm_form.pk).update(blocks_incomplete=False)
    assert cast.new_case(send=True).state == Case.State.SUBMITTED


def test_a_named_experts_specialty_form_is_advice_not_a_barrier(cast, derm_form):
    derm_form.networks.clear()
    RequestForm.objects.exclude(pk=derm_form.pk).update(is_active=False)  # the shipped dermatology form
    RequestForm.objects.filter(pk=derm_form.pk).update(specialty_id="SM15")
    case = cast.new_case(send=True, to_network=False, answers={"site": "Jambe"})
    assert case.state == Case.State.SUBMITTED
    assert questionnaires.answers_of(Case.objects.get(pk=case.pk).questionnaire_response) == {"site": "Jambe"}


def test_an_answer_outside_the_choices_or_an_unknown_item_is_refused(cast, derm_form):
    with pytest.raises(ValidationError, match="n'est pas une réponse possible"):
        cast.new_case(send=False, answers={"evolution": "exploded"})
    with pytest.raises(ValidationError, match="question inconnue"):
        cast.new_case(send=False, answers={"colour": "brown"})


def test_changing_the_recipient_drops_the_answers_of_the_old_form(cast, derm_form):
    draft = cast.new_case(send=False, answers=ANSWERS)
    other = RequestForm.objects.create(title="Autre", questionnaire={**copy.deepcopy(DERM), "item": [
        {"linkId": "site", "text": "Siège", "type": "string"}]})
    derm_form.networks.clear()
    other.networks.add(cast.network)
    case = services.case_update_draft(actor=cast.actor(cast.requester), case_id=draft.pk, ins_nir=draft.patient.ins_nir,
                                      identity={}, consent=None, fields={"question": draft.question})
    assert case.request_form == other
    assert questionnaires.answers_of(case.questionnaire_response) == {"site": "Dos"}


# --- Validation of the Questionnaire an administrator saves ---------------------------------------------

@pytest.mark.parametrize(("change", "message"), [
    ({"resourceType": "Patient"}, "ressource FHIR « Questionnaire »"),
    ({"item": [{"text": "sans identifiant", "type": "string"}]}, "Questionnaire FHIR invalide : item.0.linkId"),
    ({"item": [{"linkId": "a", "type": "string"}, {"linkId": "a", "type": "text"}]}, "utilisé deux fois"),
    ({"item": [{"linkId": "a", "type": "attachment"}]}, "n'est pas pris en charge"),
    ({"item": [{"linkId": "a", "type": "choice"}]}, "doit lister ses réponses"),
    ({"extension": [{"url": questionnaires.REQUIRED_DOCUMENT_KIND, "valueCode": "selfie"}]}, "« selfie »"),
])
def test_invalid_questionnaires_are_refused_with_a_french_reason(db, change, message):
    form = RequestForm(title="X", questionnaire={**copy.deepcopy(DERM), **change})
    with pytest.raises(ValidationError) as refused:
        form.full_clean()
    assert any(message in m for m in refused.value.message_dict["questionnaire"]), refused.value.message_dict


def test_admin_adds_a_form_validated_and_audited(cast, client_for):
    client = client_for(cast.admin)
    url = reverse("admin:cases_requestform_add")
    bad = client.post(url, {"title": "Cassé", "questionnaire": '{"resourceType": "Questionnaire", "status": "active",'
                            ' "item": [{"type": "string"}]}', "blocks_incomplete": "on", "is_active": "on"})
    assert bad.status_code == 200 and "Questionnaire FHIR invalide" in bad.content.decode()
    assert not RequestForm.objects.filter(title="Cassé").exists()

    good = client.post(url, {"title": "Dermatologie", "questionnaire": json.dumps(DERM), "networks": [cast.network.pk],
                             "blocks_incomplete": "on", "is_active": "on"})
    assert good.status_code == 302
    form = RequestForm.objects.get(title="Dermatologie")
    assert list(form.networks.all()) == [cast.network]
    assert AuditEvent.objects.filter(action="request_form.save", object_id=str(form.pk)).exists()


# --- The check of the issue, through the pages ----------------------------------------------------------

def test_pages_refuse_sending_without_the_photo_and_send_with_it(cast, client_for, derm_form):
    client = client_for(cast.requester)
    data = _request_form(cast, q_site="Dos", q_duration="3", q_evolution="growing")

    # The chosen network's form appears on the page (refresh keeps what was typed and saves nothing).
    page = client.post(reverse("cases:new"), {**data, "refresh": "1"}).content.decode()
    assert "Siège de la lésion" in page and "au moins un document de type « Photo »" in page
    assert 'value="Dos"' in page and not Case.objects.exists()

    refused = client.post(reverse("cases:new"), {**data, "send": "1"})
    assert refused.status_code == 400
    assert "Document manquant : au moins un document de type « Photo »" in refused.content.decode()
    assert not Case.objects.exists()

    client.post(reverse("cases:new"), {**data, "save": "1"})
    draft = Case.objects.get()
    assert "Document manquant" in client.get(reverse("cases:detail", args=[draft.pk])).content.decode()
    submit = reverse("cases:action", args=[draft.pk, "submit"])
    refused = client.post(submit)
    assert refused.status_code == 400 and "au moins un document de type « Photo »" in refused.content.decode()

    upload = client.post(reverse("documents:upload", args=[draft.pk]),
                         {"kind": "photo", "attached_to": "request",
                          "files": [SimpleUploadedFile("lesion.jpg", jpeg_bytes())]}, HTTP_ACCEPT="application/json")
    assert upload.status_code == 200 and not upload.json()["errors"]
    assert client.post(submit).status_code == 302
    draft.refresh_from_db()
    assert draft.state == Case.State.SUBMITTED

    expert_page = client_for(cast.expert).get(reverse("cases:detail", args=[draft.pk])).content.decode()
    assert "Siège de la lésion" in expert_page and "En extension" in expert_page


# --- The shipped forms ----------------------------------------------------------------------------------

SHIPPED = {"dermatologie": ("SM15", ["photo"]), "cardiologie": ("SM04", ["ecg"]), "ophtalmologie": ("SM38", ["photo"]),
           "orl-audiologie": ("SM34", ["audiogram"]), "nephrologie": ("SM30", []), "hematologie": ("SM21", ["lab"])}


def test_the_migration_ships_six_valid_forms_bound_to_their_specialty(db):
    shipped = RequestForm.objects.filter(questionnaire__url__startswith="https://teleexpertise.fr/")
    forms = {f.questionnaire["id"]: f for f in shipped}
    assert set(forms) == set(SHIPPED)
    for key, (specialty, kinds) in SHIPPED.items():
        form = forms[key]
        form.full_clean()  # valid FHIR R4B and our rules
        assert form.specialty_id == specialty and form.is_active
        assert questionnaires.required_document_kinds(form.questionnaire) == kinds
    items = questionnaires.answerable_items(forms["nephrologie"].questionnaire)
    assert {"creatinine", "egfr", "potassium"} <= {i["linkId"] for i in items if i.get("required")}


def test_a_shipped_cardiology_form_on_a_network_requires_an_ecg(cast):
    form = RequestForm.objects.get(questionnaire__id="cardiologie")
    form.networks.add(cast.network)
    draft = cast.new_case(send=False, answers={"symptoms": "Palpitations", "treatment": "Aucun"})
    with pytest.raises(ValidationError) as refused:
        _submit(cast, draft)
    assert refused.value.messages[1:] == ["Document manquant : au moins un document de type « ECG »"]
