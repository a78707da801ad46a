"""The IHE XDM package of a report (the IHE_XDM.ZIP attachment that MSSanté messaging expects).

Layout (IHE ITI TF-1 XDM): INDEX.HTM and README.TXT at the root, then IHE_XDM/SUBSET01/ with METADATA.XML (the
same XDS metadata as the DMP filing, whose DocumentEntry URI names the file) and DOC0001.XML (the CDA).
"""

import io
import zipfile

from django.utils import timezone
from django.utils.html import escape

from teleexpertise.reports import xds
from teleexpertise.reports.cda import TITLE
from teleexpertise.reports.models import ReportVersion

SUBSET = "IHE_XDM/SUBSET01"
DOCUMENT_NAME = "DOC0001.XML"


def build_xdm_zip(version: ReportVersion, cda: bytes) -> bytes:
    """The ZIP bytes of the XDM package that carries `cda`, the CDA of `version`."""
    metadata = xds.build_submission(version, cda, uri=DOCUMENT_NAME)
    stamp = timezone.localtime(version.signed_at).timetuple()[:6]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in (("INDEX.HTM", _index(version).encode()), ("README.TXT", _readme(version).encode()),
                           (f"{SUBSET}/METADATA.XML", metadata), (f"{SUBSET}/{DOCUMENT_NAME}", cda)):
            archive.writestr(zipfile.ZipInfo(name, date_time=stamp), data, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def _what(version: ReportVersion) -> str:
    return f"{TITLE} {version.case.reference}, version {version.number}"


def _index(version: ReportVersion) -> str:
    what = escape(_what(version))
    return (f'<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8"><title>{what}</title></head><body>\n'
            f"<h1>{what}</h1>\n<p>Signé par {escape(version.author.display_name)}.</p>\n"
            f'<ul><li><a href="{SUBSET}/{DOCUMENT_NAME}">{escape(TITLE)} (CDA R2)</a></li>\n'
            f'<li><a href="{SUBSET}/METADATA.XML">Métadonnées XDS</a></li></ul>\n</body></html>\n')


def _readme(version: ReportVersion) -> str:
    expert = version.author
    return (f"{_what(version)}\r\n"
            f"Émetteur : plateforme de téléexpertise, pour {expert.display_name}"
            f"{' — ' + expert.organisation.name if expert.organisation_id else ''}.\r\n"
            "Contenu : un paquet IHE XDM (IHE_XDM/SUBSET01) : METADATA.XML (métadonnées XDS) et DOC0001.XML "
            "(document CDA R2 « compte rendu d'acte de télémédecine », PDF intégré).\r\n"
            "Document confidentiel couvert par le secret médical.\r\n")
