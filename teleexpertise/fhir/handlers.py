"""What the FHIR facade serves, declared once: `RESOURCES` drives both the URL routing (`urls.py`) and the
CapabilityStatement (`views.metadata`), so the statement cannot promise what no handler does.

Every read starts from the user-bound selectors: `case_for_user` / `cases_visible_to` for cases, and the people,
organisations, consents, form answers, reports and audit trails of those cases only. What the caller may not see
answers 404, as on the web.
"""

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Prefetch, Q, Subquery
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from fhir.resources.R4B.task import Task as FhirTask

from teleexpertise.api.reports import ready_version_for, report_pdf_bytes
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import selectors, workflow
from teleexpertise.cases.models import Case
from teleexpertise.core.digits import ascii_digits
from teleexpertise.directory.models import Organisation, Professional
from teleexpertise.fhir import resources
from teleexpertise.fhir.dates import DateValueError, parse_date_range
from teleexpertise.fhir.sent import as_sent, dumps, remembered_all
from teleexpertise.messaging.models import Message
from teleexpertise.patients.models import Consent, Patient
from teleexpertise.reports.fhir_export import report_composition, report_document_reference
from teleexpertise.reports.models import RenderedReport, ReportVersion

S = Case.State
SIGNED = ReportVersion.Status.SIGNED


class FhirError(Exception):
    """An answer other than 200, as an OperationOutcome: HTTP status, FHIR issue type, French message; `issues`
    ({code, diagnostics, expression}) when the answer names several elements of the input."""

    def __init__(self, status: int, code: str, message: str, issues: list[dict] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.issues = status, code, message, issues or []


def require_scope(request, scope: str) -> None:
    """The bearer token (`request.auth`, set by `views._authenticate`) must carry `scope`."""
    if scope not in request.auth.scopes:
        raise FhirError(403, "forbidden", _("Ce jeton n'a pas la portée « %(scope)s » nécessaire à cet appel.")
                        % {"scope": scope})


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # FHIR search parameter type (reference, token)
    documentation: str
    apply: Callable  # (queryset, value) -> queryset
    target: str = ""  # a reference's resource type: its id is a plain value (compiled searches, `compiled_search`)


@dataclass(frozen=True)
class Include:
    """An `_include` a search accepts: `name` is `<source type>:<search parameter>`; `column` the id, in a matched
    row (a model, or values), of the `target` type's row it points at (None: none), read and rendered and audited
    as a read of that type."""

    name: str
    target: str
    column: str


@dataclass(frozen=True)
class ResourceType:
    """One served resource type: `read(request, id)` answers one resource; `search_base(user)` the rows a search
    starts from, narrowed by `params`, then `render(request, rows)`; `includes` the `_include` values it takes;
    `create(request)` and `update(request, id)` (in `writes`) answer a `writes.Written`. `from_cases`, for the
    types that are a view of the case row, gives the search base from the caller's visible cases: such searches
    are compiled once per shape (`compiled_search`)."""

    name: str
    read: Callable
    search_base: Callable | None = None
    render: Callable | None = None
    params: tuple[SearchParam, ...] = field(default=())
    includes: tuple[Include, ...] = field(default=())
    create: Callable | None = None
    update: Callable | None = None
    from_cases: Callable | None = None

    @property
    def interactions(self) -> list[str]:
        optional = (("update", self.update), ("search-type", self.search_base), ("create", self.create))
        return ["read", *(code for code, handler in optional if handler)]


# --- Parsing parameter values ----------------------------------------------------------------------------

def parse_id(value: str) -> uuid.UUID:
    """Our ids are UUIDs: anything else names nothing (404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404 from None


def reference_id(value: str, resource_type: str) -> uuid.UUID:
    """`Patient/<id>` or `<id>`; a malformed one is the caller's error (400), not an empty result."""
    raw = value.removeprefix(f"{resource_type}/")
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise FhirError(400, "value", _("Référence invalide : « %(value)s » (attendu : %(type)s/<id>).")
                        % {"value": value, "type": resource_type}) from None


def _tokens(value: str, known) -> list[str]:
    """A comma-separated list of codes (FHIR's OR); an unknown code is refused with the list of known ones."""
    codes = [code.strip() for code in value.split(",") if code.strip()]
    unknown = [code for code in codes if code not in known]
    if unknown or not codes:
        raise FhirError(400, "value", _("Statut inconnu : « %(value)s ». Valeurs possibles : %(known)s.")
                        % {"value": value, "known": ", ".join(sorted(set(known)))})
    return codes


def _by_reference(lookup: str, resource_type: str) -> Callable:
    return lambda rows, value: rows.filter(**{lookup: reference_id(value, resource_type)})


def reference_param(name: str, documentation: str, lookup: str, resource_type: str) -> SearchParam:
    """A reference search parameter: `<Type>/<id>` or `<id>` narrows the rows on `lookup`."""
    return SearchParam(name, "reference", documentation, _by_reference(lookup, resource_type), target=resource_type)


def _by_date(lookup: str) -> Callable:
    """A FHIR date value with its prefix; repeated parameters narrow together (`ge…&lt…` is a range)."""

    def apply(rows, value):
        try:
            return rows.filter(parse_date_range(value).filter(lookup))
        except DateValueError as exc:
            raise FhirError(400, "value", str(exc)) from None

    return apply


def _last_updated(lookup: str) -> SearchParam:
    return SearchParam("_lastUpdated", "date", "when the resource last changed: prefixes eq, ne, gt, ge, lt, le and "
                                               "partial dates (2026, 2026-01...); repeat it for a range",
                       _by_date(lookup))


# --- Audit ------------------------------------------------------------------------------------------------

def _audit_case_read(request, case, resource_type: str) -> None:
    audit_log(actor=request.user, action="case.view", kind=AuditEvent.Kind.READ, obj=case, case=case,
              ip=client_ip(request), summary=f"FHIR {resource_type}")


def _audit_report_read(request, version, resource_type: str) -> None:
    action = "report.pdf_download" if resource_type == "DocumentReference" else "report.fhir_read"
    audit_log(actor=request.user, action=action, kind=AuditEvent.Kind.READ, obj=version, case=version.case,
              ip=client_ip(request), summary=f"FHIR {resource_type} v{version.number}")


# --- ServiceRequest and Task: one case each ----------------------------------------------------------------

_CASE_RELATED = ("patient", "requester", "expert", "network")


def _case_search(visible):
    return visible.select_related(*_CASE_RELATED).order_by("-updated_at", "pk")


def _visible_cases(user):
    return _case_search(selectors.cases_visible_to(user))


def _with_report_started(rows):
    drafts = ReportVersion.objects.filter(case=OuterRef("pk"), status=ReportVersion.Status.DRAFT)
    return rows.annotate(report_started=Exists(drafts))


def _states_for(mapping: dict, codes: list[str]) -> list[str]:
    return [state for state, code in mapping.items() if code in codes]


def _request_status(rows, value):
    codes = _tokens(value, set(resources.REQUEST_STATUS.values()))
    return rows.filter(state__in=_states_for(resources.REQUEST_STATUS, codes))


def _task_status(rows, value):
    codes = _tokens(value, {*resources.TASK_STATUS.values(), "accepted", "in-progress"})
    wanted = Q(state__in=_states_for(resources.TASK_STATUS, codes))
    if "accepted" in codes:
        wanted |= Q(state=S.ACCEPTED, report_started=False)
    if "in-progress" in codes:
        wanted |= Q(state=S.ACCEPTED, report_started=True)
    return rows.filter(wanted)


def _read_service_request(request, pk):
    case = selectors.case_for_user(request.user, parse_id(pk), related=_CASE_RELATED)
    _audit_case_read(request, case, "ServiceRequest")
    return resources.service_request(case)


def _information_request():
    """The expert's last request for information on the case (the on-hold Task's statusReason)."""
    asked = Message.objects.filter(case=OuterRef("pk"), kind=Message.Kind.INFORMATION_REQUEST)
    return Subquery(asked.order_by("-created_at").values("body")[:1])


def _last_signed_version():
    signed = ReportVersion.objects.filter(case=OuterRef("pk"), status=SIGNED)
    return Subquery(signed.order_by("-number").values("pk")[:1])


_TASK_ANNOTATIONS = ("report_started", "information_request", "last_signed_id")


def _task_search(visible):
    """A search reads what each Task shows from the case's row and its participants' (`resources.TASK_COLUMNS`) as
    values, not models: the draft's fields are read afterwards, and only for the caller's own cases with a report
    started (`_render_tasks`), instead of every version of every case."""
    return (_with_report_started(visible.order_by("-updated_at", "pk"))
            .annotate(information_request=_information_request(), last_signed_id=_last_signed_version())
            .values(*resources.TASK_COLUMNS, *_TASK_ANNOTATIONS))


def _task_rows(user):
    return _task_search(selectors.cases_visible_to(user))


def task_resource(request, case, versions=None, information_request=None):
    """The Task as this caller sees it: the report draft appears in its outputs for the expert only."""
    if versions is None:
        versions = list(case.report_versions.all())
    if information_request is None:
        information_request = (Message.objects.filter(case=case, kind=Message.Kind.INFORMATION_REQUEST)
                               .order_by("-created_at").values_list("body", flat=True).first())
    expert = workflow.EXPERT in workflow.roles_for(request.auth.actor, case)
    return resources.task(case, report_started=any(v.status == ReportVersion.Status.DRAFT for v in versions),
                          outputs=resources.task_outputs(versions, with_draft=expert),
                          information_request=information_request or "")


def _read_task(request, pk):
    case = selectors.case_for_user(request.user, parse_id(pk), related=_CASE_RELATED)
    _audit_case_read(request, case, "Task")
    return task_resource(request, case)


def _render_service_requests(request, rows):
    return [resources.service_request(case) for case in rows]


def _render_tasks(request, rows):
    """Each Task's text, remembered under its row and outputs: a row unchanged since the last search is not built
    again (`sent.remembered_all`)."""
    pid = request.auth.actor.professional_id if request.auth.actor else None
    own_drafts = [row["pk"] for row in rows if row["report_started"] and pid is not None and row["expert_id"] == pid]
    drafts = {version.case_id: version for version in ReportVersion.objects.filter(
        case_id__in=own_drafts, status=ReportVersion.Status.DRAFT)} if own_drafts else {}
    page = []
    for row in rows:
        outputs = resources.report_outputs(row["last_signed_id"], drafts.get(row["pk"]))
        page.append((
            (*row.values(), dumps(outputs) if outputs else ""),
            functools.partial(resources.task_of_values, row, report_started=row["report_started"], outputs=outputs,
                              information_request=row["information_request"] or "")))
    return remembered_all(FhirTask, page)


_PATIENT = reference_param("patient", "Patient/<id>: the requests about this patient", "patient_id", "Patient")
_REQUESTER = reference_param("requester", "Practitioner/<id>: the requests this practitioner made", "requester_id",
                        "Practitioner")


# --- Patient, Practitioner, Organization: the participants of visible cases ----------------------------

def _audit_patient_read(request, row, how: str = "") -> None:
    audit_log(actor=request.user, action="patient.view", kind=AuditEvent.Kind.READ, obj=row, patient=row,
              ip=client_ip(request), summary=f"FHIR Patient{how}")


def _read_patient(request, pk):
    row = selectors.patient_for_user(request.user, parse_id(pk))
    _audit_patient_read(request, row)
    return resources.patient(row)


def _visible_professionals(user):
    """The requesters and experts of the cases this user sees: the only professionals the facade shows them
    (Practitioner and PractitionerRole alike). The directory page is not widened into the API: a national
    directory export is the ANS's own service, and a search without filter here would be one."""
    return _participants_of(selectors.cases_visible_to(user))


def _participants_of(visible):
    participants = Q(pk__in=visible.values("requester_id")) | Q(pk__in=visible.values("expert_id"))
    return (Professional.objects.filter(participants)
            .select_related("profession", "specialty", "organisation").order_by("last_name", "first_name", "pk"))


def _visible_professional(request, pk, resource_type: str):
    pro = next(iter(_visible_professionals(request.user).filter(pk=parse_id(pk))), None)
    if pro is None:
        raise Http404
    _audit_directory_read(request, pro, resource_type)
    return pro


def _audit_directory_read(request, obj, resource_type: str, how: str = "") -> None:
    audit_log(actor=request.user, action="directory.fhir_read", kind=AuditEvent.Kind.READ, obj=obj,
              ip=client_ip(request), summary=f"FHIR {resource_type}{how}")


def _read_practitioner(request, pk):
    return resources.practitioner(_visible_professional(request, pk, "Practitioner"))


def _read_practitioner_role(request, pk):
    return resources.practitioner_role(_visible_professional(request, pk, "PractitionerRole"))


def _render_practitioner_roles(request, rows):
    return [resources.practitioner_role(pro) for pro in rows]


def _read_organization(request, pk):
    pk = parse_id(pk)
    visible = selectors.cases_visible_to(request.user)
    if not visible.filter(Q(requester__organisation_id=pk) | Q(expert__organisation_id=pk)).exists():
        raise Http404
    org = Organisation.objects.get(pk=pk)
    _audit_directory_read(request, org, "Organization")
    return resources.organization(org)


# --- Composition and DocumentReference: the signed report versions of visible cases ----------------------

_VERSION_RELATED = ("case__patient", "author__profession", "author__specialty", "author__organisation", "rendered")


def _signed_versions(user):
    return (ReportVersion.objects.filter(status=SIGNED, case__in=selectors.cases_visible_to(user))
            .select_related(*_VERSION_RELATED).order_by("-signed_at", "pk"))


def _ready_versions(user):
    return _signed_versions(user).filter(rendered__status=RenderedReport.Status.READY)


def _with_id(resource, version) -> dict:
    """The export's resource as sent here: the version's id, and its signature as the last change (a signed
    version is never rewritten)."""
    resource.id = str(version.pk)
    resource.meta = {"lastUpdated": timezone.localtime(version.signed_at).isoformat(timespec="seconds")}
    return as_sent(resource)


def _read_composition(request, pk):
    pk = parse_id(pk)
    case_id = (ReportVersion.objects.filter(pk=pk, status=SIGNED).values_list("case_id", flat=True)
               .first())
    if case_id is None:
        raise Http404
    case = selectors.case_for_user(request.user, case_id)
    version = ReportVersion.objects.select_related(*_VERSION_RELATED[1:]).get(pk=pk)
    version.case = case
    _audit_report_read(request, version, "Composition")
    return _with_id(report_composition(version), version)


def _read_document_reference(request, pk):
    version = ready_version_for(request, parse_id(pk))  # case_for_user inside: 404 for outsiders, 409 while pending
    _audit_report_read(request, version, "DocumentReference")
    return _with_id(report_document_reference(version, report_pdf_bytes(request, version)), version)


def _render_compositions(request, rows):
    for version in rows:
        _audit_report_read(request, version, "Composition")
    return [_with_id(report_composition(version), version) for version in rows]


def _render_document_references(request, rows):
    for version in rows:
        _audit_report_read(request, version, "DocumentReference")
    return [_with_id(report_document_reference(version, report_pdf_bytes(request, version)), version)
            for version in rows]


_REPORT_PATIENT = reference_param("patient", "Patient/<id>: the signed reports about this patient",
                                  "case__patient_id", "Patient")


# --- Consent: the consent recorded on a visible case ----------------------------------------------------

def _visible_consents(user):
    visible = selectors.cases_visible_to(user)
    return (Consent.objects.filter(pk__in=visible.values("consent_id"))
            .select_related("patient", "informed_by")
            .prefetch_related(Prefetch("cases", queryset=visible.order_by("created_at", "pk"), to_attr="visible"))
            .order_by("-recorded_at", "pk"))


def _read_consent(request, pk):
    row = next(iter(_visible_consents(request.user).filter(pk=parse_id(pk))), None)
    if row is None:
        raise Http404
    audit_log(actor=request.user, action="consent.view", kind=AuditEvent.Kind.READ, obj=row, patient=row.patient,
              case=row.visible[0], ip=client_ip(request), summary="FHIR Consent")
    return resources.consent(row, row.visible)


def _render_consents(request, rows):
    return [resources.consent(row, row.visible) for row in rows]


# --- QuestionnaireResponse: the structured form's answers, one a case (the case's id) ---------------------

def _visible_responses(user):
    return _visible_cases(user).filter(request_form__isnull=False).select_related("request_form")


def _read_questionnaire_response(request, pk):
    case = selectors.case_for_user(request.user, parse_id(pk))
    if case.request_form_id is None:
        raise Http404
    _audit_case_read(request, case, "QuestionnaireResponse")
    return resources.questionnaire_response(case)


def _render_questionnaire_responses(request, rows):
    return [resources.questionnaire_response(case) for case in rows]


# --- AuditEvent: the trail of a visible case, as its page shows it ---------------------------------------
# The case page shows its timeline and its access history to everyone who may open the case; the facade serves
# the same rows, and only rows bound to a case (the rest of the trail is the staff's, in the admin).

def _visible_audit_events(user):
    return (AuditEvent.objects.filter(case_id__in=selectors.cases_visible_to(user).values("pk"))
            .order_by("-at", "-id"))


def _render_audit_events(request, rows):
    actors = {pro.user_id: pro for pro in Professional.objects.filter(
        user_id__in={event.actor_id for event in rows if event.actor_id is not None})}
    return [resources.audit_event(event, actors.get(event.actor_id), detailed=request.user.is_staff)
            for event in rows]


def _read_audit_event(request, pk):
    if not ascii_digits(pk):
        raise Http404
    event = AuditEvent.objects.filter(pk=int(pk), case_id__isnull=False).first()
    if event is None:
        raise Http404
    case = selectors.case_for_user(request.user, event.case_id)
    audit_log(actor=request.user, action="audit.fhir_read", kind=AuditEvent.Kind.READ, obj=event, case=case,
              ip=client_ip(request), summary="FHIR AuditEvent")
    return _render_audit_events(request, [event])[0]


# --- _include: the participants of matched requests, read together once the page is known ----------------

def _include_patient(request, patient):
    _audit_patient_read(request, patient, " (_include)")
    return resources.patient(patient)


def _include_practitioner(request, pro):
    _audit_directory_read(request, pro, "Practitioner", " (_include)")
    return resources.practitioner(pro)


def _include_service_request(request, case):
    _audit_case_read(request, case, "ServiceRequest (_include)")
    return resources.service_request(case)


# Target type -> (its rows among the caller's visible cases, how one is rendered and audited). The ids come from
# visible cases already; the targets are read through the caller's sight all the same, like every read here.
INCLUDED = {
    "Patient": (lambda visible: Patient.objects.filter(pk__in=visible.values("patient_id")), _include_patient),
    "Practitioner": (_participants_of, _include_practitioner),
    "ServiceRequest": (_case_search, _include_service_request),
}


def included(request, resource_type: ResourceType, names: set[str], rows) -> list:
    """The resources the matched rows point at through the `_include`s asked for, each once (a requester of
    several matched requests is sent once), in the order of the page, each audited as a read. Matched rows are
    visible cases, so what they point at is what the caller may read."""
    wanted = {}  # (target, id) in order of appearance
    for include in resource_type.includes:
        if include.name in names:
            for row in rows:
                pk = row[include.column] if isinstance(row, dict) else getattr(row, include.column)
                if pk is not None:
                    wanted.setdefault((include.target, pk), None)
    if not wanted:
        return []
    visible = selectors.cases_visible_to(request.user)
    loaded = {target: {row.pk: row for row in INCLUDED[target][0](visible).filter(
        pk__in=[pk for kind, pk in wanted if kind == target])} for target in {kind for kind, _pk in wanted}}
    return [INCLUDED[target][1](request, loaded[target][pk]) for target, pk in wanted if pk in loaded[target]]


# --- The declaration table ------------------------------------------------------------------------------

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("ServiceRequest", _read_service_request, _visible_cases, _render_service_requests, (
        _PATIENT,
        SearchParam("status", "token", "draft | active | completed | revoked", _request_status),
        _REQUESTER,
        reference_param("performer", "Practitioner/<id>: the requests addressed to this expert", "expert_id",
                   "Practitioner"),
        _last_updated("updated_at"),
    ), (
        Include("ServiceRequest:subject", "Patient", "patient_id"),
        Include("ServiceRequest:requester", "Practitioner", "requester_id"),
        Include("ServiceRequest:performer", "Practitioner", "expert_id"),  # a network's pool is no resource
    ), from_cases=_case_search),
    ResourceType("Task", _read_task, _task_rows, _render_tasks, (
        _PATIENT,
        SearchParam("status", "token", "draft | requested | received | accepted | in-progress | on-hold | "
                                       "rejected | completed | cancelled", _task_status),
        _REQUESTER,
        reference_param("owner", "Practitioner/<id>: the work items of this expert", "expert_id", "Practitioner"),
        _last_updated("updated_at"),
    ), (
        Include("Task:patient", "Patient", "patient_id"),
        Include("Task:requester", "Practitioner", "requester_id"),
        Include("Task:owner", "Practitioner", "expert_id"),
        Include("Task:focus", "ServiceRequest", "pk"),  # the request shares the case's row
    ), from_cases=_task_search),
    ResourceType("Patient", _read_patient),
    ResourceType("Practitioner", _read_practitioner),
    ResourceType("PractitionerRole", _read_practitioner_role, _visible_professionals, _render_practitioner_roles, (
        reference_param("practitioner", "Practitioner/<id>: this practitioner's role", "pk", "Practitioner"),
    )),
    ResourceType("Organization", _read_organization),
    ResourceType("Consent", _read_consent, _visible_consents, _render_consents, (
        reference_param("patient", "Patient/<id>: the consents this patient gave, refused or could not give",
                        "patient_id", "Patient"),
        _last_updated("recorded_at"),
    )),
    ResourceType("QuestionnaireResponse", _read_questionnaire_response, _visible_responses,
                 _render_questionnaire_responses, (
                     reference_param("patient", "Patient/<id>: the form answers about this patient", "patient_id",
                                     "Patient"),
                     reference_param("based-on", "ServiceRequest/<id>: the form answers of this request", "pk",
                                     "ServiceRequest"),
                     _last_updated("updated_at"),
                 )),
    ResourceType("Composition", _read_composition, _signed_versions, _render_compositions,
                 (_REPORT_PATIENT, _last_updated("signed_at"))),
    ResourceType("DocumentReference", _read_document_reference, _ready_versions, _render_document_references,
                 (_REPORT_PATIENT, _last_updated("signed_at"))),
    ResourceType("AuditEvent", _read_audit_event, _visible_audit_events, _render_audit_events, (
        reference_param("entity", "ServiceRequest/<id>: the trail of this request", "case_id", "ServiceRequest"),
        reference_param("patient", "Patient/<id>: the trail of the requests about this patient", "patient_id",
                        "Patient"),
        SearchParam("date", "date", "when the event was recorded (same prefixes as _lastUpdated)", _by_date("at")),
        _last_updated("at"),
    )),
)

# Result parameters every search accepts (listed in the statement with the resource's own parameters).
COUNT = SearchParam("_count", "number", "page size (default 20, at most 100)", lambda rows, value: rows)
OFFSET = SearchParam("_offset", "number", "rows to skip (the `next` link carries it)", lambda rows, value: rows)
RESULT_PARAMS = (COUNT, OFFSET)


def search_params(resource_type: ResourceType) -> tuple[SearchParam, ...]:
    return (*resource_type.params, *RESULT_PARAMS) if resource_type.search_base else ()

