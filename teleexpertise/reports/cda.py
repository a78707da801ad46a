# PLACEHOLDER: replaced by the wip-cda branch at merge
"""A minimal stand-in for the CDA R2 document of a signed report, so distribution can be built and tested."""

import base64
from xml.etree import ElementTree as ET

from teleexpertise.reports.models import ReportVersion

_NS = "urn:hl7-org:v3"


def build_cda(version: ReportVersion, pdf: bytes) -> bytes:
    """A tiny ClinicalDocument whose non-XML body is the PDF."""
    ET.register_namespace("", _NS)
    root = ET.Element(f"{{{_NS}}}ClinicalDocument")
    ET.SubElement(root, f"{{{_NS}}}title").text = f"Compte-rendu de téléexpertise {version.case.reference}"
    body = ET.SubElement(ET.SubElement(ET.SubElement(root, f"{{{_NS}}}component"), f"{{{_NS}}}nonXMLBody"),
                         f"{{{_NS}}}text", mediaType="application/pdf", representation="B64")
    body.text = base64.b64encode(pdf).decode("ascii")
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
