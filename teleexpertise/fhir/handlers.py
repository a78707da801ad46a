"""What the FHIR facade serves, declared once: `RESOURCES` drives both the URL routing (`urls.py`) and the
CapabilityStatement (`views.metadata`), so the statement cannot promise what no handler does.

Every read starts from the user-bound selectors: `case_for_user` / `cases_visible_to` for cases, and the people,
organisations and reports of those cases only. What the caller may not see answers 404, as on the web.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db.models import Exists, OuterRef, Q
from django.http import Http404
from django.utils.translation import gettext as _

from teleexpertise.api.reports import ready_version_for, report_pdf_bytes
from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases import selectors
from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Organisation, Professional
from teleexpertise.fhir import resources
from teleexpertise.reports.fhir_export import report_composition, report_document_reference
from teleexpertise.reports.models import RenderedReport, ReportVersion

S = Case.State
SIGNED = ReportVersion.Status.SIGNED


class FhirError(Exception):
    """An answer other than 200, as an OperationOutcome: HTTP status, FHIR issue type, French message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class SearchParam:
    name: str
    type: str  # FHIR search parameter type (reference, token)
    documentation: str
    apply: Callable  # (queryset, value) -> queryset


@dataclass(frozen=True)
class ResourceType:
    """One served resource type: `read(request, id)` answers one resource; `search_base(user)` the rows a search
    starts from, narrowed by `params`, then `render(request, rows)`."""

    name: str
    read: Callable
    search_base: Callable | None = None
    render: Callable | None = None
    params: tuple[SearchParam, ...] = field(default=())

    @property
    def interactions(self) -> list[str]:
        return ["read", "search-type"] if self.search_base else ["read"]


# --- Parsing parameter values ----------------------------------------------------------------------------

def parse_id(value: str) -> uuid.UUID:
    """Our ids are UUIDs: anything else names nothing (404)."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise Http404 from None


def _reference_id(value: str, resource_type: str) -> uuid.UUID:
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
    return lambda rows, value: rows.filter(**{lookup: _reference_id(value, resource_type)})


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


def _visible_cases(user):
    return (selectors.cases_visible_to(user).select_related(*_CASE_RELATED).order_by("-updated_at", "pk"))


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


def _read_task(request, pk):
    case = selectors.case_for_user(request.user, parse_id(pk), related=_CASE_RELATED)
    _audit_case_read(request, case, "Task")
    started = ReportVersion.objects.filter(case=case, status=ReportVersion.Status.DRAFT).exists()
    return resources.task(case, report_started=started)


def _render_service_requests(request, rows):
    return [resources.service_request(case) for case in rows]


def _render_tasks(request, rows):
    return [resources.task(case, report_started=case.report_started) for case in rows]


_PATIENT = SearchParam("patient", "reference", "Patient/<id>: the requests about this patient",
                       _by_reference("patient_id", "Patient"))
_REQUESTER = SearchParam("requester", "reference", "Practitioner/<id>: the requests this practitioner made",
                         _by_reference("requester_id", "Practitioner"))


# --- Patient, Practitioner, Organization: the participants of visible cases ----------------------------

def _read_patient(request, pk):
    row = selectors.patient_for_user(request.user, parse_id(pk))
    audit_log(actor=request.user, action="patient.view", kind=AuditEvent.Kind.READ, obj=row, patient=row,
              ip=client_ip(request), summary="FHIR Patient")
    return resources.patient(row)


def _read_practitioner(request, pk):
    pk = parse_id(pk)
    if not selectors.cases_visible_to(request.user).filter(Q(requester_id=pk) | Q(expert_id=pk)).exists():
        raise Http404
    pro = Professional.objects.get(pk=pk)
    audit_log(actor=request.user, action="directory.fhir_read", kind=AuditEvent.Kind.READ, obj=pro,
              ip=client_ip(request), summary="FHIR Practitioner")
    return resources.practitioner(pro)


def _read_organization(request, pk):
    pk = parse_id(pk)
    visible = selectors.cases_visible_to(request.user)
    if not visible.filter(Q(requester__organisation_id=pk) | Q(expert__organisation_id=pk)).exists():
        raise Http404
    org = Organisation.objects.get(pk=pk)
    audit_log(actor=request.user, action="directory.fhir_read", kind=AuditEvent.Kind.READ, obj=org,
              ip=client_ip(request), summary="FHIR Organization")
    return resources.organization(org)


# --- Composition and DocumentReference: the signed report versions of visible cases ----------------------

_VERSION_RELATED = ("case__patient", "author__profession", "author__specialty", "author__organisation", "rendered")


def _signed_versions(user):
    return (ReportVersion.objects.filter(status=SIGNED, case__in=selectors.cases_visible_to(user))
            .select_related(*_VERSION_RELATED).order_by("-signed_at", "pk"))


def _ready_versions(user):
    return _signed_versions(user).filter(rendered__status=RenderedReport.Status.READY)


def _with_id(resource, version):
    resource.id = str(version.pk)
    return resource


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


_REPORT_PATIENT = SearchParam("patient", "reference", "Patient/<id>: the signed reports about this patient",
                              _by_reference("case__patient_id", "Patient"))


# --- The declaration table ------------------------------------------------------------------------------

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("ServiceRequest", _read_service_request, _visible_cases, _render_service_requests, (
        _PATIENT,
        SearchParam("status", "token", "draft | active | completed | revoked", _request_status),
        _REQUESTER,
        SearchParam("performer", "reference", "Practitioner/<id>: the requests addressed to this expert",
                    _by_reference("expert_id", "Practitioner")),
    )),
    ResourceType("Task", _read_task, lambda user: _with_report_started(_visible_cases(user)), _render_tasks, (
        _PATIENT,
        SearchParam("status", "token", "draft | requested | received | accepted | in-progress | on-hold | "
                                       "rejected | completed | cancelled", _task_status),
        _REQUESTER,
        SearchParam("owner", "reference", "Practitioner/<id>: the work items of this expert",
                    _by_reference("expert_id", "Practitioner")),
    )),
    ResourceType("Patient", _read_patient),
    ResourceType("Practitioner", _read_practitioner),
    ResourceType("Organization", _read_organization),
    ResourceType("Composition", _read_composition, _signed_versions, _render_compositions, (_REPORT_PATIENT,)),
    ResourceType("DocumentReference", _read_document_reference, _ready_versions, _render_document_references,
                 (_REPORT_PATIENT,)),
)

# Result parameters every search accepts (listed in the statement with the resource's own parameters).
COUNT = SearchParam("_count", "number", "page size (default 20, at most 100)", lambda rows, value: rows)
OFFSET = SearchParam("_offset", "number", "rows to skip (the `next` link carries it)", lambda rows, value: rows)
RESULT_PARAMS = (COUNT, OFFSET)


def search_params(resource_type: ResourceType) -> tuple[SearchParam, ...]:
    return (*resource_type.params, *RESULT_PARAMS) if resource_type.search_base else ()


BY_NAME = {resource_type.name: resource_type for resource_type in RESOURCES}
