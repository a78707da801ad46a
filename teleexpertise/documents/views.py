"""Document pages: upload, download (with ranges for video), previews and the DICOM viewer."""

import logging
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse, UnreadablePostError
from django.shortcuts import redirect, render
from django.template.defaultfilters import filesizeformat
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log, client_ip
from teleexpertise.cases.selectors import case_for_user
from teleexpertise.cases.services import actor_for
from teleexpertise.cases.workflow import WorkflowError
from teleexpertise.documents import previews, selectors, services, storage
from teleexpertise.documents.forms import UploadFieldsForm, UploadForm
from teleexpertise.documents.models import Document
from teleexpertise.documents.upload_handlers import receive_raw_body

logger = logging.getLogger(__name__)
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
RAW_UPLOAD = "application/octet-stream"
_INLINE = {Document.Category.PHOTO, Document.Category.PDF, Document.Category.VIDEO}


def _audit(request, document, action: str, summary: str = "") -> None:
    audit_log(actor=request.user, action=action, kind=AuditEvent.Kind.READ, obj=document, case=document.case,
              ip=client_ip(request), summary=summary or document.name)


def add_uploads(request, *, case, files, kind, attached_to, message=None) -> tuple[list, list[str]]:
    """Add each file; one refused file does not stop the others. Returns (documents, error sentences)."""
    actor = actor_for(request.user)
    added, errors = [], []
    for upload in files:
        try:
            added.append(services.document_add(actor=actor, case_id=case.pk, upload=upload, kind=kind,
                                               attached_to=attached_to, message=message, ip=client_ip(request)))
        except ValidationError as exc:
            errors.append(f"{upload.name} : {' '.join(exc.messages)}")
        except WorkflowError as exc:
            errors.append(f"{upload.name} : {exc}")
        except Exception:  # storage down, disk full: the service left nothing behind; say so and go on
            logger.exception("document storage failed", extra={"case": str(case.pk)})
            errors.append(f"{upload.name} : " + _("le document n'a pas pu être enregistré (erreur de stockage). "
                                                  "Réessayez ; si le problème persiste, prévenez l'administrateur."))
    return added, errors


@require_POST
def document_upload(request, pk):
    wants_json = "application/json" in request.headers.get("Accept", "")
    if not request.user.is_authenticated:
        # A script uploading file by file must not follow the login redirect and take its page for a success.
        if wants_json:
            return JsonResponse({"documents": [], "errors": [
                _("Votre session a expiré : reconnectez-vous puis renvoyez le fichier.")]}, status=401)
        return redirect_to_login(request.get_full_path())
    case = case_for_user(request.user, pk)
    if _int(request.META.get("CONTENT_LENGTH"), 0, 0, 2**62) > settings.DOCUMENT_MAX_CASE_BYTES:
        # Refused before Django reads the body to disk: no point receiving gigabytes to say no.
        message = _("Envoi trop volumineux : %(limit)s au plus par demande.") % {
            "limit": filesizeformat(settings.DOCUMENT_MAX_CASE_BYTES)}
        return _upload_answer(request, case, [], [message], wants_json)
    if request.content_type == RAW_UPLOAD:
        return _raw_upload(request, case, wants_json)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return _upload_answer(request, case, [], _form_errors(form), wants_json)
    added, errors = add_uploads(request, case=case, files=form.cleaned_data["files"], kind=form.cleaned_data["kind"],
                                attached_to=form.cleaned_data["attached_to"])
    return _upload_answer(request, case, added, errors, wants_json)


def _form_errors(form) -> list[str]:
    return [f"{form.fields[f].label or f} : {' '.join(e)}" for f, e in form.errors.items()]


def _raw_upload(request, case, wants_json):
    """One file as the whole request body (the page's script sends each file so): its name in `X-File-Name`
    (percent-encoded, as `encodeURIComponent` makes it), the other fields in the query string."""
    form = UploadFieldsForm(request.GET)
    name = unquote(request.headers.get("X-File-Name", "")).strip()
    errors = _form_errors(form) if not form.is_valid() else []
    if not name:
        errors.append(_("Nom du fichier absent (en-tête X-File-Name)."))
    if _int(request.META.get("CONTENT_LENGTH"), 0, 0, 2**62) > settings.DOCUMENT_MAX_FILE_BYTES:
        errors.append(_("Fichier trop volumineux : %(limit)s au plus par fichier.")
                      % {"limit": filesizeformat(settings.DOCUMENT_MAX_FILE_BYTES)})
    if errors:
        return _upload_answer(request, case, [], errors, wants_json)
    try:
        upload = receive_raw_body(request, name, RAW_UPLOAD)
    except UnreadablePostError:  # the client went away mid-body: nobody will read an answer
        logger.info("upload interrupted by the client", extra={"case": str(case.pk)})
        return HttpResponse(status=400)
    try:
        added, errors = add_uploads(request, case=case, files=[upload], kind=form.cleaned_data["kind"],
                                    attached_to=form.cleaned_data["attached_to"])
    finally:
        upload.close()  # a spool nobody committed goes now, as Django does for multipart files
    return _upload_answer(request, case, added, errors, wants_json)


def _upload_answer(request, case, added, errors, wants_json):
    if wants_json:
        body = {"documents": [{"id": str(d.pk), "name": d.name, "size": d.size} for d in added], "errors": errors}
        return JsonResponse(body, status=400 if errors and not added else 200)
    if added:
        messages.success(request, _("%(n)s document(s) ajouté(s).") % {"n": len(added)})
    for error in errors:
        messages.error(request, error)
    return redirect(f"{case.get_absolute_url()}#documents")


def _parse_range(header: str, size: int):
    """(start, end_exclusive) of a single satisfiable byte range, None for no/ignored range, False if unsatisfiable."""
    match = _RANGE.match(header.strip()) if header else None
    if match is None or size == 0:
        return None
    first, last = match.groups()
    if first == "":
        if last == "":
            return None
        start, end = max(size - int(last), 0), size
    else:
        start = int(first)
        end = min(int(last) + 1, size) if last else size
    return (start, end) if start < end and start < size else False


@login_required
@require_GET
def document_download(request, pk):
    document = selectors.document_for_user(request.user, pk)
    blob = services.blob_of(document)
    byte_range = _parse_range(request.headers.get("Range", ""), document.size)
    if byte_range is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{document.size}"
        return response
    try:  # the key and the header are checked before the first byte is sent
        if byte_range is None:
            chunks = storage.read_all_verified(blob)
        else:
            chunks = storage.open_range(blob, *byte_range)
    except (storage.IntegrityError, ImproperlyConfigured) as exc:
        return _unreadable(request, document, exc)
    if byte_range is None:
        _audit(request, document, "document.download")
        response = StreamingHttpResponse(chunks, content_type=document.media_type)
        response["Content-Length"] = str(document.size)
    else:
        start, end = byte_range
        if start == 0:  # a player asks for many ranges: one audit row per viewing, not per range
            _audit(request, document, "document.download", f"{document.name} (lecture)")
        response = StreamingHttpResponse(chunks, content_type=document.media_type, status=206)
        response["Content-Range"] = f"bytes {start}-{end - 1}/{document.size}"
        response["Content-Length"] = str(end - start)
    inline = request.GET.get("inline") == "1" and document.category in _INLINE
    response["Content-Disposition"] = content_disposition_header(not inline, document.name)
    response["Accept-Ranges"] = "bytes"
    response["Cache-Control"] = "private, no-store"
    return response


def _unreadable(request, document, exc):
    """A stored file that fails its integrity check is never served; the failure is logged and audited."""
    logger.error("document unreadable", extra={"document": str(document.pk), "error": str(exc)})
    audit_log(actor=request.user, action="document.integrity_error", kind=AuditEvent.Kind.EXECUTE, obj=document,
              case=document.case, ip=client_ip(request), summary=f"{document.name}: {exc.__class__.__name__}")
    return render(request, "documents/unreadable.html", {"document": document, "case": document.case}, status=500)


@contextmanager
def _plaintext(document):
    """The decrypted file on local disk for a renderer; removed right after."""
    with tempfile.NamedTemporaryFile(prefix="te-preview-") as handle:
        for chunk in storage.read_all_verified(services.blob_of(document)):
            handle.write(chunk)
        handle.flush()
        yield Path(handle.name)


def _int(value, default: int, low: int, high: int) -> int:
    try:
        return min(max(int(value), low), high)
    except (TypeError, ValueError):
        return default


@login_required
@require_GET
def document_preview(request, pk):
    document = selectors.document_for_user(request.user, pk)
    frame = _int(request.GET.get("frame"), 0, 0, 100_000)
    preset = request.GET.get("preset", "stored")
    if preset not in previews.WINDOW_PRESETS:
        preset = "stored"
    _audit(request, document, "document.preview", f"{document.name} frame={frame} preset={preset}")
    try:
        with _plaintext(document) as path:
            body, content_type = _render(document, path, request, frame, preset)
    except (storage.IntegrityError, ImproperlyConfigured) as exc:
        return _unreadable(request, document, exc)
    except ValueError:  # a frame or page past the end
        return HttpResponse(status=404)
    except previews.PreviewUnavailable:  # valid file that cannot be drawn (no pixels, no decoder): download it
        return HttpResponse(status=404)
    response = HttpResponse(body, content_type=content_type)
    response["Cache-Control"] = "private, no-store"
    return response


def _render(document, path, request, frame, preset):
    if document.category == Document.Category.PHOTO:
        side = 1600 if request.GET.get("size") == "large" else 320
        return previews.image_thumbnail(path, max_side=side), "image/jpeg"
    if document.category == Document.Category.PDF:
        return previews.pdf_page_png(path, page=frame)[0], "image/png"
    if document.category == Document.Category.DICOM:
        return previews.dicom_frame_png(path, frame=frame, preset=preset), "image/png"
    raise ValueError("no preview for videos")


@login_required
@require_GET
def document_view(request, pk):
    document = selectors.document_for_user(request.user, pk)
    _audit(request, document, "document.view")
    frames = int(document.details.get("frames") or document.details.get("pages") or 1)
    return render(request, "documents/view.html", {
        "document": document, "case": document.case, "frame_count": frames,
        "presets": _presets_for(document.details.get("modality")),
        "flags": [FLAG_LABELS.get(flag, flag) for flag in document.flags]})


PRESET_LABELS = {
    "stored": gettext_lazy("Fenêtre du fichier"),
    "lung": gettext_lazy("Poumon"),
    "mediastinum": gettext_lazy("Médiastin"),
    "bone": gettext_lazy("Os"),
    "brain": gettext_lazy("Cerveau"),
    "abdomen": gettext_lazy("Abdomen"),
    "liver": gettext_lazy("Foie"),
    "auto": gettext_lazy("Automatique"),
}
FLAG_LABELS = {
    "exif_removed": gettext_lazy("métadonnées EXIF supprimées"),
    "gps_removed": gettext_lazy("position GPS supprimée"),
    "metadata_removed": gettext_lazy("métadonnées supprimées"),
    "orientation_applied": gettext_lazy("orientation appliquée"),
    "heic_converted": gettext_lazy("photo HEIC convertie en JPEG"),
    "first_frame_only": gettext_lazy("première image conservée"),
    "icc_converted": gettext_lazy("profil couleur converti"),
    "icc_dropped": gettext_lazy("profil couleur supprimé"),
    "dicom_preamble_cleared": gettext_lazy("préambule DICOM effacé"),
    "quicktime_container": gettext_lazy("conteneur QuickTime"),
}


def _presets_for(modality) -> list[tuple[str, str]]:
    """Windows in Hounsfield units only make sense for CT; other modalities get the stored and automatic ones."""
    keys = [p for p in previews.WINDOW_PRESETS if p != "auto"] + ["auto"] if modality == "CT" else ["stored", "auto"]
    return [(key, PRESET_LABELS.get(key, key)) for key in keys]


@login_required
@require_GET
def dicom_series_view(request, pk, series_uid):
    case = case_for_user(request.user, pk)
    documents = selectors.dicom_series(case, series_uid)
    if not documents:
        return HttpResponse(status=404)
    audit_log(actor=request.user, action="document.view", kind=AuditEvent.Kind.READ, case=case,
              ip=client_ip(request), summary=f"série DICOM {series_uid} ({len(documents)} fichiers)")
    images = [(d, f) for d in documents for f in range(int(d.details.get("frames") or 1))]
    return render(request, "documents/series.html", {
        "case": case, "documents": documents, "images": images, "first": documents[0],
        "presets": _presets_for(documents[0].details.get("modality"))})
