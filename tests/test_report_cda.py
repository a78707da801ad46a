"""The signed report as CDA R2 (TLM-CR), XDS metadata, IHE XDM package and FHIR resources."""

import base64
import hashlib
import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pypdf
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.utils import timezone
from fhir.resources.R4B.composition import Composition
from fhir.resources.R4B.documentreference import DocumentReference
from lxml import etree

from teleexpertise.cases.models import Case
from teleexpertise.patients.models import Patient
from teleexpertise.reports import codes, pdf, xds
from teleexpertise.reports.cda import build_cda
from teleexpertise.reports.fhir_export import report_composition, report_document_reference
from teleexpertise.reports.models import ReportVersion
from teleexpertise.reports.services import report_save_draft, report_sign
from teleexpertise.reports.xdm import build_xdm_zip

DATA = Path(__file__).resolve().parent / "data"
H = {"h": "urn:hl7-org:v3"}
R = {"rim": xds.RIM, "lcm": xds.LCM}
FAKE_PDF = b"%PDF-1.7\n% not rendered: these tests look at the envelope, not the body\n%%EOF\n"


@pytest.fixture(scope="module")
def schema():
    return etree.XMLSchema(etree.parse(str(DATA / "cda-schema" / "CDA_extended.xsd")))


def _parse(cda: bytes, schema) -> etree._Element:
    root = etree.fromstring(cda)
    assert schema.validate(etree.ElementTree(root)), schema.error_log
    return root


def _one(root, path: str):
    found = root.xpath(path, namespaces=H)
    assert len(found) == 1, (path, found)
    return found[0]


def _version(case, number=1) -> ReportVersion:
    return ReportVersion.objects.select_related("author", "case").get(case=case, number=number)


def _qualify(case) -> None:
    Patient.objects.filter(pk=case.patient_id).update(identity_status=Patient.IdentityStatus.QUALIFIED)


def _amend(cast, case) -> ReportVersion:
    expert = cast.actor(cast.expert)
    report_save_draft(actor=expert, case_id=case.pk, data={
        "act_at": timezone.now(), "answer": "Bénin, confirmé.", "conclusion": "Surveillance annuelle.",
        "amendment_reason": "Précision sur la surveillance."})
    report_sign(actor=expert, case_id=case.pk)
    return _version(case, 2)


def _element_paths(root) -> set[str]:
    paths = set()
    for element in root.iter():
        if isinstance(element.tag, str):
            names = [etree.QName(a).localname for a in reversed(list(element.iterancestors()))]
            paths.add("/".join([*names, etree.QName(element).localname]))
    return paths


# --- The check the issue names: the seed 002 case -------------------------------------------------------------

def test_seed_002_cda_has_the_right_codes_identifiers_and_an_embedded_pdf_that_opens(db, schema):
    call_command("seed_demo", stdout=io.StringIO())
    case = Case.objects.select_related("patient").get(requester__specialty_id="SM41", expert__specialty_id="SM21",
                                                      question__icontains="leucocytose")
    version = case.report_versions.filter(status=ReportVersion.Status.SIGNED).latest("number")
    expert, requester, patient = version.author, case.requester, case.patient
    assert (expert.last_name, requester.last_name) == ("Benali", "Vasseur")
    rendered = pdf.render_report_pdf(version)
    root = _parse(build_cda(version, rendered), schema)

    assert _one(root, "h:code").attrib == {"code": "85208-7", "codeSystem": "2.16.840.1.113883.6.1",
                                           "codeSystemName": "LOINC",
                                           "displayName": "Compte-rendu d'acte de télémédecine"}
    assert _one(root, "h:realmCode").get("code") == "FR" and _one(root, "h:languageCode").get("code") == "fr-FR"
    assert _one(root, "h:typeId").attrib == {"root": "2.16.840.1.113883.1.3", "extension": "POCD_HD000040"}
    assert [t.get("root") for t in root.xpath("h:templateId", namespaces=H)] == [
        "2.16.840.1.113883.2.8.2.1", "1.2.250.1.213.1.1.1.1", "1.3.6.1.4.1.19376.1.2.20"]
    assert _one(root, "h:id").get("root") == f"2.25.{version.id.int}"
    assert _one(root, "h:versionNumber").get("value") == "1"
    event = _one(root, "h:documentationOf/h:serviceEvent/h:code")
    assert (event.get("code"), event.get("codeSystem")) == ("TE2", "1.2.250.1.215.200.3.3")

    ins = _one(root, "h:recordTarget/h:patientRole/h:id[@root='1.2.250.1.213.1.4.8']")
    assert ins.get("extension") == patient.ins_nir and len(patient.ins_nir) == 15
    assert _one(root, "h:recordTarget//h:family[@qualifier='BR']").text == "LEROY"
    assert _one(root, "h:recordTarget//h:birthTime").get("value") == "19660314"
    assert _one(root, "h:recordTarget//h:administrativeGenderCode").get("code") == "F"
    for path in ("h:author/h:assignedAuthor", "h:legalAuthenticator/h:assignedEntity",
                 "h:documentationOf/h:serviceEvent/h:performer/h:assignedEntity",
                 "h:componentOf/h:encompassingEncounter/h:responsibleParty/h:assignedEntity"):
        assert _one(root, f"{path}/h:id").attrib == {"root": "1.2.250.1.71.4.2.1", "extension": "8" + expert.rpps}
        assert _one(root, f"{path}/h:code").get("code") == "G15_10/SM21"
    assert _one(root, "h:author/h:assignedAuthor/h:code").get("displayName") == "Médecin - Hématologie (SM)"
    referrer = _one(root, "h:participant[@typeCode='REF']/h:associatedEntity")
    assert _one(referrer, "h:id").get("extension") == "8" + requester.rpps
    assert _one(referrer, "h:code").get("code") == "G15_10/SM41"
    recipients = root.xpath("h:informationRecipient/h:intendedRecipient/h:id/@extension", namespaces=H)
    assert "8" + requester.rpps in recipients
    custodian = _one(root, "h:custodian//h:representedCustodianOrganization/h:id")
    assert custodian.attrib == {"root": "1.2.250.1.71.4.2.2", "extension": "1" + expert.organisation.finess}
    assert _one(root, "h:componentOf//h:healthCareFacility/h:code").get("code") == "SA01"

    text = _one(root, "h:component/h:nonXMLBody/h:text")
    assert (text.get("mediaType"), text.get("representation")) == ("application/pdf", "B64")
    embedded = base64.b64decode(text.text, validate=True)
    assert embedded == rendered
    reader = pypdf.PdfReader(io.BytesIO(embedded))
    words = " ".join(" ".join(page.extract_text() for page in reader.pages).split())
    assert " ".join(version.conclusion.split()) in words

    missing = _expected_paths() - _element_paths(root)
    assert not missing, sorted(missing)

    composition = report_composition(version)
    reference = report_document_reference(version, rendered)
    assert Composition.model_validate_json(composition.model_dump_json()).subject.identifier.value == patient.ins_nir
    assert base64.b64encode(rendered).decode() in reference.model_dump_json()
    assert DocumentReference.model_validate_json(reference.model_dump_json()).content[0].attachment.data == rendered


def _expected_paths() -> set[str]:
    """The element paths of the ANS example (tests/data/tlm-cr-structure.txt) that we mirror."""
    lines = (DATA / "tlm-cr-structure.txt").read_text(encoding="utf-8").splitlines()
    paths = {line.strip() for line in lines if line.strip() and not line.startswith(("#", "-"))}
    assert len(paths) > 150  # the list is the example's, not an empty file
    return paths


# --- CDA -------------------------------------------------------------------------------------------------------

def test_cda_is_deterministic_and_refuses_drafts(cast, schema):
    case = cast.case_in("answered")
    version = _version(case)
    assert build_cda(version, FAKE_PDF) == build_cda(_version(case), FAKE_PDF)
    report_save_draft(actor=cast.actor(cast.expert), case_id=case.pk, data={
        "act_at": timezone.now(), "answer": "Brouillon", "conclusion": "Brouillon"})
    with pytest.raises(ValueError):
        build_cda(_version(case, 2), FAKE_PDF)


def test_the_ins_travels_only_for_a_qualified_identity(cast, schema):
    case = cast.case_in("answered")
    root = _parse(build_cda(_version(case), FAKE_PDF), schema)
    ids = root.xpath("h:recordTarget/h:patientRole/h:id", namespaces=H)
    assert [i.get("root") for i in ids] == [codes.platform_oid(codes.LOCAL_PATIENT_ARC)]
    assert ids[0].get("extension") == str(case.patient_id)
    _qualify(case)
    root = _parse(build_cda(_version(case), FAKE_PDF), schema)
    assert root.xpath("h:recordTarget/h:patientRole/h:id/@extension", namespaces=H)[0] == Patient.objects.get(
        pk=case.patient_id).ins_nir


def test_an_amendment_replaces_the_previous_version_in_cda_xds_and_fhir(cast, schema):
    case = cast.case_in("answered")
    v1 = _version(case)
    v2 = _amend(cast, case)
    first, second = (_parse(build_cda(v, FAKE_PDF), schema) for v in (v1, v2))
    assert _one(first, "h:setId").get("root") == _one(second, "h:setId").get("root") == codes.set_oid(case)
    assert _one(second, "h:versionNumber").get("value") == "2"
    assert not first.xpath("h:relatedDocument", namespaces=H)
    parent = _one(second, "h:relatedDocument[@typeCode='RPLC']/h:parentDocument")
    assert _one(parent, "h:id").get("root") == _one(first, "h:id").get("root") != _one(second, "h:id").get("root")
    assert _one(parent, "h:versionNumber").get("value") == "1"

    metadata = etree.fromstring(xds.build_submission(v2, build_cda(v2, FAKE_PDF)))
    replace = metadata.xpath(f"//rim:Association[@associationType='{xds.RPLC}']", namespaces=R)
    assert [(a.get("sourceObject"), a.get("targetObject")) for a in replace] == [
        (f"urn:uuid:{v2.id}", f"urn:uuid:{v1.id}")]
    relates = report_composition(v2).relatesTo[0]
    assert (relates.code, relates.targetIdentifier.value) == ("replaces", f"urn:oid:{codes.document_oid(v1)}")
    assert report_document_reference(v2, FAKE_PDF).relatesTo[0].target.identifier.value == \
        f"urn:oid:{codes.document_oid(v1)}"


def test_facility_type_must_be_a_known_code(cast, settings):
    version = _version(cast.case_in("answered"))
    settings.DMP_FACILITY_TYPE = "XX99"
    with pytest.raises(ImproperlyConfigured, match="DMP_FACILITY_TYPE"):
        build_cda(version, FAKE_PDF)


# --- XDS metadata and the XDM package --------------------------------------------------------------------------

def _classification(entry, scheme: str):
    found = entry.xpath(f"rim:Classification[@classificationScheme='{scheme}']", namespaces=R)
    assert len(found) == 1, scheme
    return found[0]


def _slot(parent, name: str) -> list[str]:
    return parent.xpath(f"rim:Slot[@name='{name}']/rim:ValueList/rim:Value/text()", namespaces=R)


def test_xds_metadata_carries_the_ci_sis_codes(cast, settings):
    case = cast.case_in("answered")
    _qualify(case)
    version = _version(case)
    patient = Patient.objects.get(pk=case.patient_id)
    cda = build_cda(version, FAKE_PDF)
    root = etree.fromstring(xds.build_submission(version, cda))
    assert root.tag == f"{{{xds.LCM}}}SubmitObjectsRequest"
    entry = _one_rim(root, "//rim:ExtrinsicObject")
    assert (entry.get("id"), entry.get("mimeType"), entry.get("objectType")) == (
        f"urn:uuid:{version.id}", "text/xml", xds.STABLE_DOCUMENT_ENTRY)
    expected = {xds.DE_CLASS_CODE: ("10", "1.2.250.1.213.1.1.4.1"), xds.DE_TYPE_CODE: ("85208-7", codes.OID_LOINC),
                xds.DE_FORMAT_CODE: ("urn:ihe:iti:xds-sd:pdf:2008", "1.3.6.1.4.1.19376.1.2.3"),
                xds.DE_CONFIDENTIALITY: ("N", "2.16.840.1.113883.5.25"),
                xds.DE_FACILITY_TYPE: ("SA01", "1.2.250.1.71.4.2.4"),
                xds.DE_PRACTICE_SETTING: ("ETABLISSEMENT", "1.2.250.1.213.1.1.4.9")}
    for scheme, (code, system) in expected.items():
        classification = _classification(entry, scheme)
        assert (classification.get("nodeRepresentation"), _slot(classification, "codingScheme")) == (code, [system])
    assert _slot(entry, "hash") == [hashlib.sha1(cda).hexdigest()]  # noqa: S324
    assert _slot(entry, "size") == [str(len(cda))]
    patient_cx = f"{patient.ins_nir}^^^&1.2.250.1.213.1.4.8&ISO^NH"
    assert _slot(entry, "sourcePatientId") == [patient_cx]
    ids = {e.get("identificationScheme"): e.get("value") for e in root.xpath("//rim:ExternalIdentifier", namespaces=R)}
    assert ids[xds.DE_PATIENT_ID] == ids[xds.SS_PATIENT_ID] == patient_cx
    assert ids[xds.DE_UNIQUE_ID] == etree.fromstring(cda).find("h:id", H).get("root")
    assert ids[xds.SS_SOURCE_ID] == settings.PLATFORM_OID
    author = _classification(entry, xds.DE_AUTHOR)
    assert _slot(author, "authorPerson") == [f"8{cast.expert.rpps}^DERMATO^Anne^^^^^^&1.2.250.1.71.4.2.1&ISO^D^^^IDNPS"]
    assert _slot(author, "authorSpecialty")[0].startswith("G15_10/SM15^")
    package = _one_rim(root, "//rim:RegistryPackage")
    assert _classification(package, xds.SS_CONTENT_TYPE).get("nodeRepresentation") == "07"
    member = _one_rim(root, f"//rim:Association[@associationType='{xds.HAS_MEMBER}']")
    assert (member.get("sourceObject"), member.get("targetObject")) == (package.get("id"), entry.get("id"))
    assert not root.xpath(f"//rim:Association[@associationType='{xds.RPLC}']", namespaces=R)


def _one_rim(root, path: str):
    found = root.xpath(path, namespaces=R)
    assert len(found) == 1, path
    return found[0]


def test_xdm_package_holds_the_cda_and_its_metadata(cast):
    version = _version(cast.case_in("answered"))
    cda = build_cda(version, FAKE_PDF)
    archive = zipfile.ZipFile(io.BytesIO(build_xdm_zip(version, cda)))
    assert archive.testzip() is None
    assert archive.namelist() == ["INDEX.HTM", "README.TXT", "IHE_XDM/SUBSET01/METADATA.XML",
                                  "IHE_XDM/SUBSET01/DOC0001.XML"]
    assert archive.read("IHE_XDM/SUBSET01/DOC0001.XML") == cda
    metadata = etree.fromstring(archive.read("IHE_XDM/SUBSET01/METADATA.XML"))
    entry = _one_rim(metadata, "//rim:ExtrinsicObject")
    assert _slot(entry, "URI") == ["DOC0001.XML"]
    assert _slot(entry, "hash") == [hashlib.sha1(cda).hexdigest()]  # noqa: S324
    assert 'href="IHE_XDM/SUBSET01/DOC0001.XML"' in archive.read("INDEX.HTM").decode()
    assert version.case.reference in archive.read("README.TXT").decode()


# --- FHIR ------------------------------------------------------------------------------------------------------

def test_fhir_resources_parse_and_use_the_ans_identifier_systems(cast):
    case = cast.case_in("answered")
    _qualify(case)
    ReportVersion.objects.filter(case=case).update(consultation_at=timezone.now() + timedelta(days=3),
                                                   orientation="consultation")
    version = _version(case)
    composition = Composition.model_validate_json(report_composition(version).model_dump_json())
    assert composition.type.coding[0].code == "85208-7" and composition.type.coding[0].system == "http://loinc.org"
    assert composition.subject.identifier.system == "urn:oid:1.2.250.1.213.1.4.8"
    assert composition.author[0].identifier.system == "urn:oid:1.2.250.1.71.4.2.1"
    assert composition.author[0].identifier.value == "8" + cast.expert.rpps
    assert composition.custodian.identifier.system == "urn:oid:1.2.250.1.71.4.2.2"
    assert composition.event[0].code[0].coding[0].code == "TE2"
    titles = [section.title for section in composition.section]
    assert titles[:3] == ["Question posée", "Réponse", "Conclusion"] and "Orientation et suivi" in titles
    json = report_document_reference(version, FAKE_PDF).model_dump_json()
    assert f'"data":"{base64.b64encode(FAKE_PDF).decode()}"' in json
    reference = DocumentReference.model_validate_json(json)
    attachment = reference.content[0].attachment  # base64Binary values come back decoded
    assert (attachment.contentType, attachment.size, attachment.data) == ("application/pdf", len(FAKE_PDF), FAKE_PDF)
    assert attachment.hash == hashlib.sha1(FAKE_PDF).digest()  # noqa: S324
    assert reference.masterIdentifier.value == f"urn:oid:2.25.{version.id.int}"
    assert reference.context.facilityType.coding[0].code == "SA01"


def test_fhir_narrative_escapes_report_text(cast):
    case = cast.case_in("answered")
    ReportVersion.objects.filter(case=case).update(conclusion="<script>alert(1)</script> & suite")
    composition = report_composition(_version(case))
    conclusion = next(s for s in composition.section if s.title == "Conclusion")
    assert "<script>" not in conclusion.text.div and "&lt;script&gt;" in conclusion.text.div
