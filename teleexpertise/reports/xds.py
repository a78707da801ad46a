"""The IHE XDS.b submission metadata of a report's CDA (ebRIM 3.0 SubmitObjectsRequest), with the CI-SIS codes.

One SubmissionSet, one DocumentEntry, the HasMember association between them and, for an amendment, the RPLC
association to the DocumentEntry of the version it replaces. A DMP connector sends this with the CDA
(ProvideAndRegisterDocumentSet-b); an IHE XDM package carries it as METADATA.XML, where `uri` names the file.
The DocumentEntry's entryUUID is the version's UUID, so a replacement can name its predecessor without asking
the registry.
"""

import hashlib
import uuid
from datetime import UTC

from django.conf import settings
from django.utils import timezone
from lxml import etree

from teleexpertise.reports import codes
from teleexpertise.reports.cda import TITLE, replaced_version
from teleexpertise.reports.models import ReportVersion

LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"

# IHE ITI TF-3 identifiers (classification schemes, external identifiers, object and association types).
STABLE_DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
SUBMISSION_SET_NODE = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"
DE_AUTHOR = "urn:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d"
DE_CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"
DE_CONFIDENTIALITY = "urn:uuid:f4f85eac-e6cb-4883-b524-f2705394840f"
DE_FORMAT_CODE = "urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d"
DE_FACILITY_TYPE = "urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1"
DE_PRACTICE_SETTING = "urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead"
DE_TYPE_CODE = "urn:uuid:f0306f51-975f-434e-a61c-c59651d33983"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SS_AUTHOR = "urn:uuid:a7058bb9-b4e4-4307-ba5b-e3f0ab85e12d"
SS_CONTENT_TYPE = "urn:uuid:aa543740-bdda-424e-8c96-df4873be8500"
SS_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SS_SOURCE_ID = "urn:uuid:554ac39e-e3fe-47fe-b233-965d2a147832"
SS_UNIQUE_ID = "urn:uuid:96fdda7c-d067-4183-912e-bf5ee74998a8"
HAS_MEMBER = "urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"
RPLC = "urn:ihe:iti:2007:AssociationType:RPLC"
_TYPE = "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:"


def entry_uuid(version: ReportVersion) -> str:
    return f"urn:uuid:{version.id}"


def build_submission(version: ReportVersion, cda: bytes, *, uri: str | None = None, submitted_at=None) -> bytes:
    """The SubmitObjectsRequest (UTF-8 XML) that files `cda`, the CDA of `version`."""
    request = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = _rim(request, "RegistryObjectList")
    builder = _Builder(version, cda)
    builder.submission_set(objects, submitted_at or timezone.now())
    builder.document_entry(objects, uri)
    builder.associations(objects)
    return etree.tostring(request, xml_declaration=True, encoding="UTF-8")


def _rim(parent, tag: str, **attrs):
    return etree.SubElement(parent, f"{{{RIM}}}{tag}", attrs)


def _slot(parent, name: str, *values: str) -> None:
    value_list = _rim(_rim(parent, "Slot", name=name), "ValueList")
    for value in values:
        _rim(value_list, "Value").text = value


def _name(parent, text: str) -> None:
    _rim(_rim(parent, "Name"), "LocalizedString", value=text, charset="UTF-8")


def sha1_hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()  # noqa: S324 - the XDS hash attribute is SHA-1 by definition


def xds_time(moment) -> str:
    """XDS times are UTC, YYYYMMDDhhmmss."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%S")


def patient_id(patient) -> str:
    """CX of the patient: the INS when it may be shared, else the platform's local identifier."""
    if codes.ins_shareable(patient):
        return f"{patient.ins_nir}^^^&{codes.OID_INS_NIR}&ISO^NH"
    return f"{patient.id}^^^&{codes.platform_oid(codes.LOCAL_PATIENT_ARC)}&ISO^PI"


def person_xcn(pro) -> str:
    """XCN of a professional with the CI-SIS conventions: idNatPs^NAME^First^^^^^^&OID&ISO^D^^^IDNPS."""
    return f"{pro.national_id}^{pro.last_name.upper()}^{pro.first_name}^^^^^^&{codes.OID_IDNATPS}&ISO^D^^^IDNPS"


def institution_xon(organisation) -> str:
    struct_id = codes.organisation_id(organisation)
    if not struct_id:
        return organisation.name
    return f"{organisation.name}^^^^^&{codes.OID_IDNATSTRUCT}&ISO^IDNST^^^{struct_id}"


class _Builder:
    """Writes the registry objects of one submission; ids of classifications are symbolic and sequential."""

    def __init__(self, version: ReportVersion, cda: bytes):
        self.version, self.cda = version, cda
        self.case, self.patient, self.expert = version.case, version.case.patient, version.author
        self.set_id = f"urn:uuid:{uuid.uuid4()}"
        self.entry_id = entry_uuid(version)
        self.counter = 0

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:02d}"

    def _classification(self, parent, scheme: str, target: str, code: codes.Code | None = None):
        element = _rim(parent, "Classification", id=self._id("cl"), classificationScheme=scheme,
                       classifiedObject=target, nodeRepresentation=code.code if code else "",
                       objectType=_TYPE + "Classification")
        if code is not None:
            _slot(element, "codingScheme", code.system)
            _name(element, code.display)
        return element

    def _external_id(self, parent, scheme: str, target: str, value: str, name: str) -> None:
        element = _rim(parent, "ExternalIdentifier", id=self._id("ei"), identificationScheme=scheme,
                       registryObject=target, value=value, objectType=_TYPE + "ExternalIdentifier")
        _name(element, name)

    def _author(self, parent, scheme: str, target: str) -> None:
        author = self._classification(parent, scheme, target)
        _slot(author, "authorPerson", person_xcn(self.expert))
        if self.expert.organisation is not None:
            _slot(author, "authorInstitution", institution_xon(self.expert.organisation))
        profession = codes.profession_code(self.expert)
        _slot(author, "authorSpecialty", f"{profession.code}^{profession.display}^{profession.system}")

    def submission_set(self, objects, submitted_at) -> None:
        package = _rim(objects, "RegistryPackage", id=self.set_id, objectType=_TYPE + "RegistryPackage")
        _slot(package, "submissionTime", xds_time(submitted_at))
        _name(package, TITLE)
        self._author(package, SS_AUTHOR, self.set_id)
        self._classification(package, SS_CONTENT_TYPE, self.set_id, codes.CONTENT_TYPE)
        _rim(package, "Classification", id=self._id("cl"), classificationNode=SUBMISSION_SET_NODE,
             classifiedObject=self.set_id, objectType=_TYPE + "Classification")
        self._external_id(package, SS_PATIENT_ID, self.set_id, patient_id(self.patient), "XDSSubmissionSet.patientId")
        self._external_id(package, SS_SOURCE_ID, self.set_id, settings.PLATFORM_OID, "XDSSubmissionSet.sourceId")
        self._external_id(package, SS_UNIQUE_ID, self.set_id, codes.uuid_oid(uuid.uuid4()),
                          "XDSSubmissionSet.uniqueId")

    def document_entry(self, objects, uri: str | None) -> None:
        entry = _rim(objects, "ExtrinsicObject", id=self.entry_id, mimeType="text/xml",
                     objectType=STABLE_DOCUMENT_ENTRY)
        self._entry_slots(entry, uri)
        _name(entry, TITLE)
        self._author(entry, DE_AUTHOR, self.entry_id)
        for scheme, code in ((DE_CLASS_CODE, codes.CLASS_CODE), (DE_CONFIDENTIALITY, codes.CONFIDENTIALITY),
                             (DE_FORMAT_CODE, codes.FORMAT_CODE), (DE_FACILITY_TYPE, codes.facility_type()),
                             (DE_PRACTICE_SETTING, codes.practice_setting()), (DE_TYPE_CODE, codes.DOCUMENT_TYPE)):
            self._classification(entry, scheme, self.entry_id, code)
        self._external_id(entry, DE_PATIENT_ID, self.entry_id, patient_id(self.patient), "XDSDocumentEntry.patientId")
        self._external_id(entry, DE_UNIQUE_ID, self.entry_id, codes.document_oid(self.version),
                          "XDSDocumentEntry.uniqueId")

    def _entry_slots(self, entry, uri: str | None) -> None:
        version, patient = self.version, self.patient
        _slot(entry, "creationTime", xds_time(version.signed_at))
        _slot(entry, "hash", sha1_hex(self.cda))
        _slot(entry, "size", str(len(self.cda)))
        _slot(entry, "languageCode", "fr-FR")
        _slot(entry, "legalAuthenticator", person_xcn(self.expert))
        _slot(entry, "serviceStartTime", xds_time(version.act_at))
        _slot(entry, "serviceStopTime", xds_time(version.act_at))
        _slot(entry, "sourcePatientId", patient_id(patient))
        _slot(entry, "sourcePatientInfo", f"PID-3|{patient_id(patient)}",
              f"PID-5|{patient.birth_name.upper()}^{patient.first_names.split(' ')[0]}^^^^^L",
              f"PID-7|{patient.birth_date:%Y%m%d}", f"PID-8|{patient.sex if patient.sex in ('F', 'M') else 'U'}")
        if uri:
            _slot(entry, "URI", uri)

    def associations(self, objects) -> None:
        member = _rim(objects, "Association", id=self._id("as"), associationType=HAS_MEMBER,
                      sourceObject=self.set_id, targetObject=self.entry_id, objectType=_TYPE + "Association")
        _slot(member, "SubmissionSetStatus", "Original")
        replaced = replaced_version(self.version)
        if replaced is not None:
            _rim(objects, "Association", id=self._id("as"), associationType=RPLC, sourceObject=self.entry_id,
                 targetObject=entry_uuid(replaced), objectType=_TYPE + "Association")
