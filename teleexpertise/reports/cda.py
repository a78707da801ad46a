"""The signed report as a CDA R2 level-1 document: the French "compte rendu d'acte de télémédecine" (TLM-CR).

The header mirrors the ANS example TLM-CR_2022.01 (LOINC 85208-7): patient by INS when the identity is qualified,
professionals by idNatPs, the expert's act (TE2) in serviceEvent, the request as the order it fulfils; the body is
the version's PDF, base64. The output is a pure function of the version and the PDF (no clock, no random): the DMP
outbox, the MSSanté package and a download give the same bytes. An amendment keeps the setId, numbers its version
and points at the version it replaces (relatedDocument RPLC).
"""

import base64

from django.conf import settings
from django.utils import timezone
from lxml import etree

from teleexpertise.reports import codes
from teleexpertise.reports.models import ReportVersion

NS = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
TITLE = "Compte-rendu de téléexpertise"
PLATFORM_NAME = "Plateforme de téléexpertise"
TEMPLATE_IDS = (
    "2.16.840.1.113883.2.8.2.1",  # HL7 France
    "1.2.250.1.213.1.1.1.1",  # CI-SIS
    "1.3.6.1.4.1.19376.1.2.20",  # CI-SIS, non-structured body (IHE XDS-SD)
)


def build_cda(version: ReportVersion, pdf: bytes) -> bytes:
    """The UTF-8 XML of the CDA document of a signed version, with `pdf` as its body."""
    if not version.is_signed:
        raise ValueError("Only signed report versions become CDA documents.")
    root = etree.Element(f"{{{NS}}}ClinicalDocument", nsmap={None: NS, "xsi": XSI})
    _header(root, version)
    _participants(root, version)
    _context(root, version)
    text = _el(_el(_el(root, "component"), "nonXMLBody"), "text", mediaType="application/pdf", representation="B64")
    text.text = base64.b64encode(pdf).decode("ascii")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _el(parent, tag: str, text: str | None = None, **attrs):
    element = etree.SubElement(parent, f"{{{NS}}}{tag}", {k: v for k, v in attrs.items() if v not in (None, "")})
    if text:
        element.text = text
    return element


def _code(parent, tag: str, code: codes.Code):
    return _el(parent, tag, code=code.code, displayName=code.display, codeSystem=code.system,
               codeSystemName=code.system_name)


def ts(moment) -> str:
    """An HL7 timestamp in Paris time with its offset, e.g. 20260114153500+0100."""
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z")


def _header(root, version: ReportVersion) -> None:
    _el(root, "realmCode", code="FR")
    _el(root, "typeId", root="2.16.840.1.113883.1.3", extension="POCD_HD000040")
    for template in TEMPLATE_IDS:
        _el(root, "templateId", root=template)
    _el(root, "id", root=codes.document_oid(version))
    _code(root, "code", codes.DOCUMENT_TYPE)
    _el(root, "title", TITLE)
    _el(root, "effectiveTime", value=ts(version.signed_at))
    _code(root, "confidentialityCode", codes.CONFIDENTIALITY)
    _el(root, "languageCode", code="fr-FR")
    _el(root, "setId", root=codes.set_oid(version.case))
    _el(root, "versionNumber", value=str(version.number))
    _record_target(root, version.case.patient)


def _record_target(root, patient) -> None:
    role = _el(_el(root, "recordTarget"), "patientRole")
    if codes.ins_shareable(patient):
        _el(role, "id", root=codes.OID_INS_NIR, extension=patient.ins_nir)
    _el(role, "id", root=codes.platform_oid(codes.LOCAL_PATIENT_ARC), extension=str(patient.id))
    person = _el(role, "patient", classCode="PSN")
    name = _el(person, "name")
    first = patient.first_names.split(" ")[0]
    _el(name, "family", patient.birth_name.upper(), qualifier="BR")
    _el(name, "given", patient.first_names)
    _el(name, "given", first, qualifier="BR")
    _el(name, "family", (patient.used_name or patient.birth_name).upper(), qualifier="CL")
    _el(name, "given", first, qualifier="CL")
    gender = {"F": ("F", "Féminin"), "M": ("M", "Masculin")}.get(patient.sex, ("U", "Inconnu"))
    _el(person, "administrativeGenderCode", code=gender[0], displayName=gender[1],
        codeSystem="2.16.840.1.113883.5.1")
    _el(person, "birthTime", value=patient.birth_date.strftime("%Y%m%d"))
    if patient.birth_place_code:
        _el(_el(_el(_el(person, "birthplace"), "place"), "addr"), "county", patient.birth_place_code)


def _participants(root, version: ReportVersion) -> None:
    case, expert = version.case, version.author
    author = _el(root, "author")
    _el(author, "time", value=ts(version.signed_at))
    _professional(_el(author, "assignedAuthor"), expert, person_tag="assignedPerson")
    _custodian(root, expert.organisation)
    for recipient in _recipients(version):
        _recipient(root, recipient)
    legal = _el(root, "legalAuthenticator")
    _el(legal, "time", value=ts(version.signed_at))
    _el(legal, "signatureCode", code="S")
    _professional(_el(legal, "assignedEntity"), expert, person_tag="assignedPerson")
    _referrer(root, case, version)


def _recipients(version: ReportVersion) -> list:
    """The requester, and the treating doctor when the directory knows them and they are someone else."""
    case = version.case
    people = [case.requester]
    doctor = case.patient.treating_doctor
    if doctor is not None and doctor.pk not in (case.requester_id, version.author_id):
        people.append(doctor)
    return people


def _professional(entity, pro, *, person_tag: str, org_tag: str = "representedOrganization") -> None:
    """id, code, addr, telecom, person and organisation of a professional (the CDA order of these elements)."""
    _el(entity, "id", root=codes.OID_IDNATPS, extension=pro.national_id)
    _code(entity, "code", codes.profession_code(pro))
    _address(entity, pro.organisation)
    _telecoms(entity, pro)
    _person_name(_el(entity, person_tag), pro)
    if pro.organisation is not None:
        _organisation(_el(entity, org_tag), pro.organisation, industry=org_tag == "representedOrganization")


def _address(parent, organisation) -> None:
    if organisation is None or not (organisation.postcode or organisation.city):
        return
    addr = _el(parent, "addr")
    if organisation.postcode:
        _el(addr, "postalCode", organisation.postcode)
    if organisation.city:
        _el(addr, "city", organisation.city.upper())


def _telecoms(parent, pro) -> None:
    if pro.phone:
        _el(parent, "telecom", value="tel:" + pro.phone.replace(" ", ""), use="WP")
    if pro.mssante_email:
        _el(parent, "telecom", value="mailto:" + pro.mssante_email)


def _person_name(person, pro) -> None:
    name = _el(person, "name")
    _el(name, "given", pro.first_name)
    _el(name, "family", pro.last_name.upper())
    if pro.title.lower() in ("dr", "docteur"):
        _el(name, "suffix", "DR")


def _organisation(org, organisation, *, industry: bool) -> None:
    struct_id = codes.organisation_id(organisation)
    if struct_id:
        _el(org, "id", root=codes.OID_IDNATSTRUCT, extension=struct_id)
    _el(org, "name", organisation.name)
    _address(org, organisation)
    if industry:
        _code(org, "standardIndustryClassCode", codes.practice_setting())


def _custodian(root, organisation) -> None:
    """Who keeps the document: the expert's establishment when it has a FINESS number, else the platform."""
    custodian = _el(_el(_el(root, "custodian"), "assignedCustodian"), "representedCustodianOrganization")
    struct_id = codes.organisation_id(organisation)
    if struct_id:
        _el(custodian, "id", root=codes.OID_IDNATSTRUCT, extension=struct_id)
        _el(custodian, "name", organisation.name)
        _address(custodian, organisation)
    else:
        _el(custodian, "id", root=settings.PLATFORM_OID)
        _el(custodian, "name", PLATFORM_NAME)


def _recipient(root, pro) -> None:
    recipient = _el(_el(root, "informationRecipient"), "intendedRecipient")
    _el(recipient, "id", root=codes.OID_IDNATPS, extension=pro.national_id)
    _address(recipient, pro.organisation)
    _telecoms(recipient, pro)
    _person_name(_el(recipient, "informationRecipient"), pro)
    if pro.organisation is not None:
        received = _el(recipient, "receivedOrganization")
        _el(received, "name", pro.organisation.name)
        _address(received, pro.organisation)


def _referrer(root, case, version: ReportVersion) -> None:
    """The requester takes part as the referrer (REF), from the request to the signed answer."""
    participant = _el(root, "participant", typeCode="REF")
    time = _el(participant, "time", **{f"{{{XSI}}}type": "IVL_TS"})
    _el(time, "low", value=ts(case.submitted_at or case.created_at))
    _el(time, "high", value=ts(version.signed_at))
    _professional(_el(participant, "associatedEntity", classCode="PROV"), case.requester,
                  person_tag="associatedPerson", org_tag="scopingOrganization")


def _context(root, version: ReportVersion) -> None:
    case, expert = version.case, version.author
    order = _el(_el(root, "inFulfillmentOf"), "order")
    _el(order, "id", root=codes.platform_oid(codes.CASE_ARC), extension=case.reference)
    event = _el(_el(root, "documentationOf"), "serviceEvent", classCode="ACT")
    _code(event, "code", codes.ACT_TE2)
    _el(_el(event, "effectiveTime"), "low", value=ts(version.act_at))
    _professional(_el(_el(event, "performer", typeCode="PRF"), "assignedEntity"), expert,
                  person_tag="assignedPerson")
    replaced = replaced_version(version)
    if replaced is not None:
        parent = _el(_el(root, "relatedDocument", typeCode="RPLC"), "parentDocument")
        _el(parent, "id", root=codes.document_oid(replaced))
        _el(parent, "setId", root=codes.set_oid(case))
        _el(parent, "versionNumber", value=str(replaced.number))
    _encounter(root, version)


def replaced_version(version: ReportVersion) -> ReportVersion | None:
    """The signed version this one replaces: the previous signed number."""
    if version.number <= 1:
        return None
    return (ReportVersion.objects.filter(case_id=version.case_id, status=ReportVersion.Status.SIGNED,
                                         number__lt=version.number).order_by("-number").first())


def _encounter(root, version: ReportVersion) -> None:
    expert = version.author
    encounter = _el(_el(root, "componentOf"), "encompassingEncounter")
    _code(encounter, "code", codes.ENCOUNTER_VIRTUAL)
    _el(_el(encounter, "effectiveTime"), "low", value=ts(version.act_at))
    _professional(_el(_el(encounter, "responsibleParty"), "assignedEntity", classCode="ASSIGNED"), expert,
                  person_tag="assignedPerson")
    facility = _el(_el(encounter, "location"), "healthCareFacility")
    struct_id = codes.organisation_id(expert.organisation)
    if struct_id:
        _el(facility, "id", root=codes.OID_IDNATSTRUCT, extension=struct_id)
    _code(facility, "code", codes.facility_type())
    if expert.organisation is not None:
        place = _el(facility, "location")
        _el(place, "name", expert.organisation.name)
        _address(place, expert.organisation)
