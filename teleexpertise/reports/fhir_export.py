"""The signed report as FHIR R4 resources: a Composition (the text, by section) and a DocumentReference (the PDF).

Built with fhir.resources' R4B models, so every resource is structurally valid when it is made. People and places
are referenced by their national identifiers (INS-NIR, idNatPs, idNatStruct under `urn:oid:` systems), not by
server ids: these resources leave the platform, where our ids mean nothing.
"""

import base64
import hashlib

from django.utils import timezone
from django.utils.html import linebreaks
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.documentreference import DocumentReference

from teleexpertise.reports import codes
from teleexpertise.reports.cda import TITLE, replaced_version
from teleexpertise.reports.models import ReportVersion

RFC3986 = "urn:ietf:rfc:3986"


def _system(oid: str) -> str:
    return f"urn:oid:{oid}"


def _coding(code: codes.Code) -> dict:
    return {"system": "http://loinc.org" if code.system == codes.OID_LOINC else _system(code.system),
            "code": code.code, "display": code.display}


def _concept(code: codes.Code) -> dict:
    return {"coding": [_coding(code)], "text": code.display}


def document_identifier(version: ReportVersion) -> dict:
    return {"system": RFC3986, "value": f"urn:oid:{codes.document_oid(version)}"}


def patient_reference(patient) -> dict:
    if codes.ins_shareable(patient):
        identifier = {"system": _system(codes.OID_INS_NIR), "value": patient.ins_nir}
    else:
        identifier = {"system": _system(codes.platform_oid(codes.LOCAL_PATIENT_ARC)), "value": str(patient.id)}
    return {"type": "Patient", "identifier": identifier, "display": patient.display_name}


def practitioner_reference(pro) -> dict:
    return {"type": "Practitioner", "identifier": {"system": _system(codes.OID_IDNATPS), "value": pro.national_id},
            "display": pro.display_name}


def organisation_reference(organisation) -> dict | None:
    if organisation is None:
        return None
    reference = {"type": "Organization", "display": organisation.name}
    if codes.organisation_id(organisation):
        reference["identifier"] = {"system": _system(codes.OID_IDNATSTRUCT),
                                   "value": codes.organisation_id(organisation)}
    return reference


def _instant(moment) -> str:
    return timezone.localtime(moment).isoformat(timespec="seconds")


def _narrative(text: str) -> dict:
    html = linebreaks(text, autoescape=True)
    return {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{html}</div>'}


def _sections(version: ReportVersion) -> list[dict]:
    orientation = version.get_orientation_display()
    if version.consultation_at:
        orientation += " — " + timezone.localtime(version.consultation_at).strftime("%d/%m/%Y %H:%M")
    if version.orientation_detail:
        orientation += "\n" + version.orientation_detail
    parts = [("Question posée", version.case.question), ("Réponse", version.answer),
             ("Conclusion", version.conclusion), ("Traitements proposés", version.treatments),
             ("Justification de la complétude des données", version.prescription_justification),
             ("Examens complémentaires", version.exams), ("Orientation et suivi", orientation),
             ("Incidents techniques", version.technical_incidents or "Aucun"),
             ("Motif de la correction", version.amendment_reason)]
    return [{"title": title, "text": _narrative(text)} for title, text in parts if text.strip()]


def report_composition(version: ReportVersion) -> Composition:
    """The report's content, section by section, attested by the expert."""
    case, expert = version.case, version.author
    data = {
        "resourceType": "Composition", "language": "fr-FR", "identifier": document_identifier(version),
        "status": "final", "type": _concept(codes.DOCUMENT_TYPE), "category": [_concept(codes.CLASS_CODE)],
        "subject": patient_reference(case.patient), "date": _instant(version.signed_at),
        "author": [practitioner_reference(expert)], "title": TITLE, "confidentiality": codes.CONFIDENTIALITY.code,
        "attester": [{"mode": "legal", "time": _instant(version.signed_at), "party": practitioner_reference(expert)}],
        "event": [{"code": [_concept(codes.ACT_TE2)], "period": {"start": _instant(version.act_at)}}],
        "text": _narrative(f"{TITLE} {case.reference}, version {version.number}"),
        "section": _sections(version),
    }
    if organisation_reference(expert.organisation):
        data["custodian"] = organisation_reference(expert.organisation)
    replaced = replaced_version(version)
    if replaced is not None:
        data["relatesTo"] = [{"code": "replaces", "targetIdentifier": document_identifier(replaced)}]
    return Composition.model_validate(data)


def report_document_reference(version: ReportVersion, pdf: bytes) -> DocumentReference:
    """The signed version's PDF as a document, with the XDS-like metadata the French profiles use."""
    case, expert = version.case, version.author
    attachment = {"contentType": "application/pdf", "language": "fr-FR", "data": base64.b64encode(pdf).decode(),
                  "size": len(pdf), "hash": base64.b64encode(hashlib.sha1(pdf).digest()).decode(),  # noqa: S324
                  "title": f"{TITLE} {case.reference} v{version.number}", "creation": _instant(version.signed_at)}
    data = {
        "resourceType": "DocumentReference", "masterIdentifier": document_identifier(version),
        "status": "current", "docStatus": "final", "type": _concept(codes.DOCUMENT_TYPE),
        "category": [_concept(codes.CLASS_CODE)], "subject": patient_reference(case.patient),
        "date": _instant(version.signed_at), "author": [practitioner_reference(expert)],
        "authenticator": practitioner_reference(expert), "description": TITLE,
        "securityLabel": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                                       "code": codes.CONFIDENTIALITY.code, "display": codes.CONFIDENTIALITY.display}]}],
        "content": [{"attachment": attachment}],
        "context": {"event": [_concept(codes.ACT_TE2)], "period": {"start": _instant(version.act_at)},
                    "facilityType": _concept(codes.facility_type()),
                    "practiceSetting": _concept(codes.practice_setting()),
                    "sourcePatientInfo": patient_reference(case.patient)},
    }
    if organisation_reference(expert.organisation):
        data["custodian"] = organisation_reference(expert.organisation)
    replaced = replaced_version(version)
    if replaced is not None:
        data["relatesTo"] = [{"code": "replaces", "target": {"type": "DocumentReference",
                                                             "identifier": document_identifier(replaced)}}]
    return DocumentReference.model_validate(data)
