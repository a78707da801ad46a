"""The PDF of a signed report version: HTML template -> WeasyPrint -> PDF/A-3b bytes. No I/O but local files.

`render_report_pdf(version)` is a pure function of the version (and of the case, patient and professionals it
points at); storing the result and the job around it live in `tasks`. The URL fetcher refuses everything but
files under the project's static directories, so a template (or a value slipped into it) can never make the
renderer reach the network or read other files of the server.
"""

from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from teleexpertise.reports.models import ReportVersion

PDF_VARIANT = "pdf/a-3b"


def _static_roots() -> list[Path]:
    roots = [Path(settings.BASE_DIR) / "core" / "static", *(Path(d) for d in getattr(settings, "STATICFILES_DIRS", []))]
    return [root.resolve() for root in roots]


def _local_static_path(url: str) -> Path:
    """The file a file:// URL names, if it lies under a static directory; ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme != "file" or parts.netloc not in ("", "localhost"):
        raise ValueError(f"URL refused by the report renderer: {url[:200]}")
    path = Path(unquote(parts.path)).resolve()
    if not any(path.is_relative_to(root) for root in _static_roots()) or not path.is_file():
        raise ValueError(f"File outside the static directories refused by the report renderer: {url[:200]}")
    return path


def _import_weasyprint():
    """WeasyPrint, imported on first use. Its import turns on Pillow's process-wide LOAD_TRUNCATED_IMAGES; the
    upload checks need it off (a truncated photo is refused) and reports hold no image, so it goes off again."""
    import weasyprint
    from PIL import ImageFile

    ImageFile.LOAD_TRUNCATED_IMAGES = False
    return weasyprint


def _fetcher():
    _import_weasyprint()
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class StaticOnlyFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            path = _local_static_path(url)
            return URLFetcherResponse(path.as_uri(), path.read_bytes())

    return StaticOnlyFetcher(allowed_protocols={"file"}, allow_redirects=False)


def fetch_static_only(url: str):
    """Exposed for tests and callers: what the renderer would get for `url` (raises for anything not allowed)."""
    return _fetcher().fetch(url)


def report_context(version: ReportVersion) -> dict:
    case = version.case
    return {"version": version, "case": case, "patient": case.patient, "requester": case.requester,
            "expert": version.author, "replaces": version.number - 1 if version.number > 1 else None}


def report_html(version: ReportVersion) -> str:
    with translation.override(settings.LANGUAGE_CODE):
        return render_to_string("reports/pdf.html", report_context(version))


def render_report_pdf(version: ReportVersion) -> bytes:
    """The PDF/A-3b bytes of a signed version."""
    if not version.is_signed:
        raise ValueError("Only signed report versions are rendered.")
    weasyprint = _import_weasyprint()
    base_url = (Path(settings.BASE_DIR) / "core" / "static").resolve().as_uri() + "/"
    document = weasyprint.HTML(string=report_html(version), base_url=base_url, url_fetcher=_fetcher())
    return document.write_pdf(pdf_variant=PDF_VARIANT)
