"""Codes and identifiers shared by the report exports (CDA, XDS/XDM metadata, FHIR): the French CI-SIS values.

Identifiers the platform mints itself (documents, document sets, local patient ids) are OIDs: `2.25.<UUID as an
integer>` for documents (ISO/IEC 9834-8, unique without registration) and arcs under `settings.PLATFORM_OID` for
the rest, so an establishment can put its own registered OID there.
"""

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@dataclass(frozen=True)
class Code:
    code: str
    display: str
    system: str  # OID
    system_name: str = ""


# Identifier systems (OIDs of the French assigning authorities).
OID_INS_NIR = "1.2.250.1.213.1.4.8"  # INS (NIR) of a patient, production
OID_IDNATPS = "1.2.250.1.71.4.2.1"  # idNatPs: "8" + RPPS or "0" + ADELI
OID_IDNATSTRUCT = "1.2.250.1.71.4.2.2"  # idNatStruct: "1" + FINESS
OID_LOINC = "2.16.840.1.113883.6.1"

# What the document is.
DOCUMENT_TYPE = Code("85208-7", "Compte-rendu d'acte de télémédecine", OID_LOINC, "LOINC")
CLASS_CODE = Code("10", "Compte rendu", "1.2.250.1.213.1.1.4.1")  # TRE_A03-ClasseDocument
# A level-1 CDA whose body is a PDF: the IHE XDS-SD format (TRE_A11-IheFormatCode).
FORMAT_CODE = Code("urn:ihe:iti:xds-sd:pdf:2008", "Document à corps non structuré en Pdf/A-1",
                   "1.3.6.1.4.1.19376.1.2.3")
CONFIDENTIALITY = Code("N", "Normal", "2.16.840.1.113883.5.25", "Confidentiality")
# The expert's act, from the NGAP codes that the TLM-CR schematron accepts for serviceEvent.
ACT_TE2 = Code("TE2", "Téléexpertise : acte du professionnel requis", "1.2.250.1.215.200.3.3", "NGAP")
ENCOUNTER_VIRTUAL = Code("VR", "Virtuelle (en l'absence du patient)", "2.16.840.1.113883.5.4")
# SubmissionSet.contentTypeCode (TRE_R209-TypeActivite): an external consultation act.
CONTENT_TYPE = Code("07", "Consultation Soins Externes", "1.2.250.1.213.2.2")
PROFESSION_SYSTEM = "1.2.250.1.213.1.1.4.5"  # TRE_G15 / TRE_R38 combined codes (G15_10/SM21)

# healthcareFacilityTypeCode (TRE_R02-SecteurActivite) and practiceSettingCode (TRE_A01-CadreExercice):
# deployment-wide settings, since the directory does not record an organisation's sector.
FACILITY_TYPES = {
    "SA01": "Etablissement public de santé",
    "SA03": "Etablissement privé PSPH",
    "SA04": "Etablissement privé non PSPH",
    "SA05": "Centre de santé",
    "SA07": "Cabinet individuel",
    "SA08": "Cabinet de groupe",
    "SA09": "Exercice en société",
}
PRACTICE_SETTINGS = {"ETABLISSEMENT": "Etablissement de santé", "AMBULATOIRE": "Ambulatoire"}

_DOCUMENT_SET = uuid.UUID("0d9a4a55-8c3b-4a55-9a1e-5b7c2f0e6d41")  # namespace of report set ids (uuid5)


def facility_type() -> Code:
    return Code(_setting_code("DMP_FACILITY_TYPE", FACILITY_TYPES), FACILITY_TYPES[settings.DMP_FACILITY_TYPE],
                "1.2.250.1.71.4.2.4", "healthcareFacilityTypeCode")


def practice_setting() -> Code:
    return Code(_setting_code("DMP_PRACTICE_SETTING", PRACTICE_SETTINGS),
                PRACTICE_SETTINGS[settings.DMP_PRACTICE_SETTING], "1.2.250.1.213.1.1.4.9", "practiceSettingCode")


def _setting_code(name: str, known: dict) -> str:
    value = getattr(settings, name)
    if value not in known:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(known)}, got {value!r}")
    return value


def uuid_oid(value: uuid.UUID) -> str:
    return f"2.25.{value.int}"


def document_oid(version) -> str:
    """The id of one signed version's document (CDA id, XDS uniqueId)."""
    return uuid_oid(version.id)


def set_oid(case) -> str:
    """The id shared by every version of a case's report (CDA setId)."""
    return uuid_oid(uuid.uuid5(_DOCUMENT_SET, str(case.id)))


def platform_oid(arc: int) -> str:
    """A branch under PLATFORM_OID: 1 local patient ids, 2 requests (cases), 3 the code system of case states."""
    return f"{settings.PLATFORM_OID}.{arc}"


LOCAL_PATIENT_ARC, CASE_ARC, CASE_STATE_ARC = 1, 2, 3


def profession_code(professional) -> Code:
    """G15_10/SM21 "Médecin - Hématologie (SM)" for a doctor with a specialty; G15_60 "Infirmier" otherwise."""
    profession = professional.profession
    if professional.specialty_id:
        return Code(f"G15_{profession.code}/{professional.specialty.code}",
                    f"{profession.label} - {professional.specialty.label} (SM)", PROFESSION_SYSTEM)
    return Code(f"G15_{profession.code}", profession.label, PROFESSION_SYSTEM)


def organisation_id(organisation) -> str:
    """idNatStruct of an organisation with a FINESS number, else ""."""
    return f"1{organisation.finess}" if organisation is not None and organisation.finess else ""


def ins_shareable(patient) -> bool:
    """The INS may travel in an exchange only when the identity is qualified (identity-vigilance rules)."""
    return bool(patient.ins_nir) and patient.identity_status == patient.IdentityStatus.QUALIFIED
