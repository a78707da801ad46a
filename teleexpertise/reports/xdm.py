# PLACEHOLDER: replaced by the wip-cda branch at merge
"""A minimal stand-in for the IHE XDM package (IHE_XDM.ZIP) that carries the CDA over MSSanté."""

import io
import zipfile

from teleexpertise.reports.models import ReportVersion

_FIXED_TIME = (2026, 1, 1, 0, 0, 0)


def build_xdm_zip(version: ReportVersion, cda: bytes) -> bytes:
    """A zip with IHE_XDM/SUBSET01/METADATA.XML and DOC0001.XML (the CDA), INDEX.HTM and README.TXT."""
    metadata = (b'<?xml version="1.0" encoding="UTF-8"?>\n<SubmitObjectsRequest '
                b'xmlns="urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"/>\n')
    files = {
        "INDEX.HTM": b"<html><body><a href=\"IHE_XDM/SUBSET01/DOC0001.XML\">DOC0001.XML</a></body></html>\n",
        "README.TXT": f"Compte-rendu {version.case.reference} v{version.number}\n".encode(),
        "IHE_XDM/SUBSET01/METADATA.XML": metadata,
        "IHE_XDM/SUBSET01/DOC0001.XML": cda,
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, _FIXED_TIME), data, zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
