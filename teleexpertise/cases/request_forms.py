"""Which structured form a request uses, its answers on the case, and what the request still lacks.

The FHIR work is in `questionnaires`; this module binds it to cases and their recipients.
"""

import uuid

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from teleexpertise.cases import questionnaires
from teleexpertise.cases.models import Case, RequestForm
from teleexpertise.core.compiled import CompiledQuery


def _active_forms():
    return RequestForm.objects.filter(is_active=True).order_by("title", "pk")


# Read on every request created or readdressed: compiled once (core/compiled.py).
_network_forms = CompiledQuery(lambda network: _active_forms().filter(networks=network), network=uuid.UUID)
_specialty_forms = CompiledQuery(lambda specialty: _active_forms().filter(specialty_id=specialty), specialty=str)


def request_form_for(*, network=None, expert=None) -> RequestForm | None:
    """A network's own active form; for a named expert, the active form of the expert's specialty."""
    if network is not None:
        forms = _network_forms.all(network=network.pk)
    elif expert is not None and expert.specialty_id:
        forms = _specialty_forms.all(specialty=expert.specialty_id)
    else:
        return None
    return forms[0] if forms else None


def form_changes(*, network, expert, answers: dict | None, case: Case | None = None) -> dict:
    """The case fields for the recipient's form and these answers (`None`: keep the case's answers)."""
    form = request_form_for(network=network, expert=expert)
    if form is None:
        return {"request_form": None, "questionnaire_response": {}}
    if answers is None:
        answers = questionnaires.answers_of(case.questionnaire_response) if case is not None else {}
        known = {item["linkId"] for item in questionnaires.answerable_items(form.questionnaire)}
        answers = {k: v for k, v in answers.items() if k in known}  # a change of recipient drops foreign answers
    response = questionnaires.build_response(form.questionnaire, answers, complete=False)
    return {"request_form": form, "questionnaire_response": response}


def missing_for(case: Case, form: RequestForm | None) -> list[str]:
    """What this case lacks for `form` (answers given to another form do not count)."""
    if form is None:
        return []
    answers = questionnaires.answers_of(case.questionnaire_response) if case.request_form_id == form.pk else {}
    kinds = set(case.documents.exclude(attached_to="report").values_list("kind", flat=True))
    return questionnaires.missing_items(form.questionnaire, answers, kinds)


def blocks(form: RequestForm | None, case: Case) -> bool:
    """Only a network's form may refuse sending: a named expert's specialty form is advice."""
    return form is not None and form.blocks_incomplete and case.network_id is not None and case.expert_id is None


def check_complete(case: Case) -> RequestForm | None:
    """Raise a ValidationError listing what is missing when the recipient's form forbids sending it so."""
    form = request_form_for(network=case.network, expert=case.expert)
    missing = missing_for(case, form)
    if missing and blocks(form, case):
        raise ValidationError([_("La demande est incomplète : le réseau %(to)s demande les éléments suivants "
                                 "avant l'envoi.") % {"to": case.network.name}, *missing], code="incomplete")
    return form


def completed_response(case: Case, form: RequestForm | None) -> dict:
    """The stored response marked completed when it answers the form in force (FHIR status)."""
    response = dict(case.questionnaire_response or {})
    if form is not None and case.request_form_id == form.pk and response:
        response["status"] = "completed"
    return response
