"""The FHIR facade's writes: FHIR input read into the services' arguments, the same services as the web pages and
/api/ called, the resource answered.

- ServiceRequest create: a draft (status draft) or a sent request (active), its subject a contained Patient (or
  one the caller already sees), its consent a contained Consent named in `supportingInfo`. The request's input
  rules are `cases.forms.CaseRequestForm`'s, as on /api/: the FHIR elements become the form's fields, and each
  form error names the element it came from (`expression`).
- ServiceRequest update: a draft rewritten, or sent (draft → active).
- Task update: the expert's and the requester's actions, read from the difference between the Task as it is and
  the Task sent (`_task_steps` is the table); the report is the Task's outputs.
- Communication create: a message in the thread. DocumentReference create: an attachment, its file base64 in
  `attachment.data` (spooled while received, `body`), stored by `documents.services.document_add` so the same
  content checks apply.

Updates are versioned: `If-Match` must carry the ETag read (the case's version); another one answers 412 and none
428, since a Task update is read as a difference, and a difference against a state the client never saw could be
another action than the one meant.
"""

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pydantic
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from fhir.resources.R4B.communication import Communication
from fhir.resources.R4B.consent import Consent as FhirConsent
from fhir.resources.R4B.documentreference import DocumentReference
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from teleexpertise.audit.services import client_ip
from teleexpertise.cases import selectors, services, workflow
from teleexpertise.cases.forms import CaseRequestForm
from teleexpertise.cases.models import Case
from teleexpertise.directory.selectors import experts_selectable, networks_active
from teleexpertise.documents.models import Document
from teleexpertise.documents.services import document_add
from teleexpertise.documents.upload_handlers import EncryptedUploadedFile
from teleexpertise.fhir import exchanges, handlers, resources
from teleexpertise.fhir.body import Body, read_body
from teleexpertise.fhir.handlers import FhirError, parse_id, require_scope
from teleexpertise.messaging.models import Message
from teleexpertise.patients.models import Consent, Patient
from teleexpertise.reports.forms import ReportForm
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import report_draft_for, report_save_draft, report_sign

CASES_WRITE, REPORTS_WRITE = "cases:write", "reports:write"
IDENTITY_STATUS_EXTENSION = f"{resources.EXTENSION}/identity-status"  # provisional | recovered | validated | qualified
BIRTH_PLACE_EXTENSION = f"{resources.EXTENSION}/birth-place-code"  # Patient: the INSEE code of the place of birth
# Consent, as the read side serves it: what the patient was told (interest, practicalities, right-to-refuse), and
# for a consent that could not be collected (status active, no performer) the reason (coding) and its detail (text).
CONSENT_INFORMATION = f"{resources.EXTENSION}/consent-information"
CONSENT_IMPOSSIBLE_REASON = f"{resources.EXTENSION}/consent-impossible-reason"
CONSENT_IMPOSSIBLE_REASONS = f"{resources.PLATFORM_FHIR}/CodeSystem/consent-impossible-reason"
UUID_SYSTEM = "urn:ietf:rfc:3986"  # ServiceRequest.identifier urn:uuid:<uuid>: the placer's id, made idempotent
SEX = {"female": "F", "male": "M", "other": "I", "unknown": "I"}
S = Case.State


@dataclass
class Written:
    """A create or update answer: the resource (None: out of the caller's sight now), status, `Location` path."""

    resource: object | None
    status: int = 200
    location: str = ""


# --- Errors naming the FHIR element (OperationOutcome.issue.expression) ----------------------------------------

def issue(expression: str, message, code: str = "invalid") -> dict:
    return {"code": code, "diagnostics": str(message), "expression": [expression]}


def invalid(issues: list[dict], status: int = 422) -> FhirError:
    return FhirError(status, issues[0]["code"], " ".join(i["diagnostics"] for i in issues), issues)


def from_validation(exc: ValidationError, paths: dict, default: str) -> FhirError:
    """A form's or a service's ValidationError, each message on the element its field or code (`paths`) names."""
    if hasattr(exc, "error_dict"):
        found = [(name, message) for name, errors in exc.error_dict.items() for error in errors
                 for message in error.messages]
    else:
        found = [(error.code, message) for error in exc.error_list for message in error.messages]
    return invalid([issue(paths.get(name) or default, message) for name, message in found])


def _location(root: str, loc) -> str:
    path = root
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validated(model, data: dict, root: str):
    """The input as its R4B model: what is not a valid FHIR resource is refused (400) before anything is read."""
    if not isinstance(data, dict) or data.get("resourceType") != model.__resource_type__:
        raise invalid([issue(f"{root}.resourceType", _("Ressource %(type)s attendue.")
                             % {"type": model.__resource_type__}, "structure")], 400)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise invalid([issue(_location(root, error["loc"]), _("Élément invalide : %(detail)s")
                             % {"detail": error["msg"]}, "structure") for error in exc.errors()], 400) from None
    except (TypeError, KeyError, AttributeError):  # fhir_core's own checks trip on some malformed input (a
        # contained resource whose resourceType is a list) instead of reporting it
        raise invalid([issue(root, _("Ressource mal formée : un élément n'a pas le type attendu."), "structure")],
                      400) from None


def _resource_body(request, model, pk: str | None = None) -> dict:
    """A small body (no files): the resource, validated; an update's id must be the URL's."""
    body = read_body(request)
    body.discard()  # a `data` member has no place here: its file, if any, is dropped
    validated(model, body.resource, model.__resource_type__)
    if pk is not None and body.resource.get("id") != pk:
        raise invalid([issue(f"{model.__resource_type__}.id", _("L'id de la ressource doit être celui de l'URL."),
                             "invariant")], 400)
    return body.resource


def _run(run: Callable, paths: dict, default: str):
    try:
        return run()
    except ValidationError as exc:
        raise from_validation(exc, paths, default) from None


def _reference_id(reference: str | None, resource_type: str):
    """The UUID of `<Type>/<uuid>`, or None."""
    prefix = f"{resource_type}/"
    if not reference or not reference.startswith(prefix):
        return None
    try:
        return uuid.UUID(reference[len(prefix):])
    except ValueError:
        return None


# --- Versions ------------------------------------------------------------------------------------------------

_ETAG = re.compile(r'(?:W/)?"([^"]*)"')


def check_version(request, case) -> None:
    """If-Match must name the case's current version (ETag `W/"<n>"`, or the bare version)."""
    raw = request.headers.get("If-Match", "").strip()
    if not raw:
        raise FhirError(428, "required", _("En-tête If-Match obligatoire : renvoyez l'ETag de votre lecture "
                                           "(W/\"<version>\")."))
    match = _ETAG.fullmatch(raw)
    if (match.group(1) if match else raw) != resources.version_of(case):
        raise FhirError(412, "conflict", _("La ressource a changé depuis votre lecture (version actuelle : "
                                           "%(version)s) : relisez-la puis recommencez.")
                        % {"version": resources.version_of(case)})


# --- ServiceRequest: the request, with its patient and consent ------------------------------------------------

_PATIENT_PATHS = {"ins_nir": "identifier", "birth_name": "name", "used_name": "name", "first_names": "name",
                  "sex": "gender", "birth_date": "birthDate", "birth_place_code": "extension",
                  "identity_status": "extension", "treating_doctor": "generalPractitioner",
                  "treating_doctor_name": "generalPractitioner", "identity_mismatch": "identifier"}
_CONSENT_PATHS = {"consent_status": "status", "given_by": "performer", "representative_name": "performer",
                  "impossible_reason": "extension", "impossible_detail": "extension", "informed_at": "dateTime",
                  "explained_interest": "extension", "explained_practicalities": "extension",
                  "explained_right_to_refuse": "extension"}
_REQUEST_PATHS = {"question": "reasonCode", "context": "note", "priority": "priority", "mode": "extension",
                  "expert": "performer", "network": "performer", "recipient_kind": "performer",
                  "submit_token": "identifier", "absent": "performer", "capacity": "performer",
                  "profession": "performer", "incomplete": "supportingInfo"}


def _extension(element: dict, url: str) -> dict:
    return next((e for e in element.get("extension") or () if e.get("url") == url), {})


def _sub(extension: dict, name: str, value_type: str):
    return next((e.get(value_type) for e in extension.get("extension") or () if e.get("url") == name), None)


class Resolver:
    """Finds what a ServiceRequest references: a contained resource (`#id`), another entry of the same Bundle
    (its fullUrl), or a row this server already has. Gives the resource and the FHIR path errors are rooted at."""

    def __init__(self, root: str, contained: list, bundle: dict | None = None):
        self.local = {f"#{r.get('id')}": (r, f"{root}.contained[{i}]") for i, r in enumerate(contained or ())}
        self.local.update(bundle or {})

    def get(self, reference: str | None):
        return self.local.get(reference or "", (None, ""))


def _paths(names: dict, root: str, *, inside: bool) -> dict:
    """Form field -> the element it came from: under `root` for a resource sent, `root` itself for a reference
    to a row of ours (the identity of Patient/<id> is the stored one)."""
    return {name: f"{root}.{path}" if inside else root for name, path in names.items()}


def _patient_input(request, reference: str | None, resolver: Resolver, root: str) -> tuple[dict, dict]:
    """The form's identity fields, from the referenced Patient (contained, in the Bundle, or seen already)."""
    resource, where = resolver.get(reference)
    if resource is None:
        pk = _reference_id(reference, "Patient")
        if pk is None:
            raise invalid([issue(f"{root}.subject", _("Le patient doit être une ressource Patient contenue, une "
                                                     "entrée du Bundle ou un Patient/<id> que vous voyez."))])
        try:
            row = selectors.patient_for_user(request.user, pk)
        except Http404:
            raise invalid([issue(f"{root}.subject", _("Patient introuvable."))]) from None
        fields = ("birth_name", "used_name", "first_names", "sex", "birth_date", "birth_place_code",
                  "identity_status", "treating_doctor_name")
        stored = {"ins_nir": row.ins_nir, "treating_doctor": row.treating_doctor_id,
                  **{name: getattr(row, name) for name in fields}}
        return stored, _paths(_PATIENT_PATHS, f"{root}.subject", inside=False)
    validated(FhirPatient, resource, where)
    ins = next((i.get("value") for i in resource.get("identifier") or ()
                if i.get("system") == resources.INS_NIR_SYSTEM), "")
    names = resource.get("name") or []
    official = next((n for n in names if n.get("use") in (None, "official")), {})
    usual = next((n for n in names if n.get("use") == "usual"), {})
    doctor = (resource.get("generalPractitioner") or [{}])[0]
    return {"ins_nir": ins or "", "birth_name": official.get("family", ""),
            "first_names": " ".join(official.get("given") or []), "used_name": usual.get("family", ""),
            "sex": SEX.get(resource.get("gender"), ""), "birth_date": resource.get("birthDate", ""),
            "birth_place_code": _extension(resource, BIRTH_PLACE_EXTENSION).get("valueCode", ""),
            "identity_status": _extension(resource, IDENTITY_STATUS_EXTENSION).get(
                "valueCode", Patient.IdentityStatus.PROVISIONAL),
            "treating_doctor": _reference_id(doctor.get("reference"), "Practitioner"),
            "treating_doctor_name": doctor.get("display", "") if not doctor.get("reference") else ""}, \
        _paths(_PATIENT_PATHS, where, inside=True)


def _consent_input(references: list, resolver: Resolver, root: str, case: Case | None) -> tuple[dict, dict]:
    """The form's consent fields, from the Consent the request names in `supportingInfo`: active is consent given
    (or not collected, with the consent-not-collected extension saying why), rejected is a refusal. A draft
    being rewritten may name its own Consent/<id>."""
    for reference in references:
        resource, where = resolver.get(reference)
        if resource is not None and resource.get("resourceType") == "Consent":
            return _consent_fields(resource, where), _paths(_CONSENT_PATHS, where, inside=True)
        if case is not None and case.consent_id and _reference_id(reference, "Consent") == case.consent_id:
            row = case.consent
            return {"consent_status": row.status, "given_by": row.given_by,
                    "representative_name": row.representative_name, "impossible_reason": row.impossible_reason,
                    "impossible_detail": row.impossible_detail, "informed_at": row.informed_at,
                    "explained_interest": row.explained_interest,
                    "explained_practicalities": row.explained_practicalities,
                    "explained_right_to_refuse": row.explained_right_to_refuse}, \
                _paths(_CONSENT_PATHS, f"{root}.supportingInfo", inside=False)
    return {}, _paths(_CONSENT_PATHS, f"{root}.supportingInfo", inside=False)


def _consent_fields(resource: dict, where: str) -> dict:
    validated(FhirConsent, resource, where)
    impossible = _extension(resource, CONSENT_IMPOSSIBLE_REASON).get("valueCodeableConcept") or {}
    status = {"active": Consent.Status.IMPOSSIBLE if impossible else Consent.Status.GIVEN,
              "rejected": Consent.Status.REFUSED}.get(resource.get("status"))
    if status is None:
        raise invalid([issue(f"{where}.status", _("Statut de consentement non pris en charge : %(value)s (active "
                                                  "ou rejected).") % {"value": resource.get("status")})])
    performer = (resource.get("performer") or [{}])[0]
    representative = performer.get("type") == "RelatedPerson" or (performer.get("reference") or "").startswith(
        "RelatedPerson/")
    told = _extension(resource, CONSENT_INFORMATION)
    reason = next((c for c in impossible.get("coding") or () if c.get("system") == CONSENT_IMPOSSIBLE_REASONS), {})
    detail = impossible.get("text") or ""
    return {"consent_status": status, "given_by": "representative" if representative else "patient",
            "representative_name": performer.get("display", "") if representative else "",
            "impossible_reason": reason.get("code") or "",
            # the read side repeats the reason's label as text when there is no detail
            "impossible_detail": "" if detail == reason.get("display") else detail,
            "informed_at": resource.get("dateTime", ""),
            "explained_interest": bool(_sub(told, "interest", "valueBoolean")),
            "explained_practicalities": bool(_sub(told, "practicalities", "valueBoolean")),
            "explained_right_to_refuse": bool(_sub(told, "right-to-refuse", "valueBoolean"))}


def _recipient_input(performers: list, root: str) -> dict:
    """One performer: Practitioner/<id> (a named expert) or a network's queue (HealthcareService identifier)."""
    if len(performers) > 1:
        raise invalid([issue(f"{root}.performer", _("Choisissez soit un expert, soit un réseau."))])
    performer = performers[0] if performers else {}
    identifier = performer.get("identifier") or {}
    if identifier.get("system") == resources.NETWORK_SYSTEM:
        return {"recipient_kind": "network", "network": identifier.get("value")}
    if performer.get("reference"):
        pk = _reference_id(performer["reference"], "Practitioner")
        return {"recipient_kind": "expert", "expert": str(pk) if pk else "?"}
    return {}


def _submit_token(identifiers: list):
    for identifier in identifiers:
        value = identifier.get("value") or ""
        if identifier.get("system") == UUID_SYSTEM and value.startswith("urn:uuid:"):
            try:
                return uuid.UUID(value.removeprefix("urn:uuid:"))
            except ValueError:
                return value  # the form says it is not a UUID
    return uuid.uuid4()


@dataclass
class RequestInput:
    form: CaseRequestForm
    send: bool
    paths: dict  # form field or service error code -> FHIR element


def request_input(request, data: dict, resolver: Resolver, *, root: str = "ServiceRequest",
                  case: Case | None = None) -> RequestInput:
    """The ServiceRequest (and what it references) checked by the web's request form."""
    if data.get("status") not in ("draft", "active"):
        raise invalid([issue(f"{root}.status", _("Statut attendu : draft (brouillon) ou active (envoyée)."))])
    if data.get("intent") != "order":
        raise invalid([issue(f"{root}.intent", _("Seule une demande (intent order) est acceptée."))])
    patient, patient_paths = _patient_input(request, (data.get("subject") or {}).get("reference"), resolver, root)
    consent, consent_paths = _consent_input([r.get("reference") for r in data.get("supportingInfo") or ()],
                                            resolver, root, case)
    fields = {**patient, **consent, **_recipient_input(data.get("performer") or [], root),
              "question": " ".join(r.get("text", "") for r in data.get("reasonCode") or ()).strip(),
              "context": "\n\n".join(n.get("text", "") for n in data.get("note") or ()).strip(),
              "priority": data.get("priority", Case.Priority.ROUTINE),
              "mode": _extension(data, resources.MODE_EXTENSION).get("valueCode", Case.Mode.ASYNCHRONOUS),
              "submit_token": _submit_token(data.get("identifier") or [])}
    paths = {**patient_paths, **consent_paths, **_paths(_REQUEST_PATHS, root, inside=True)}
    form = CaseRequestForm({k: v for k, v in fields.items() if v is not None},
                           requester=request.auth.actor.professional)
    if not form.is_valid():
        raise invalid([issue(paths.get(name, root), message) for name, messages in form.errors.items()
                       for message in messages])
    return RequestInput(form, data["status"] == "active", paths)


def create_case(request, given: RequestInput, *, send: bool) -> tuple[Case, bool]:
    """The draft (sent when `send`); False when the placer's identifier named a request made before."""
    data, actor = given.form.cleaned_data, request.auth.actor
    existed = Case.objects.filter(submit_token=data["submit_token"], requester=actor.professional).exists()
    case = _run(lambda: services.case_create(
        actor=actor, ins_nir=data["ins_nir"], identity=given.form.identity(), consent=given.form.consent(),
        question=data["question"], context=data["context"], priority=data["priority"], mode=data["mode"],
        submit_token=data["submit_token"], send=send, ip=client_ip(request), **given.form.recipient()),
        given.paths, "ServiceRequest")
    return case, not existed


def submit(request, case_id, paths: dict) -> Case:
    return _run(lambda: services.case_submit(actor=request.auth.actor, case_id=case_id, ip=client_ip(request)),
                paths, "ServiceRequest")


def service_request_create(request) -> Written:
    """POST /fhir/ServiceRequest: a draft, or a request sent at once (status active)."""
    require_scope(request, CASES_WRITE)
    data = _resource_body(request, ServiceRequest)
    given = request_input(request, data, Resolver("ServiceRequest", data.get("contained")))
    with transaction.atomic():  # sent, or not created at all
        case, created = create_case(request, given, send=given.send)
    return Written(resources.service_request(selectors.case_for_user(request.user, case.pk)), 201 if created else 200,
                   f"ServiceRequest/{case.pk}")


def service_request_update(request, pk: str) -> Written:
    """PUT /fhir/ServiceRequest/<id>: the draft rewritten, and sent when its status is active."""
    require_scope(request, CASES_WRITE)
    case = selectors.case_for_user(request.user, parse_id(pk))
    data = _resource_body(request, ServiceRequest, pk)
    with transaction.atomic():
        locked = services.lock_case(case.pk)
        check_version(request, locked)
        given = request_input(request, data, Resolver("ServiceRequest", data.get("contained")), case=locked)
        form = given.form
        _run(lambda: services.case_update_draft(
            actor=request.auth.actor, case_id=case.pk, ins_nir=form.cleaned_data["ins_nir"],
            identity=form.identity(), consent=form.consent(), fields=form.case_fields(), send=given.send,
            ip=client_ip(request)), given.paths, "ServiceRequest")
    return Written(resources.service_request(selectors.case_for_user(request.user, case.pk)))


# --- Task: the work item's transitions, read from the difference ---------------------------------------------

def _codes(concept: dict | None, system: str) -> list[str]:
    return [c.get("code") for c in (concept or {}).get("coding") or () if c.get("system") == system]


def _parameters(items) -> dict[str, list]:
    """Task.input / Task.output as {type code: [values]} (the platform's parameter types only)."""
    found: dict[str, list] = {}
    for item in items or ():
        for code in _codes(item.get("type"), resources.TASK_PARAMETER_SYSTEM):
            values = [value for key, value in item.items() if key.startswith("value")]
            found.setdefault(code, []).extend(values)
    return found


def _output_path(code: str) -> str:
    return f"Task.output.where(type.coding.code = '{code}').value"


def _input_path(code: str) -> str:
    return f"Task.input.where(type.coding.code = '{code}').value"


_REPORT_PATHS = {field: _output_path(code) for code, (field, _type) in resources.REPORT_OUTPUTS.items()}
_TASK_PATHS = {"due_at": "Task.restriction.period.end", "informed": _input_path("patient-informed"),
               "usefulness": _input_path("closing-usefulness"), "exclusive": _input_path("closing-avoided"),
               "expert": "Task.owner", "target": "Task.owner", "absent": "Task.owner", "capacity": "Task.owner",
               "profession": "Task.owner", **_REPORT_PATHS}


def _report_fields(outputs) -> dict:
    parameters = _parameters(outputs)
    return {field: parameters[code][0] for code, (field, _type) in resources.REPORT_OUTPUTS.items()
            if parameters.get(code)}


def _owner_key(owner: dict | None):
    if not owner:
        return None
    pk = _reference_id(owner.get("reference"), "Practitioner")
    if pk is not None:
        return ("Practitioner", str(pk))
    identifier = owner.get("identifier") or {}
    if identifier.get("system") == resources.NETWORK_SYSTEM:
        return ("network", identifier.get("value"))
    raise invalid([issue("Task.owner", _("Responsable attendu : Practitioner/<id> ou l'identifiant d'un réseau."))])


def _unchanged(current: dict, new: dict) -> None:
    """What the work item is about is not the client's to change: refused rather than silently ignored."""
    for name in ("intent", "priority"):
        if new.get(name) != current.get(name):
            raise invalid([issue(f"Task.{name}", _("Cet élément ne peut pas être modifié."))])
    for name in ("focus", "for", "requester"):
        if (new.get(name) or {}).get("reference") != (current.get(name) or {}).get("reference"):
            raise invalid([issue(f"Task.{name}", _("Cet élément ne peut pas être modifié."))])


@dataclass
class Step:
    scope: str
    run: Callable
    where: str  # the element a bare validation message is about


def _text(value) -> str:
    return value if isinstance(value, str) else ""


class _TaskChange:
    """One PUT's difference between the Task as it is (`current`) and as sent (`new`), and the service calls it
    means. Statuses are the rendered ones: accepted/in-progress (report draft started), completed (answered or
    closed: `businessStatus` tells)."""

    def __init__(self, request, case: Case, current: dict, new: dict):
        self.request, self.case, self.current, self.new = request, case, current, new
        self.actor, self.ip = request.auth.actor, client_ip(request)
        self.reason = _text((new.get("statusReason") or {}).get("text"))
        self.inputs = _parameters(new.get("input"))
        self.report = _report_fields(new.get("output"))
        self.report_changed = bool(self.report) and self.report != _report_fields(current.get("output"))

    def steps(self) -> list[Step]:
        _unchanged(self.current, self.new)
        before, after = self.current["status"], self.new.get("status")
        owner_before, owner_after = _owner_key(self.current.get("owner")), _owner_key(self.new.get("owner"))
        if owner_after != owner_before:
            return [self._new_owner(before, after, owner_after)]
        if self.report_changed and (before, after) not in _REPORT_WRITING:
            raise invalid([issue("Task.output", _("Le compte-rendu s'écrit sur une tâche acceptée (statut "
                                                  "in-progress, ou completed pour le signer)."))])
        if before == after:
            return self._same_status(before)
        return self._status_change(before, after, owner_before)

    def _service(self, function, where: str, **kwargs) -> Step:
        return Step(CASES_WRITE, lambda: function(actor=self.actor, case_id=self.case.pk, ip=self.ip, **kwargs),
                    where)

    def _new_owner(self, before, after, owner) -> Step:
        if owner is None:
            raise invalid([issue("Task.owner", _("Le responsable ne peut pas être retiré : transférez la tâche."))])
        kind, pk = owner
        if (before, after) == ("requested", "received") and kind == "Practitioner":
            if pk == str(self.actor.professional_id):
                return self._service(services.case_claim, "Task.owner")
            return self._service(services.case_assign, "Task.owner", expert=self._expert(pk))
        if after not in (before, "requested"):
            raise _one_change()
        target = {"expert": self._expert(pk)} if kind == "Practitioner" else {"network": self._network(pk)}
        return self._service(services.case_transfer, "Task.statusReason", note=self.reason, **target)

    def _expert(self, pk):
        expert = experts_selectable().filter(pk=pk).first()
        if expert is None:
            raise invalid([issue("Task.owner", _("Expert inconnu."))])
        return expert

    def _network(self, pk):
        try:
            network = networks_active().filter(pk=pk).first()
        except ValidationError:  # not a UUID
            network = None
        if network is None:
            raise invalid([issue("Task.owner", _("Réseau inconnu."))])
        return network

    def _same_status(self, status) -> list[Step]:
        if self.report_changed and status in ("accepted", "in-progress"):
            return [self._save_report()]
        if self.report_changed and status == "completed":
            return [self._save_report(), self._sign()]  # a corrected version, signed
        states = resources.case_states_system()
        business = _codes(self.new.get("businessStatus"), states)
        if business == _codes(self.current.get("businessStatus"), states):
            return []
        if status == "completed" and business == [S.CLOSED] and self.case.state == S.ANSWERED:
            return [self._close()]
        raise invalid([issue("Task.businessStatus", _("Seule la clôture d'une demande répondue (answered → closed) "
                                                      "se demande par businessStatus."))])

    def _status_change(self, before, after, owner) -> list[Step]:
        if (before, after) == ("draft", "requested"):
            return [self._service(services.case_submit, "Task.status")]
        if (before, after) == ("requested", "received"):
            if owner is not None and owner[0] == "network":
                return [self._service(services.case_claim, "Task.owner")]
            return [self._service(services.case_acknowledge, "Task.status")]
        if after == "accepted" and before in ("requested", "received"):
            return [self._accept()]
        if after == "on-hold":
            return [self._service(services.case_request_information, "Task.statusReason", question=self.reason)]
        if before == "on-hold" and after in ("requested", "received", "accepted", "in-progress"):
            answer = _text((self.inputs.get("information-response") or [""])[0])
            return [self._service(services.case_provide_information, _input_path("information-response"),
                                  answer=answer)]
        if after == "rejected":
            return [self._service(services.case_decline, "Task.statusReason", reason=self.reason)]
        if after == "cancelled":
            return [self._service(services.case_withdraw, "Task.statusReason", reason=self.reason)]
        if before == "accepted" and after == "in-progress" and self.report_changed:
            return [self._save_report()]
        if before in ("accepted", "in-progress") and after == "completed":
            return [self._save_report(), self._sign()] if self.report_changed else [self._sign()]
        raise invalid([issue("Task.status", _("Passage de « %(before)s » à « %(after)s » non pris en charge.")
                             % {"before": before, "after": after})])

    def _accept(self) -> Step:
        end = ((self.new.get("restriction") or {}).get("period") or {}).get("end")
        due = _datetime(end, "Task.restriction.period.end")
        informed = (self.inputs.get("patient-informed") or [False])[0] is True
        return self._service(services.case_accept, "Task.restriction.period.end", due_at=due,
                             patient_informed=informed)

    def _save_report(self) -> Step:
        def run():
            case = self.case
            action = "answer" if case.state == S.ACCEPTED else "amend_report"
            workflow.check(self.actor, case, action)
            amending = case.report_versions.filter(status=ReportVersion.Status.SIGNED).exists()
            # The outputs are the whole draft: a field left out is empty, as on /api/ (orientation: none).
            data = {**_REPORT_DEFAULTS, **self.report}
            form = ReportForm(data, instance=report_draft_for(case), amending=amending)
            if not form.is_valid():
                raise ValidationError({name: list(errors) for name, errors in form.errors.items()})
            report_save_draft(actor=self.actor, case_id=case.pk, data=form.cleaned_data, ip=self.ip)

        return Step(REPORTS_WRITE, run, "Task.output")

    def _sign(self) -> Step:
        return Step(REPORTS_WRITE, lambda: report_sign(actor=self.actor, case_id=self.case.pk, ip=self.ip),
                    "Task.output")

    def _close(self) -> Step:
        return self._service(services.case_close, _input_path("closing-usefulness"),
                             usefulness=_text((self.inputs.get("closing-usefulness") or [""])[0]),
                             avoided=[_text(v) for v in self.inputs.get("closing-avoided") or ()],
                             technical_incidents=_text((self.inputs.get("closing-technical-incidents") or [""])[0]))


_REPORT_DEFAULTS = {**{field: "" for field, value_type in resources.REPORT_OUTPUTS.values()
                       if value_type == "valueString"}, "orientation": ReportVersion.Orientation.NONE,
                    "hospitalisation": ReportVersion.Hospitalisation.NOT_APPLICABLE}

# Status pairs (before, after) under which the report's outputs may change.
_REPORT_WRITING = {("accepted", "accepted"), ("accepted", "in-progress"), ("in-progress", "in-progress"),
                   ("accepted", "completed"), ("in-progress", "completed"), ("completed", "completed")}


def _one_change() -> FhirError:
    return invalid([issue("Task.status", _("Une seule action à la fois : un transfert change le responsable, "
                                           "pas le statut."))])


def _datetime(value, where: str):
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None or moment.tzinfo is None:
        raise invalid([issue(where, _("Date et heure attendues, avec le fuseau horaire."))])
    return moment


def task_update(request, pk: str) -> Written:
    """PUT /fhir/Task/<id>: one action of the workflow, read from what changed."""
    case = selectors.case_for_user(request.user, parse_id(pk))
    new = _resource_body(request, Task, pk)
    with transaction.atomic():
        locked = services.lock_case(case.pk)
        check_version(request, locked)
        steps = _TaskChange(request, locked, handlers.task_resource(request, locked), new).steps()
        for step in steps:
            require_scope(request, step.scope)
        for step in steps:
            _run(step.run, _TASK_PATHS, step.where)
    if not selectors.cases_visible_to(request.user).filter(pk=case.pk).exists():
        return Written(None, 204)  # transferred away from the caller
    return Written(handlers.task_resource(request, selectors.case_for_user(request.user, case.pk)))


# --- Communication: a message in the thread ------------------------------------------------------------------

def _case_referenced(request, references: list[str], where: str) -> Case:
    """The case a resource is about (ServiceRequest/<id> or Task/<id>); 404 when the caller does not see it."""
    for reference in references:
        pk = _reference_id(reference, "ServiceRequest") or _reference_id(reference, "Task")
        if pk is not None:
            return selectors.case_for_user(request.user, pk)
    raise invalid([issue(where, _("Indiquez la demande : ServiceRequest/<id>."))])


def communication_create(request) -> Written:
    """POST /fhir/Communication: a message from the caller in the thread of the request it is based on."""
    require_scope(request, CASES_WRITE)
    data = _resource_body(request, Communication)
    case = _case_referenced(request, [r.get("reference") for r in (data.get("basedOn") or []) + (
        data.get("partOf") or [])], "Communication.basedOn")
    sender = _reference_id((data.get("sender") or {}).get("reference"), "Practitioner")
    if sender is not None and sender != request.auth.actor.professional_id:
        raise invalid([issue("Communication.sender", _("L'expéditeur est l'appelant."))])
    payload = data.get("payload") or []
    if len(payload) != 1 or "contentString" not in payload[0]:
        raise invalid([issue("Communication.payload", _("Un message : un seul payload, en contentString."))])
    message = _run(lambda: services.case_post_message(actor=request.auth.actor, case_id=case.pk,
                                                      body=payload[0]["contentString"], ip=client_ip(request)),
                   {}, "Communication.payload[0].contentString")
    message = Message.objects.select_related(*exchanges.MESSAGE_RELATED).get(pk=message.pk)
    return Written(exchanges.communication(message), 201, f"Communication/{message.pk}")


# --- DocumentReference: an attachment, its file in attachment.data --------------------------------------------

_ATTACHABLE = (Document.AttachedTo.REQUEST, Document.AttachedTo.INFORMATION, Document.AttachedTo.REPORT)


def add_document(request, body: Body, data: dict, case: Case, root: str) -> Document:
    """Store the file of one DocumentReference through `document_add` (content checks, scan, encryption)."""
    validated(DocumentReference, data, root)
    kinds = _codes(data.get("type"), exchanges.DOCUMENT_KIND_SYSTEM)
    attached = [code for category in data.get("category") or ()
                for code in _codes(category, exchanges.ATTACHED_TO_SYSTEM)] or [Document.AttachedTo.REQUEST]
    if attached[0] not in _ATTACHABLE:
        raise invalid([issue(f"{root}.category", _("Valeur invalide (%(detail)s).")
                             % {"detail": ", ".join(_ATTACHABLE)})])
    contents = data.get("content") or []
    attachment = contents[0].get("attachment") or {} if len(contents) == 1 else {}
    where = f"{root}.content[0].attachment.data"
    spool = body.take(attachment.get("data"))
    if spool is None:
        raise invalid([issue(where, _("Joignez le fichier, en base64, dans content[0].attachment.data (un seul "
                                      "contenu)."))])
    if attachment.get("size") not in (None, spool.size):
        spool.discard()
        raise invalid([issue(f"{root}.content[0].attachment.size", _("La taille annoncée n'est pas celle du "
                                                                      "fichier reçu."))])
    upload = EncryptedUploadedFile(spool, attachment.get("title") or data.get("description") or "document",
                                   attachment.get("contentType") or "", None)
    try:
        return _run(lambda: document_add(actor=request.auth.actor, case_id=case.pk, upload=upload,
                                         kind=kinds[0] if kinds else "", attached_to=attached[0],
                                         ip=client_ip(request)),
                    {"kind": f"{root}.type"}, where)
    except OSError as exc:  # storage down or full: nothing was kept
        raise FhirError(503, "transient", _("Le document n'a pas pu être enregistré (erreur de stockage). "
                                            "Réessayez plus tard.")) from exc
    finally:
        upload.close()


def document_reference_create(request) -> Written:
    """POST /fhir/DocumentReference: an attachment of the request named in `context.related`."""
    require_scope(request, CASES_WRITE)
    body = read_body(request)
    try:
        validated(DocumentReference, body.resource, "DocumentReference")  # its shape, before reading its request
        related = ((body.resource.get("context") or {}).get("related") or [])
        case = _case_referenced(request, [r.get("reference") for r in related], "DocumentReference.context.related")
        document = add_document(request, body, body.resource, case, "DocumentReference")
    finally:
        body.discard()
    document = Document.objects.select_related("case__patient", "uploaded_by").get(pk=document.pk)
    return Written(exchanges.attachment_reference(document), 201, f"DocumentReference/{document.pk}")
