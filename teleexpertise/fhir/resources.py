"""Platform rows as FHIR R4 resources, as the JSON sent (`sent.checked`: a resource that does not validate against
its fhir.resources R4B model is never sent).

Resources served here point at each other by literal references (`Patient/<id>`): an integrator reads them back
from this server. The report's own resources (Composition, DocumentReference) come from `reports.fhir_export`,
which names people by national identifiers because those documents leave the platform.
"""

import copy
from datetime import UTC, datetime, timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.consent import Consent
from fhir.resources.R4B.organization import Organization
from fhir.resources.R4B.patient import Patient as FhirPatient
from fhir.resources.R4B.practitioner import Practitioner
from fhir.resources.R4B.practitionerrole import PractitionerRole
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from fhir.resources.R4B.servicerequest import ServiceRequest
from fhir.resources.R4B.task import Task

from teleexpertise.audit.labels import action_label
from teleexpertise.cases import questionnaires
from teleexpertise.cases.models import Case
from teleexpertise.core.templatetags.platform import actor_name
from teleexpertise.directory.models import display_name as pro_display_name
from teleexpertise.fhir.sent import checked
from teleexpertise.patients.models import Consent as ConsentRecord
from teleexpertise.patients.models import display_name as patient_display_name
from teleexpertise.reports import codes

S = Case.State
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
FINESS_SYSTEM = "http://finess.sante.gouv.fr"
INS_NIR_SYSTEM = f"urn:oid:{codes.OID_INS_NIR}"
IDNATPS_SYSTEM = f"urn:oid:{codes.OID_IDNATPS}"
IDNATSTRUCT_SYSTEM = f"urn:oid:{codes.OID_IDNATSTRUCT}"
# The national code systems of the ANS terminology server (the URLs its FHIR profiles use).
TRE_G15_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"
TRE_R38_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
# The platform's own extensions and code systems: the same on every deployment, unlike the PLATFORM_OID arcs.
PLATFORM_FHIR = "https://teleexpertise.fr/fhir"
EXTENSION = f"{PLATFORM_FHIR}/StructureDefinition"

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


def _instant(moment, zone=None) -> str | None:
    """`moment` in the active time zone (`zone`, when the caller already has it: looking it up is not free)."""
    if not moment:
        return None
    return moment.astimezone(zone or timezone.get_current_timezone()).isoformat(timespec="seconds")


def version_of(case) -> str:
    """The case's version (meta.versionId, ETag): its last change in microseconds. Every service moves
    `updated_at`, so a change anywhere in the request or the work item gives a new version."""
    return _version(case.updated_at)


def _version(updated_at) -> str:
    return str((updated_at - _EPOCH) // timedelta(microseconds=1))


def reference(resource_type: str, obj, display: str = "") -> dict:
    ref = {"reference": f"{resource_type}/{obj.pk}"}
    if display:
        ref["display"] = display
    return ref


def _practitioner_ref(pro) -> dict | None:
    return reference("Practitioner", pro, pro.display_name) if pro is not None else None


def network_reference(network) -> dict:
    """A network's shared queue, named by identifier: the service it offers (HealthcareService), not served here."""
    return _network_ref(network.pk, network.name)


def _network_ref(pk, name: str) -> dict:
    return {"type": "HealthcareService", "identifier": {"system": NETWORK_SYSTEM, "value": str(pk)},
            "display": name}


def _patient_ref(patient) -> dict:
    return reference("Patient", patient, patient.display_name)


def _clean(data: dict) -> dict:
    """FHIR forbids empty values: drop None, "" and empty lists before validation."""
    return {key: value for key, value in data.items() if value not in (None, "", [], {})}


def _case_identifier(case) -> dict:
    return _case_identifier_of(case.reference)


def _case_identifier_of(reference: str) -> dict:
    return {"system": f"urn:oid:{codes.platform_oid(codes.CASE_ARC)}", "value": reference}


def service_request(case) -> dict:
    """The request as the requester made it: who asks whom, about which patient, with which question."""
    performer = []
    if case.expert_id:
        performer.append(_practitioner_ref(case.expert))
    elif case.network_id:  # addressed to a network's pool
        performer.append(network_reference(case.network))
    return checked(ServiceRequest, _clean({
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
    signed = [v for v in versions if v.status == v.Status.SIGNED]
    last = max(signed, key=lambda v: v.number).pk if signed else None
    draft = next((v for v in versions if v.status == v.Status.DRAFT), None)
    return report_outputs(last, draft if with_draft else None)


def report_outputs(last_signed_id, draft) -> list[dict]:
    """The outputs from the last signed version's id (None: none yet) and the draft to show (None: none, or not
    for this caller)."""
    outputs = []
    if last_signed_id is not None:
        outputs.append({"type": _parameter(REPORT), "valueReference": {"reference": f"Composition/{last_signed_id}"}})
    if draft is not None:
        for code, (name, value_type) in REPORT_OUTPUTS.items():
            value = getattr(draft, name)
            if value not in (None, ""):
                outputs.append({"type": _parameter(code),
                                value_type: _instant(value) if value_type == "valueDateTime" else value})
    return outputs


def _parameter(code: str) -> dict:
    return {"coding": [{"system": TASK_PARAMETER_SYSTEM, "code": code}]}


# What a Task is made of: the case row's columns and its participants' (values() names). A search reads exactly
# these (`handlers._task_search`); a case read as a model gives the same through `task_values`. The Task is a
# function of them alone (with the active language and time zone), which is what lets a search remember its text
# (`sent.remembered_all`).
TASK_COLUMNS = (
    "pk", "reference", "state", "priority", "due_at", "decline_reason", "withdraw_reason", "created_at",
    "submitted_at", "updated_at", "patient_id", "patient__birth_name", "patient__used_name", "patient__first_names",
    "requester_id", "requester__title", "requester__first_name", "requester__last_name",
    "expert_id", "expert__title", "expert__first_name", "expert__last_name", "network_id", "network__name",
)
_PEOPLE = ("requester", "expert")


def task_values(case) -> dict:
    """`TASK_COLUMNS` of a case read as a model (its patient, professionals and network loaded or loadable)."""
    row = {"pk": case.pk, "patient__birth_name": case.patient.birth_name,
           "patient__used_name": case.patient.used_name, "patient__first_names": case.patient.first_names,
           "network__name": case.network.name if case.network_id else None}
    for role in _PEOPLE:
        pro = getattr(case, role)
        for field in ("title", "first_name", "last_name"):
            row[f"{role}__{field}"] = getattr(pro, field) if pro is not None else None
    for column in TASK_COLUMNS:
        if "__" not in column and column != "pk":
            row[column] = getattr(case, column)
    return row


def task(case, *, report_started: bool, outputs=(), information_request: str = "") -> dict:
    """The Task of a case read as a model."""
    return checked(Task, task_of_values(task_values(case), report_started=report_started, outputs=outputs,
                                        information_request=information_request))


def task_of_values(row: dict, *, report_started: bool, outputs=(), information_request: str = "") -> dict:
    """The expert's work item on the request, from `TASK_COLUMNS`, not checked yet (`sent.checked`, or
    `sent.remembered_all` for a search's page); businessStatus carries the platform's exact state, statusReason
    why it is there (the reason of a decline or withdrawal, the information the expert waits for)."""
    state_code, zone = row["state"], timezone.get_current_timezone()
    restriction = {"period": {"end": _instant(row["due_at"], zone)}} if row["due_at"] else None
    reason = row["decline_reason"] or row["withdraw_reason"] or (
        information_request if state_code == S.AWAITING_INFORMATION else "")
    state = str(S(state_code).label)  # not get_state_display(): it rebuilds and hashes the translated choices
    if state_code == S.ACCEPTED:
        status = "in-progress" if report_started else "accepted"
    else:
        status = TASK_STATUS[state_code]
    if row["expert_id"]:
        owner = _row_practitioner_ref(row, "expert")
    else:
        owner = _network_ref(row["network_id"], row["network__name"]) if row["network_id"] else None
    return _clean({
        "resourceType": "Task", "id": str(row["pk"]),
        "identifier": [_case_identifier_of(row["reference"])],
        "meta": {"versionId": _version(row["updated_at"]), "lastUpdated": _instant(row["updated_at"], zone)},
        "status": status, "intent": "order", "priority": row["priority"],
        "businessStatus": {"coding": [{"system": case_states_system(), "code": state_code, "display": state}],
                           "text": state},
        "statusReason": {"text": reason} if reason else None,
        "focus": {"reference": f"ServiceRequest/{row['pk']}"},
        "for": {"reference": f"Patient/{row['patient_id']}", "display": patient_display_name(
            row["patient__birth_name"], row["patient__used_name"], row["patient__first_names"])},
        "authoredOn": _instant(row["submitted_at"] or row["created_at"], zone),
        "lastModified": _instant(row["updated_at"], zone),
        "requester": _row_practitioner_ref(row, "requester"),
        "owner": owner, "restriction": restriction, "output": list(outputs),
    })


def _row_practitioner_ref(row: dict, role: str) -> dict | None:
    if not row[f"{role}_id"]:
        return None
    name = pro_display_name(row[f"{role}__title"], row[f"{role}__first_name"], row[f"{role}__last_name"])
    return {"reference": f"Practitioner/{row[f'{role}_id']}", "display": name}


def patient(row) -> dict:
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
    return checked(FhirPatient, _clean({
        "resourceType": "Patient", "id": str(row.pk), "identifier": [identifier], "name": names,
        "gender": GENDER.get(row.sex, "unknown"), "birthDate": row.birth_date.isoformat(),
    }))


def practitioner(pro) -> dict:
    """idNatPs ("8" + RPPS, or "0" + ADELI) under the national OID, and the bare RPPS under its own system."""
    identifiers = []
    if pro.national_id:
        identifiers.append({"system": IDNATPS_SYSTEM, "value": pro.national_id, "type": {"text": "IDNPS"}})
    if pro.rpps:
        identifiers.append({"system": RPPS_SYSTEM, "value": pro.rpps, "type": {"text": "RPPS"}})
    name = _clean({"family": pro.last_name, "given": [pro.first_name], "prefix": [pro.title] if pro.title else []})
    telecom = [{"system": "email", "value": pro.mssante_email}] if pro.mssante_email else []
    return checked(Practitioner, _clean({
        "resourceType": "Practitioner", "id": str(pro.pk), "identifier": identifiers, "active": True,
        "name": [name], "telecom": telecom,
    }))


def organization(org) -> dict:
    identifiers = []
    if org.finess:
        identifiers = [{"system": FINESS_SYSTEM, "value": org.finess, "type": {"text": "FINESS"}},
                       {"system": IDNATSTRUCT_SYSTEM, "value": codes.organisation_id(org), "type": {"text": "IDNST"}}]
    address = _clean({"city": org.city, "postalCode": org.postcode, "country": "FR"})
    return checked(Organization, _clean({
        "resourceType": "Organization", "id": str(org.pk), "identifier": identifiers, "active": True,
        "name": org.name, "address": [address] if len(address) > 1 else [],
    }))


def practitioner_role(pro) -> dict:
    """The one role a professional holds here: profession (TRE_G15), specialty (TRE_R38), structure, MSSanté
    address. Same id as the Practitioner: the directory keeps one activity a professional."""
    specialty = [{"coding": [{"system": TRE_R38_SYSTEM, "code": pro.specialty.code,
                              "display": pro.specialty.label}]}] if pro.specialty_id else []
    organisation = pro.organisation
    return checked(PractitionerRole, _clean({
        "resourceType": "PractitionerRole", "id": str(pro.pk), "active": True,
        "practitioner": _practitioner_ref(pro),
        "organization": reference("Organization", organisation, organisation.name) if organisation else None,
        "code": [{"coding": [{"system": TRE_G15_SYSTEM, "code": pro.profession.code,
                              "display": pro.profession.label}]}],
        "specialty": specialty,
        "telecom": [{"system": "email", "value": pro.mssante_email, "use": "work"}] if pro.mssante_email else [],
    }))


# --- Consent ---------------------------------------------------------------------------------------------

_C = ConsentRecord.Status
# "impossible" is served as an active permit: the record is what the platform acts on (the request may be sent,
# as the law allows in an emergency or when the patient cannot express a will); the patient gave nothing, so it
# has no performer, and the policy rule and the reason extension say which exception applies.
CONSENT_STATUS = {_C.GIVEN: "active", _C.REFUSED: "rejected", _C.IMPOSSIBLE: "active"}
CONSENT_PROVISION = {_C.GIVEN: "permit", _C.REFUSED: "deny", _C.IMPOSSIBLE: "permit"}
CONSENT_INFORMED_BY = f"{EXTENSION}/consent-informed-by"
CONSENT_INFORMATION = f"{EXTENSION}/consent-information"
CONSENT_IMPOSSIBLE_REASON = f"{EXTENSION}/consent-impossible-reason"
CONSENT_IMPOSSIBLE_REASONS = f"{PLATFORM_FHIR}/CodeSystem/consent-impossible-reason"
_INFORMATION_ITEMS = {"interest": "explained_interest", "practicalities": "explained_practicalities",
                      "right-to-refuse": "explained_right_to_refuse"}


def _consent_performer(row) -> list[dict]:
    """Who expressed the choice: the patient or their legal representative (no RelatedPerson resource here)."""
    if row.given_by == ConsentRecord.GivenBy.PATIENT:
        return [_patient_ref(row.patient)]
    if row.given_by == ConsentRecord.GivenBy.REPRESENTATIVE:
        return [{"type": "RelatedPerson", "display": row.representative_name or str(row.get_given_by_display())}]
    return []


def _consent_extensions(row) -> list[dict]:
    extensions = [
        {"url": CONSENT_INFORMED_BY, "valueReference": _practitioner_ref(row.informed_by)},
        {"url": CONSENT_INFORMATION, "extension": [{"url": item, "valueBoolean": getattr(row, name)}
                                                   for item, name in _INFORMATION_ITEMS.items()]},
    ]
    if row.status == _C.IMPOSSIBLE:
        extensions.append({"url": CONSENT_IMPOSSIBLE_REASON, "valueCodeableConcept": _clean({
            "coding": [{"system": CONSENT_IMPOSSIBLE_REASONS, "code": row.impossible_reason,
                        "display": str(row.get_impossible_reason_display())}] if row.impossible_reason else [],
            "text": row.impossible_detail or str(row.get_impossible_reason_display())})})
    return extensions


def consent(row, cases) -> dict:
    """The patient's consent to the tele-expertise (`treatment` scope: consent to a care act), recorded by the
    requester; `cases` are the requests it was recorded for, as the provision's data."""
    if row.status == _C.IMPOSSIBLE:
        rule = _("Consentement impossible à recueillir : demande envoyée au titre de l'urgence ou de l'impossibilité "
                 "(code de la santé publique, art. L1111-4).")
    else:
        rule = _("Consentement libre et éclairé du patient à l'acte de téléexpertise (code de la santé publique, "
                 "art. L1111-4).")
    return checked(Consent, _clean({
        "resourceType": "Consent", "id": str(row.pk), "meta": {"lastUpdated": _instant(row.recorded_at)},
        "extension": _consent_extensions(row),
        "status": CONSENT_STATUS[row.status],
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment",
                              "display": "Treatment"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": _patient_ref(row.patient), "dateTime": _instant(row.informed_at),
        "performer": _consent_performer(row),
        "policyRule": {"text": rule},
        "provision": _clean({
            "type": CONSENT_PROVISION[row.status],
            "purpose": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT",
                         "display": "treatment"}],
            "data": [{"meaning": "related", "reference": reference("ServiceRequest", case)} for case in cases],
        }),
    }))


# --- QuestionnaireResponse -------------------------------------------------------------------------------

def _form_canonical(form) -> str:
    """The form's canonical URL (url|version); a form saved without a url is named by its row's UUID."""
    return questionnaires.canonical(form.questionnaire) or f"urn:uuid:{form.pk}"


def questionnaire_response(case) -> dict:
    """The structured form's answers stored on the case, served at the case's id. What the stored JSON does not
    say (the form, the patient, the request, the author) is added from the case; what it says is kept."""
    data = copy.deepcopy(case.questionnaire_response)
    data["id"] = str(case.pk)  # one response a case, at the case's address whatever the JSON carried
    data["meta"] = {**data.get("meta", {}), "lastUpdated": _instant(case.updated_at)}
    data.setdefault("questionnaire", _form_canonical(case.request_form))
    data.setdefault("subject", _patient_ref(case.patient))
    data.setdefault("author", _practitioner_ref(case.requester))
    data.setdefault("authored", _instant(case.submitted_at or case.updated_at))
    request = reference("ServiceRequest", case)
    based_on = data.setdefault("basedOn", [])
    if request["reference"] not in {ref.get("reference") for ref in based_on}:
        based_on.append(request)
    return checked(QuestionnaireResponse, data)


# --- AuditEvent ------------------------------------------------------------------------------------------

AUDIT_ACTIONS = f"{PLATFORM_FHIR}/CodeSystem/audit-action"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
# The audited object, when it is something this facade serves (the case and its patient are entities anyway).
_OBJECT_TYPES = {"patients.consent": "Consent", "reports.reportversion": "Composition",
                 "directory.professional": "Practitioner", "directory.organisation": "Organization"}


def _audit_agent(event, actor, *, detailed: bool) -> dict:
    """The user who acted, by name as the case page shows them (never their e-mail), with their national id when
    they are a professional; "système" for the platform's jobs. Addresses only for staff, as in the admin."""
    if actor is not None and actor.national_id:
        who = {"identifier": {"system": IDNATPS_SYSTEM, "value": actor.national_id},
               "display": actor_name(event.actor_label)}
    else:
        who = {"display": actor_name(event.actor_label)}
    network = {"address": event.ip, "type": "2"} if detailed and event.ip else None
    return _clean({"who": who, "requestor": event.actor_id is not None, "network": network})


def _audit_entities(event, *, detailed: bool) -> list[dict]:
    describe = detailed or event.kind != event.Kind.READ  # the case page lists reads without their summary
    entities = [_clean({
        "what": {"reference": f"ServiceRequest/{event.case_id}"},
        "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": _OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        "description": event.summary if describe else "",
    })]
    if event.patient_id:
        entities.append({"what": {"reference": f"Patient/{event.patient_id}"},
                         "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
                         "role": {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"}})
    if event.object_type in _OBJECT_TYPES and event.object_id:
        entities.append({"what": {"reference": f"{_OBJECT_TYPES[event.object_type]}/{event.object_id}"},
                         "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"}})
    return entities


def audit_event(event, actor, *, detailed: bool) -> dict:
    """One row of a case's trail: `actor` is the acting user's professional (or None), `detailed` adds what only
    staff see in the admin (the IP address, the summary of reads)."""
    return checked(AuditEvent, {
        "resourceType": "AuditEvent", "id": str(event.pk), "meta": {"lastUpdated": _instant(event.at)},
        "type": {"system": _DCM, "code": "110110", "display": "Patient Record"},
        "subtype": [{"system": AUDIT_ACTIONS, "code": event.action, "display": action_label(event.action)}],
        "action": event.kind, "recorded": _instant(event.at),
        "agent": [_audit_agent(event, actor, detailed=detailed)],
        "source": {"observer": {"display": "Téléexpertise"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "4",
                             "display": "Application Server"}]},
        "entity": _audit_entities(event, detailed=detailed),
    })
