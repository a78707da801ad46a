"""Structured request forms as FHIR R4B: a `Questionnaire` per specialty or network, answers as a
`QuestionnaireResponse`, and the completeness check that runs before a request is sent.

Pure functions over JSON (no database): the model keeps the JSON, the services decide. Documents a form requires
are an extension on the Questionnaire (`REQUIRED_DOCUMENT_KIND`, `valueCode` = a `documents.Document.Kind`), one
extension per kind: "at least one document of this kind attached to the request".
"""

from collections.abc import Iterator
from datetime import date
from decimal import Decimal

from django import forms
from django.apps import apps
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

REQUIRED_DOCUMENT_KIND = "https://teleexpertise.fr/fhir/StructureDefinition/required-document-kind"
FIELD_PREFIX = "q_"  # form field name = prefix + linkId, apart from the request form's own fields

# Item types this platform renders; others are refused when the form is saved rather than silently skipped.
ANSWER_TYPES = {"string", "text", "integer", "decimal", "boolean", "date", "choice"}
SUPPORTED_TYPES = ANSWER_TYPES | {"group", "display"}


# --- Validation (admin save) -----------------------------------------------------------------------------

def validate_questionnaire(data) -> None:
    """Raise a French ValidationError listing every problem: FHIR R4B structure first, then our own rules."""
    if not isinstance(data, dict) or data.get("resourceType") != "Questionnaire":
        raise ValidationError(_("Le formulaire doit être une ressource FHIR « Questionnaire » (JSON)."))
    try:
        Questionnaire.model_validate(data)
    except ValueError as exc:  # pydantic's ValidationError (fhir.resources' models) is a ValueError
        errors = exc.errors() if hasattr(exc, "errors") else [{"loc": (), "msg": str(exc)}]
        raise ValidationError([_("Questionnaire FHIR invalide : %(where)s — %(error)s")
                               % {"where": ".".join(str(p) for p in err["loc"]), "error": err["msg"]}
                               for err in errors]) from None
    problems = _item_problems(data.get("item") or []) + _extension_problems(data)
    if problems:
        raise ValidationError(problems)


def _item_problems(items: list) -> list[str]:
    problems, seen = [], set()
    for item in _walk(items):
        link_id, kind = item["linkId"], item.get("type")
        if link_id in seen:
            problems.append(_("L'identifiant « %(id)s » est utilisé deux fois.") % {"id": link_id})
        seen.add(link_id)
        if kind not in SUPPORTED_TYPES:
            problems.append(_("Élément « %(id)s » : le type « %(type)s » n'est pas pris en charge.")
                            % {"id": link_id, "type": kind})
        if kind == "choice" and not item.get("answerOption"):
            problems.append(_("Élément « %(id)s » : une question à choix doit lister ses réponses (answerOption).")
                            % {"id": link_id})
        if item.get("enableWhen"):
            problems.append(_("Élément « %(id)s » : les conditions d'affichage (enableWhen) ne sont pas prises "
                              "en charge.") % {"id": link_id})
    return problems


def _extension_problems(data: dict) -> list[str]:
    known = set(document_kinds())
    return [_("Type de document requis inconnu : « %(kind)s ».") % {"kind": code}
            for code in required_document_kinds(data) if code not in known]


def document_kinds() -> dict:
    """{code: label} of documents.Document.Kind, read through the app registry: documents depends on cases."""
    return dict(apps.get_model("documents", "Document").Kind.choices)


# --- Reading a Questionnaire ---------------------------------------------------------------------------

def _walk(items: list) -> Iterator[dict]:
    for item in items:
        yield item
        yield from _walk(item.get("item") or [])


def answerable_items(questionnaire: dict) -> list[dict]:
    return [item for item in _walk(questionnaire.get("item") or []) if item.get("type") in ANSWER_TYPES]


def required_document_kinds(questionnaire: dict) -> list[str]:
    return [ext.get("valueCode", "") for ext in questionnaire.get("extension") or []
            if ext.get("url") == REQUIRED_DOCUMENT_KIND]


def _options(item: dict) -> list[tuple[str, str]]:
    """(code, label) of a choice item; valueCoding or valueString options."""
    options = []
    for option in item.get("answerOption") or []:
        if "valueCoding" in option:
            coding = option["valueCoding"]
            options.append((coding.get("code", ""), coding.get("display") or coding.get("code", "")))
        elif "valueString" in option:
            options.append((option["valueString"], option["valueString"]))
    return options


# --- Django form fields ---------------------------------------------------------------------------------

_REQUIRED_HELP = gettext_lazy("Obligatoire pour envoyer la demande.")


def form_fields(questionnaire: dict) -> dict[str, forms.Field]:
    """One Django field per answerable item. None is required by the form itself: a draft may be incomplete;
    completeness is the service's check at sending."""
    return {FIELD_PREFIX + item["linkId"]: _field(item) for item in answerable_items(questionnaire)}


def _field(item: dict) -> forms.Field:
    label = item.get("text") or item["linkId"]
    common = {"label": label, "required": False, "help_text": _REQUIRED_HELP if item.get("required") else ""}
    kind = item["type"]
    if kind == "text":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, **common)
    if kind == "integer":
        return forms.IntegerField(**common)
    if kind == "decimal":
        return forms.DecimalField(max_digits=12, decimal_places=3, **common)
    if kind == "date":
        return forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), **common)
    if kind == "boolean":
        return forms.TypedChoiceField(choices=[("", "—"), ("true", _("Oui")), ("false", _("Non"))],
                                      coerce=lambda v: v == "true", empty_value=None, **common)
    if kind == "choice":
        return forms.ChoiceField(choices=[("", "—"), *_options(item)], **common)
    return forms.CharField(max_length=1000, **common)


def answers_from_form(questionnaire: dict, cleaned_data: dict) -> dict:
    """{linkId: value} of the answered items of a valid form."""
    answers = {}
    for item in answerable_items(questionnaire):
        value = cleaned_data.get(FIELD_PREFIX + item["linkId"])
        if value not in (None, ""):
            answers[item["linkId"]] = value
    return answers


def initial_from_answers(answers: dict) -> dict:
    """Form initial values from stored answers (booleans as the "true"/"false" choices)."""
    return {FIELD_PREFIX + k: ("true" if v else "false") if isinstance(v, bool) else v for k, v in answers.items()}


# --- QuestionnaireResponse ------------------------------------------------------------------------------

def canonical(questionnaire: dict) -> str:
    url = questionnaire.get("url") or ""
    version = questionnaire.get("version")
    return f"{url}|{version}" if url and version else url


def build_response(questionnaire: dict, answers: dict, *, complete: bool) -> dict:
    """The QuestionnaireResponse of `answers` ({linkId: python value}), nested like the Questionnaire and
    validated by fhir.resources; unknown linkIds are refused."""
    known = {item["linkId"] for item in answerable_items(questionnaire)}
    unknown = set(answers) - known
    if unknown:
        raise ValidationError(_("Réponse à une question inconnue : %(ids)s.") % {"ids": ", ".join(sorted(unknown))},
                              code="unknown_item")
    response = {"resourceType": "QuestionnaireResponse", "status": "completed" if complete else "in-progress",
                "item": _response_items(questionnaire.get("item") or [], answers)}
    if canonical(questionnaire):
        response["questionnaire"] = canonical(questionnaire)
    QuestionnaireResponse.model_validate(response)
    return response


def _response_items(items: list, answers: dict) -> list[dict]:
    out = []
    for item in items:
        if item.get("type") == "group":
            children = _response_items(item.get("item") or [], answers)
            if children:
                out.append({"linkId": item["linkId"], "text": item.get("text", ""), "item": children})
        elif item.get("type") in ANSWER_TYPES and item["linkId"] in answers:
            out.append({"linkId": item["linkId"], "text": item.get("text", ""),
                        "answer": [_answer_value(item, answers[item["linkId"]])]})
    return out


def _answer_value(item: dict, value) -> dict:
    kind = item["type"]
    if kind == "boolean":
        return {"valueBoolean": bool(value)}
    if kind == "integer":
        return {"valueInteger": int(value)}
    if kind == "decimal":
        return {"valueDecimal": float(Decimal(str(value)))}  # JSON has no decimal type
    if kind == "date":
        return {"valueDate": value.isoformat() if isinstance(value, date) else str(value)}
    if kind == "choice":
        return _choice_value(item, str(value))
    return {"valueString": str(value)}


def _choice_value(item: dict, code: str) -> dict:
    for option in item.get("answerOption") or []:
        if option.get("valueCoding", {}).get("code") == code:
            return {"valueCoding": option["valueCoding"]}
        if option.get("valueString") == code:
            return {"valueString": code}
    raise ValidationError(_("« %(value)s » n'est pas une réponse possible à « %(text)s ».")
                          % {"value": code, "text": item.get("text") or item["linkId"]}, code="choice")


def answers_of(response: dict | None) -> dict:
    """{linkId: python value} back from a stored QuestionnaireResponse."""
    answers = {}
    for item in _walk((response or {}).get("item") or []):
        for answer in item.get("answer") or []:
            answers[item["linkId"]] = _python_value(answer)
    return answers


def _python_value(answer: dict):
    if "valueCoding" in answer:
        return answer["valueCoding"].get("code", "")
    if "valueDate" in answer:
        return date.fromisoformat(answer["valueDate"])
    for key in ("valueBoolean", "valueInteger", "valueDecimal", "valueString"):
        if key in answer:
            return answer[key]
    return None


def answered_rows(questionnaire: dict, response: dict | None) -> list[tuple[str, str]]:
    """(question, answer as shown) for the case page, in the Questionnaire's order."""
    answers, rows = answers_of(response), []
    for item in answerable_items(questionnaire):
        if item["linkId"] not in answers:
            continue
        value = answers[item["linkId"]]
        if item["type"] == "choice":
            value = dict(_options(item)).get(value, value)
        elif item["type"] == "boolean":
            value = _("Oui") if value else _("Non")
        elif item["type"] == "date":
            value = value.strftime("%d/%m/%Y")
        rows.append((item.get("text") or item["linkId"], str(value)))
    return rows


# --- Completeness ---------------------------------------------------------------------------------------

def missing_items(questionnaire: dict, answers: dict, attached_kinds: set[str]) -> list[str]:
    """What a request lacks to be sent, one French sentence per missing item or document kind."""
    missing = [_("Réponse manquante : %(text)s") % {"text": item.get("text") or item["linkId"]}
               for item in answerable_items(questionnaire)
               if item.get("required") and answers.get(item["linkId"]) in (None, "")]
    labels = document_kinds()
    missing += [_("Document manquant : au moins un document de type « %(kind)s »")
                % {"kind": labels.get(kind, kind)}
                for kind in dict.fromkeys(required_document_kinds(questionnaire)) if kind not in attached_kinds]
    return missing
