"""Platform rows as FHIR R4 resources (fhir.resources' R4B models: a resource that does not validate is never sent).

Resources served here point at each other by literal references (`Patient/<id>`): an integrator reads them back
from this server. The report's own resources (Composition, DocumentReference) come from `reports.fhir_export`,
which names people by national identifiers because those documents leave the platform.
"""

from datetime import UTC, datetime, timedelta

from django.utils import timezone
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from teleexpertise.cases.models import Case
from teleexpertise.reports import codes

S = Case.State
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM = "http://finess.sante.gouv.fr"
INS_NIR_SYSTEM = f"urn:oid:{codes.OID_INS_NIR}"
IDNATPS_SYSTEM = f"urn:oid:{codes.OID_IDNATPS}"
IDNATSTRUCT_SYSTEM = f"urn:oid:{codes.OID_IDNATSTRUCT}"

# A case's state as the request's status: the request lives until answered, and ends revoked when it was
# declined or withdrawn without an answer.
REQUEST_STATUS = {S.DRAFT: "draft", S.SUBMITTED: "active", S.TAKEN: "active", S.AWAITING_INFORMATION: "active",
                  S.ACCEPTED: "active", S.ANSWERED: "completed", S.CLOSED: "completed", S.DECLINED: "revoked",
                  S.WITHDRAWN: "revoked"}

# A case's state as the expert's work item. ACCEPTED is "accepted" until the expert saves a report draft, then
# "in-progress" (FHIR: agreed to, then started); `report_started` tells which.
TASK_STATUS = {S.DRAFT: "draft", S.SUBMITTED: "requested", S.TAKEN: "received", S.AWAITING_INFORMATION: "on-hold",
               S.DECLINED: "rejected", S.ANSWERED: "completed", S.CLOSED: "completed", S.WITHDRAWN: "cancelled"}

GENDER = {"F": "female", "M": "male", "I": "unknown"}

# The platform's own extensions and code systems, under the URL base its Questionnaire extensions already use.
PLATFORM_FHIR = "https://teleexpertise.fr/fhir"
EXTENSION = f"{PLATFORM_FHIR}/StructureDefinition"
NETWORK_SYSTEM = f"{PLATFORM_FHIR}/NamingSystem/network"  # a network's id: its shared queue, as a HealthcareService
MODE_EXTENSION = f"{EXTENSION}/request-mode"  # asynchronous | synchronous
TASK_PARAMETER_SYSTEM = f"{PLATFORM_FHIR}/CodeSystem/task-parameter"  # the types of Task.input and Task.output
# The report's fields as Task outputs: output type code -> (ReportVersion field, value[x]).
REPORT_OUTPUTS = {
    "act-at": ("act_at", "valueDateTime"), "answer": ("answer", "valueString"),
    "conclusion": ("conclusion", "valueString"), "treatments": ("treatments", "valueString"),
    "prescription-justification": ("prescription_justification", "valueString"),
    "exams": ("exams", "valueString"), "orientation": ("orientation", "valueCode"),
    "orientation-detail": ("orientation_detail", "valueString"),
    "consultation-at": ("consultation_at", "valueDateTime"), "hospitalisation": ("hospitalisation", "valueCode"),
    "technical-incidents": ("technical_incidents", "valueString"),
    "amendment-reason": ("amendment_reason", "valueString"),
}
REPORT = "report"  # the output naming the signed report (Composition)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def case_states_system() -> str:
    """The code system of `Task.businessStatus`: the platform's case states, under its own OID."""
    return f"urn:oid:{codes.platform_oid(codes.CASE_STATE_ARC)}"


def _instant(moment) -> str | None:
    return timezone.localtime(moment).isoformat(timespec="seconds") if moment else None


def version_of(case) -> str:
    """The case's version (meta.versionId, ETag): its last change in microseconds. Every service moves
    `updated_at`, so a change anywhere in the request or the work item gives a new version."""
    return str((case.updated_at - _EPOCH) // timedelta(microseconds=1))


def reference(resource_type: str, obj, display: str = "") -> dict:
    ref = {"reference": f"{resource_type}/{obj.pk}"}
    if display:
        ref["display"] = display
    return ref


def _practitioner_ref(pro) -> dict | None:
    return reference("Practitioner", pro, pro.display_name) if pro is not None else None


def network_reference(network) -> dict:
    """A network's shared queue, named by identifier: the service it offers (HealthcareService), not served here."""
    return {"type": "HealthcareService", "identifier": {"system": NETWORK_SYSTEM, "value": str(network.pk)},
            "display": network.name}


def _patient_ref(patient) -> dict:
    return reference("Patient", patient, patient.display_name)


def _clean(data: dict) -> dict:
    """FHIR forbids empty values: drop None, "" and empty lists before validation."""
    return {key: value for key, value in data.items() if value not in (None, "", [], {})}


def task_status(case, *, report_started: bool) -> str:
    if case.state == S.ACCEPTED:
        return "in-progress" if report_started else "accepted"
    return TASK_STATUS[case.state]


def _case_identifier(case) -> dict:
    return {"system": f"urn:oid:{codes.platform_oid(codes.CASE_ARC)}", "value": case.reference}


def service_request(case) -> ServiceRequest:
    """The request as the requester made it: who asks whom, about which patient, with which question."""
    performer = []
    if case.expert_id:
        performer.append(_practitioner_ref(case.expert))
    elif case.network_id:  # addressed to a network's pool
        performer.append(network_reference(case.network))
    return ServiceRequest.model_validate(_clean({
        "resourceType": "ServiceRequest", "id": str(case.pk), "identifier": [_case_identifier(case)],
        "meta": {"versionId": version_of(case), "lastUpdated": _instant(case.updated_at)},
        "extension": [{"url": MODE_EXTENSION, "valueCode": case.mode}],
        "status": REQUEST_STATUS[case.state], "intent": "order", "priority": case.priority,
        "code": {"coding": [{"system": f"urn:oid:{codes.ACT_TE2.system}", "code": codes.ACT_TE2.code,
                             "display": codes.ACT_TE2.display}], "text": codes.ACT_TE2.display},
        "subject": _patient_ref(case.patient), "requester": _practitioner_ref(case.requester),
        "performer": performer, "authoredOn": _instant(case.submitted_at or case.created_at),
        "reasonCode": [{"text": case.question}],
        "note": [{"text": case.context}] if case.context.strip() else [],
        "supportingInfo": [{"reference": f"Consent/{case.consent_id}"}] if case.consent_id else [],
    }))


def task_outputs(versions, *, with_draft: bool) -> list[dict]:
    """The report as the Task's outputs: the last signed version (a Composition), and for its author the draft
    being written, field by field (what the expert sends back to save or sign it)."""
    outputs = []
    signed = [v for v in versions if v.status == v.Status.SIGNED]
    if signed:
        last = max(signed, key=lambda v: v.number)
        outputs.append({"type": _parameter(REPORT), "valueReference": reference("Composition", last)})
    draft = next((v for v in versions if v.status == v.Status.DRAFT), None)
    if draft is not None and with_draft:
        for code, (name, value_type) in REPORT_OUTPUTS.items():
            value = getattr(draft, name)
            if value not in (None, ""):
                outputs.append({"type": _parameter(code),
                                value_type: _instant(value) if value_type == "valueDateTime" else value})
    return outputs


def _parameter(code: str) -> dict:
    return {"coding": [{"system": TASK_PARAMETER_SYSTEM, "code": code}]}


def task(case, *, report_started: bool, outputs=(), information_request: str = "") -> Task:
    """The expert's work item on the request; businessStatus carries the platform's exact state, statusReason
    why it is there (the reason of a decline or withdrawal, the information the expert waits for)."""
    restriction = {"period": {"end": _instant(case.due_at)}} if case.due_at else None
    reason = case.decline_reason or case.withdraw_reason or (
        information_request if case.state == S.AWAITING_INFORMATION else "")
    return Task.model_validate(_clean({
        "resourceType": "Task", "id": str(case.pk), "identifier": [_case_identifier(case)],
        "meta": {"versionId": version_of(case), "lastUpdated": _instant(case.updated_at)},
        "status": task_status(case, report_started=report_started), "intent": "order", "priority": case.priority,
        "businessStatus": {"coding": [{"system": case_states_system(), "code": case.state,
                                       "display": str(case.get_state_display())}],
                           "text": str(case.get_state_display())},
        "statusReason": {"text": reason} if reason else None,
        "focus": reference("ServiceRequest", case), "for": _patient_ref(case.patient),
        "authoredOn": _instant(case.submitted_at or case.created_at), "lastModified": _instant(case.updated_at),
        "requester": _practitioner_ref(case.requester),
        "owner": _practitioner_ref(case.expert) or (network_reference(case.network) if case.network_id else None),
        "restriction": restriction, "output": list(outputs),
    }))


def patient(row) -> FhirPatient:
    """The INS travels only when the identity is qualified (identity-vigilance); else the platform's own id."""
    if codes.ins_shareable(row):
        identifier = {"use": "official", "system": INS_NIR_SYSTEM, "value": row.ins_nir,
                      "type": {"text": "INS-NIR"}}
    else:
        identifier = {"use": "usual", "system": f"urn:oid:{codes.platform_oid(codes.LOCAL_PATIENT_ARC)}",
                      "value": str(row.pk)}
    names = [{"use": "official", "family": row.birth_name, "given": row.first_names.split()}]
    if row.used_name:
        names.append({"use": "usual", "family": row.used_name, "given": row.first_names.split()[:1]})
    return FhirPatient.model_validate(_clean({
        "resourceType": "Patient", "id": str(row.pk), "identifier": [identifier], "name": names,
        "gender": GENDER.get(row.sex, "unknown"), "birthDate": row.birth_date.isoformat(),
    }))


def practitioner(pro) -> Practitioner:
    """idNatPs ("8" + RPPS, or "0" + ADELI) under the national OID, and the bare RPPS under its own system."""
    identifiers = []
    if pro.national_id:
        identifiers.append({"system": IDNATPS_SYSTEM, "value": pro.national_id, "type": {"text": "IDNPS"}})
    if pro.rpps:
        identifiers.append({"system": RPPS_SYSTEM, "value": pro.rpps, "type": {"text": "RPPS"}})
    name = _clean({"family": pro.last_name, "given": [pro.first_name], "prefix": [pro.title] if pro.title else []})
    telecom = [{"system": "email", "value": pro.mssante_email}] if pro.mssante_email else []
    return Practitioner.model_validate(_clean({
        "resourceType": "Practitioner", "id": str(pro.pk), "identifier": identifiers, "active": True,
        "name": [name], "telecom": telecom,
    }))


def organization(org) -> Organization:
    identifiers = []
    if org.finess:
        identifiers = [{"system": FINESS_SYSTEM, "value": org.finess, "type": {"text": "FINESS"}},
                       {"system": IDNATSTRUCT_SYSTEM, "value": codes.organisation_id(org), "type": {"text": "IDNST"}}]
    address = _clean({"city": org.city, "postalCode": org.postcode, "country": "FR"})
    return Organization.model_validate(_clean({
        "resourceType": "Organization", "id": str(org.pk), "identifier": identifiers, "active": True,
        "name": org.name, "address": [address] if len(address) > 1 else [],
    }))
