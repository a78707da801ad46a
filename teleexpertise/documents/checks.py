"""What an uploaded clinical document really is, decided by its bytes, and a neutralised copy of it.

The client's file name and content type are never trusted: the type comes from magic bytes, is confirmed by parsing
the structure, and photos are decoded and re-encoded so that nothing but pixels survives (metadata, appended
archives). Files that cannot be rewritten safely (PDF, video) are refused when they carry active content or data
hidden around the document. Every refusal carries a French sentence for the user and a short reason for the audit.
"""

from __future__ import annotations

import io
import logging
import mmap
import os
import re
import secrets
import struct
import threading
import unicodedata
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import magic
import pillow_heif
import pydicom
from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageCms, ImageFile, ImageOps
from pydicom import encaps
from pydicom.dataelem import RawDataElement
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import DeflatedExplicitVRLittleEndian
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject

from teleexpertise.documents.signatures import RarScanner

pillow_heif.register_heif_opener()

ACCEPTED = {
    "image/jpeg": ("photo", ".jpg"),
    "image/png": ("photo", ".png"),
    "application/pdf": ("pdf", ".pdf"),
    "application/dicom": ("dicom", ".dcm"),
    "video/mp4": ("video", ".mp4"),
    "video/webm": ("video", ".webm"),
}

# libmagic's answer -> our handler. Anything absent is refused, whatever its name says.
_KINDS_BY_MIME = {
    "image/jpeg": "jpeg",
    "image/png": "png",
    "image/apng": "png",
    "image/heic": "heic",
    "image/heif": "heic",
    "image/heic-sequence": "heic",
    "image/heif-sequence": "heic",
    "application/pdf": "pdf",
    "video/mp4": "mp4",
    "video/quicktime": "mp4",  # iPhone .mov: same ISO BMFF structure, plays as MP4 in browsers
    "video/x-m4v": "mp4",
    "video/webm": "webm",
}

JPEG_QUALITY = 92
# zlib's fastest level for the re-encoded PNG: on a 3-megapixel photo, 0.3 s instead of 1.3 s at the default level
# (6) for a file about a fifth larger; the pixels are the same whatever the level.
PNG_COMPRESS_LEVEL = 1
MAX_NAME_LENGTH = 120
PDF_MAX_OBJECTS = 1_000_000  # containers walked; beyond this a PDF is refused rather than half-checked
PDF_MAX_TRAILING_WHITESPACE = 4096
VIDEO_MAX_ELEMENTS = 1_000_000

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inspected:
    media_type: str
    category: str
    path: Path | None  # the (neutralised) file to store; None: accepted unchanged (see inspect_stream)
    safe_name: str
    flags: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)


class RefusedContent(Exception):
    """An upload we will not store. `message`: French sentence for the user; `reason`: short code for the audit.

    Reasons: empty, unsupported_format, image_unreadable, image_too_large, pdf_unreadable, pdf_no_pages,
    pdf_encrypted, pdf_javascript, pdf_launch, pdf_embedded_file, pdf_xfa, pdf_too_complex, polyglot,
    dicom_unreadable, dicom_no_sop_class, video_unreadable, video_attachment. `detail` is technical context
    (e.g. the type libmagic saw) for the audit trail, never shown to the user.
    """

    def __init__(self, message, reason, detail=""):
        super().__init__(message)
        self.message = message
        self.reason = reason
        self.detail = detail


def inspect_upload(path: Path, original_name: str, *, workdir: Path) -> Inspected:
    """Identify the upload at `path`, refuse it or return what to store (new files are written in `workdir`)."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise RefusedContent(_("Ce fichier n'est pas accepté : il est vide."), "empty")
    kind = detect_kind(path)
    media_type, out_path, flags, details = _HANDLERS[kind](path, Path(workdir))
    extension = ACCEPTED[media_type][1]
    return Inspected(
        media_type=media_type,
        category=ACCEPTED[media_type][0],
        path=out_path,
        safe_name=safe_filename(original_name, extension),
        flags=tuple(flags),
        details=details,
    )


# --- Detection ---------------------------------------------------------------------------------------------------

_magic_local = threading.local()  # a libmagic handle is not thread-safe: one per thread


def detect_kind(path: Path) -> str:
    """Our handler name for the file, from magic bytes only."""
    with path.open("rb") as f:
        head = f.read(132)
    # Before libmagic, which names a DICOM file with a TIFF preamble "image/tiff".
    if head[128:132] == b"DICM":
        return "dicom"
    mime = _libmagic_mime(path)
    if mime == "application/octet-stream" and head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"  # libmagic only reads a 1-byte DocType size; the EBML parser decides
    kind = _KINDS_BY_MIME.get(mime)
    if kind is None:
        raise _unsupported(mime)
    return kind


# Kinds whose checks only walk the structure and never rewrite the file: they can read it where it already is
# (decrypted from the upload spool, chunk by chunk) instead of from a plaintext copy.
STREAMED_KINDS = {"mp4", "webm"}
SNIFF_SIZE = 1024 * 1024  # what libmagic reads of a file at most (its default bytes_max)


def sniff_streamed_kind(head: bytes) -> str | None:
    """"mp4" or "webm" when the first bytes of a file say so, else None (then the full path-based checks run)."""
    if head[128:132] == b"DICM":
        return None
    mime = _libmagic_mime_of_buffer(head)
    if mime == "application/octet-stream" and head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    kind = _KINDS_BY_MIME.get(mime)
    return kind if kind in STREAMED_KINDS else None


def inspect_stream(kind: str, f, size: int, original_name: str, *, rar_scan: RarScanner | None = None) -> Inspected:
    """The checks of a streamed kind over a seekable binary file `f` of `size` bytes; the file is kept as is.
    `rar_scan`, when the whole file went through one already, spares reading it all again."""
    if kind == "mp4":
        media_type, flags, details = _check_mp4(f, size, rar_scan)
    elif kind == "webm":
        media_type, flags, details = _check_webm_file(f, size, rar_scan)
    else:
        raise ValueError(f"{kind} is not a streamed kind")
    return Inspected(media_type=media_type, category=ACCEPTED[media_type][0], path=None,
                     safe_name=safe_filename(original_name, ACCEPTED[media_type][1]), flags=tuple(flags),
                     details=details)


def _libmagic_mime_of_buffer(head: bytes) -> str:
    if not hasattr(_magic_local, "magic"):
        _magic_local.magic = magic.Magic(mime=True)
    return _magic_local.magic.from_buffer(head)


def _libmagic_mime(path: Path) -> str:
    if not hasattr(_magic_local, "magic"):
        _magic_local.magic = magic.Magic(mime=True)
    return _magic_local.magic.from_file(str(path))


def _unsupported(detail: str = "") -> RefusedContent:
    return RefusedContent(
        _(
            "Format non accepté. Formats acceptés : photos JPEG, PNG ou HEIC, documents PDF, images DICOM, "
            "vidéos MP4 ou WebM."
        ),
        "unsupported_format",
        detail,
    )


def _polyglot(detail: str) -> RefusedContent:
    return RefusedContent(
        _("Ce fichier n'est pas accepté : il contient des données cachées en plus du document (fichier composite)."),
        "polyglot",
        detail,
    )


def _new_output(workdir: Path, extension: str) -> Path:
    return workdir / f"{secrets.token_hex(12)}{extension}"


# --- File names --------------------------------------------------------------------------------------------------

_RESERVED_CHARS = re.compile(r'[/\\:*?"<>|]')
_EXTENSION = re.compile(r"\.(?=[A-Za-z0-9]*[A-Za-z])[A-Za-z0-9]{1,8}$")
_WINDOWS_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def safe_filename(original_name: str, extension: str) -> str:
    """A display/download name safe on every OS and in headers, ending with our canonical `extension`."""
    name = unicodedata.normalize("NFC", str(original_name or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # directories, Windows or POSIX
    name = "".join(_clean_char(c) for c in name)
    name = _RESERVED_CHARS.sub("_", name)
    name = _EXTENSION.sub("", name)  # the client's extension says nothing; ours follows the content
    stem = _trim(" ".join(name.split()))
    if stem.upper() in _WINDOWS_DEVICES:
        stem += "_"
    stem = _trim(unicodedata.normalize("NFC", stem[: MAX_NAME_LENGTH - len(extension)]))
    return f"{stem or 'document'}{extension}"


def _clean_char(char: str) -> str:
    category = unicodedata.category(char)
    if category in ("Cc", "Zl", "Zp"):
        return " "  # a newline or tab separated words
    if category in ("Cf", "Cs", "Co", "Cn"):
        return ""  # bidi overrides (U+202E "gpj.exe"), zero-width characters, unassigned code points
    return char


def _trim(stem: str) -> str:
    # Leading dots hide files on Unix; trailing dots and spaces are dropped by Windows.
    return stem.strip(" .")


# --- Photos --------------------------------------------------------------------------------------------------------

_PIL_FORMATS = {"jpeg": (["JPEG"], {"JPEG", "MPO"}), "png": (["PNG"], {"PNG"}), "heic": (["HEIF"], {"HEIF"})}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_PNG_MODES = {"1", "L", "LA", "I", "I;16", "P", "RGB", "RGBA"}


def _inspect_jpeg(path: Path, workdir: Path):
    return _inspect_photo(path, workdir, "jpeg")


def _inspect_png(path: Path, workdir: Path):
    return _inspect_photo(path, workdir, "png")


def _inspect_heic(path: Path, workdir: Path):
    return _inspect_photo(path, workdir, "heic")


def _inspect_photo(path: Path, workdir: Path, kind: str):
    """Decode fully, then re-encode pixels only: metadata, appended data and polyglot payloads do not survive."""
    out_format = "PNG" if kind == "png" else "JPEG"
    flags = ["heic_converted"] if kind == "heic" else []
    try:
        clean, source_format, frames = _decode_photo(path, kind, out_format, flags)
    except RefusedContent:
        raise
    except Image.DecompressionBombError as exc:
        raise _too_large(str(exc)) from exc
    except Exception as exc:  # any decoder failure on hostile bytes means an unusable image
        raise RefusedContent(
            _("Ce fichier n'est pas accepté : l'image est illisible ou incomplète (fichier tronqué ou endommagé)."),
            "image_unreadable",
            f"{type(exc).__name__}: {exc}",
        ) from exc
    out_path = _new_output(workdir, ".png" if out_format == "PNG" else ".jpg")
    _save_clean(clean, out_path, out_format)
    media_type = "image/png" if out_format == "PNG" else "image/jpeg"
    details = {"width": clean.width, "height": clean.height, "source_format": source_format, "frames": frames}
    return media_type, out_path, flags, details


def _decode_photo(path: Path, kind: str, out_format: str, flags: list[str]):
    Image.MAX_IMAGE_PIXELS = settings.DOCUMENT_IMAGE_MAX_PIXELS  # Pillow raises beyond twice this at open
    ImageFile.LOAD_TRUNCATED_IMAGES = False  # truncated photos are refused (WeasyPrint's import turns this on)
    open_formats, accepted_formats = _PIL_FORMATS[kind]
    with Image.open(path, formats=open_formats) as im:
        if im.format not in accepted_formats:
            raise _unsupported(f"pillow:{im.format}")
        # Pillow only *warns* between 1x and 2x the limit; warnings filters are process-wide (not thread-safe),
        # so the same threshold is checked here instead of turning the DecompressionBombWarning into an error.
        if im.width * im.height > settings.DOCUMENT_IMAGE_MAX_PIXELS:
            raise _too_large(f"{im.width}x{im.height}")
        frames = getattr(im, "n_frames", 1)
        if frames > 1:
            flags.append("first_frame_only")
        im.load()  # decodes everything: a truncated or corrupt file fails here
        flags.extend(_metadata_flags(im))
        clean = _clean_pixels(im, out_format, flags)
    return clean, im.format, frames


def _too_large(detail: str) -> RefusedContent:
    limit = f"{settings.DOCUMENT_IMAGE_MAX_PIXELS / 1_000_000:g}"
    return RefusedContent(
        _("Ce fichier n'est pas accepté : l'image dépasse %(limit)s millions de pixels.") % {"limit": limit},
        "image_too_large",
        detail,
    )


def _metadata_flags(im: Image.Image) -> list[str]:
    flags = []
    try:
        exif = im.getexif()
        has_gps = bool(exif.get_ifd(0x8825))
    except Exception:  # unreadable EXIF is dropped like readable EXIF
        exif, has_gps = {}, False
    if exif or im.info.get("exif"):
        flags.append("exif_removed")
    if has_gps:
        flags.append("gps_removed")
    if any(im.info.get(k) for k in ("xmp", "XML:com.adobe.xmp", "comment", "photoshop")) or getattr(im, "text", None):
        flags.append("metadata_removed")
    return flags


def _clean_pixels(im: Image.Image, out_format: str, flags: list[str]) -> Image.Image:
    transparency = im.info.get("transparency") if out_format == "PNG" else None
    icc = im.info.get("icc_profile")
    source = im
    im = _apply_orientation(im, flags)
    if icc:
        im = _to_srgb(im, icc, flags)
    im = _jpeg_mode(im) if out_format == "JPEG" else _png_mode(im)
    clean = im.copy() if im is source else im  # every step above already returned a new image otherwise
    # Nothing from the source travels except the palette transparency (pixels, not metadata): Pillow's savers
    # read ICC, EXIF and XMP from .info when present.
    clean.info = {"transparency": transparency} if transparency is not None and clean.mode in ("P", "L", "RGB") else {}
    return clean


def _apply_orientation(im: Image.Image, flags: list[str]) -> Image.Image:
    try:
        orientation = im.getexif().get(0x0112, 1)
        transposed = ImageOps.exif_transpose(im)
    except Exception:  # a broken EXIF block: keep the pixels as stored
        return im
    if orientation in range(2, 9):
        flags.append("orientation_applied")
    return transposed if transposed is not None else im


def _to_srgb(im: Image.Image, icc: bytes, flags: list[str]) -> Image.Image:
    """Bake the colour profile into sRGB pixels: the profile is an arbitrary blob we do not want to carry."""
    if im.mode in ("RGB", "RGBA", "CMYK"):
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            output_mode = "RGBA" if im.mode == "RGBA" else "RGB"
            converted = ImageCms.profileToProfile(im, source, _SRGB, outputMode=output_mode)
            flags.append("icc_converted")
            return converted
        except Exception:  # a profile that does not match the pixels: drop it
            log.info("ICC profile not applicable, dropped")
    flags.append("icc_dropped")
    return im


def _jpeg_mode(im: Image.Image) -> Image.Image:
    if im.mode in ("RGB", "L"):
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")  # JPEG has no alpha: flatten on white
    if im.mode in ("I", "I;16", "F"):
        return im.convert("L")
    return im.convert("RGB")


def _png_mode(im: Image.Image) -> Image.Image:
    if im.mode in _PNG_MODES:
        return im
    return im.convert("RGBA" if "A" in im.mode else "RGB")


def _save_clean(clean: Image.Image, out_path: Path, out_format: str) -> None:
    options = ({"quality": JPEG_QUALITY, "optimize": True} if out_format == "JPEG"
               else {"compress_level": PNG_COMPRESS_LEVEL})
    try:
        with out_path.open("xb") as f:
            clean.save(f, out_format, **options)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise


# --- PDF -----------------------------------------------------------------------------------------------------------

_PDF_WHITESPACE = b" \t\r\n\x0c\x00"


def _inspect_pdf(path: Path, workdir: Path):
    """Check a PDF in place: it is stored unchanged when nothing active or hidden is found."""
    pages = _check_pdf(path)
    return "application/pdf", path, [], {"pages": pages}


def _check_pdf(path: Path) -> int:
    _check_pdf_layout(path)
    _refuse_appended_archive(path)
    try:
        with path.open("rb") as f:
            reader = PdfReader(f, strict=False)
            if reader.is_encrypted:
                raise _pdf_encrypted()
            active = _pdf_active_content(reader)
            pages = len(reader.pages)
    except RefusedContent:
        raise
    except Exception as exc:  # pypdf raises many types on hostile input; all mean "cannot be checked"
        raise _pdf_unreadable(f"{type(exc).__name__}: {exc}") from exc
    if active:
        raise _pdf_active(active)
    if pages < 1:
        raise RefusedContent(_("Ce fichier n'est pas accepté : le PDF ne contient aucune page."), "pdf_no_pages")
    return pages


def _check_pdf_layout(path: Path) -> None:
    """The document must start at byte 0 and end at the last %%EOF: data around it makes a polyglot."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
        if data[:5] != b"%PDF-":
            raise _polyglot("data before %PDF-")
        end = data.rfind(b"%%EOF")
        if end < 0:
            raise _pdf_unreadable("no %%EOF")
        tail_length = len(data) - end - 5
        if tail_length > PDF_MAX_TRAILING_WHITESPACE or data[end + 5 :].strip(_PDF_WHITESPACE):
            raise _polyglot(f"{tail_length} bytes after %%EOF")


def _pdf_unreadable(detail: str) -> RefusedContent:
    return RefusedContent(
        _("Ce fichier n'est pas accepté : le PDF est illisible ou endommagé."), "pdf_unreadable", detail
    )


def _pdf_encrypted() -> RefusedContent:
    return RefusedContent(
        _(
            "Ce fichier n'est pas accepté : le PDF est chiffré ou protégé par un mot de passe et ne peut pas être "
            "affiché. Enregistrez-en une copie sans protection, puis envoyez-la à nouveau."
        ),
        "pdf_encrypted",
    )


def _pdf_active(reason: str) -> RefusedContent:
    what = {
        "pdf_javascript": _("du code JavaScript"),
        "pdf_launch": _("une commande qui lance un programme"),
        "pdf_embedded_file": _("des fichiers joints"),
        "pdf_xfa": _("un formulaire XFA"),
    }[reason]
    message = _(
        "Ce fichier n'est pas accepté : le PDF contient %(what)s, refusé pour des raisons de sécurité. "
        "Utilisez « Imprimer en PDF » pour en créer une copie simple, puis envoyez-la à nouveau."
    ) % {"what": what}
    return RefusedContent(message, reason)


def _pdf_active_content(reader: PdfReader) -> str | None:
    """Walk every object (reachable from the trailer or listed in the xref) looking for active content.

    Names are compared after pypdf's decoding, so "/J#61vaScript" is seen as "/JavaScript"; objects inside
    compressed object streams are reached through the xref.
    """
    seen: set[tuple[int, int]] = set()
    stack: list = [reader.trailer, *_xref_references(reader)]
    budget = PDF_MAX_OBJECTS
    while stack:
        obj = stack.pop()
        if isinstance(obj, IndirectObject):
            if (obj.idnum, obj.generation) in seen:
                continue
            seen.add((obj.idnum, obj.generation))
            obj = obj.get_object()
        if isinstance(obj, DictionaryObject):
            if found := _active_in_dict(obj):
                return found
            stack.extend(dict.values(obj))  # raw values: references stay unresolved until popped
        elif isinstance(obj, ArrayObject):
            stack.extend(list.__iter__(obj))
        else:
            continue
        budget -= 1
        if budget < 0:
            raise RefusedContent(
                _("Ce fichier n'est pas accepté : le PDF est trop complexe pour être vérifié."), "pdf_too_complex"
            )
    return None


def _xref_references(reader: PdfReader) -> Iterator[IndirectObject]:
    # Also objects no page points to: another viewer may resolve the file differently from pypdf.
    for generation, numbers in reader.xref.items():
        for idnum in numbers:
            yield IndirectObject(idnum, generation, reader)
    for idnum in reader.xref_objStm:
        yield IndirectObject(idnum, 0, reader)


_ACTIVE_KEYS = {
    "/JS": "pdf_javascript",
    "/JavaScript": "pdf_javascript",
    "/Launch": "pdf_launch",
    "/EmbeddedFiles": "pdf_embedded_file",
    "/EmbeddedFile": "pdf_embedded_file",
    "/EF": "pdf_embedded_file",
    "/XFA": "pdf_xfa",
}
_ACTIVE_VALUES = {
    ("/S", "/JavaScript"): "pdf_javascript",
    ("/S", "/Launch"): "pdf_launch",
    ("/S", "/GoToE"): "pdf_embedded_file",
    ("/Type", "/EmbeddedFile"): "pdf_embedded_file",
    ("/Subtype", "/FileAttachment"): "pdf_embedded_file",
}


def _active_in_dict(obj: DictionaryObject) -> str | None:
    for key in dict.keys(obj):
        if key in _ACTIVE_KEYS:
            return _ACTIVE_KEYS[key]
    for (key, value), reason in _ACTIVE_VALUES.items():
        raw = dict.get(obj, key)
        if isinstance(raw, str) and raw == value:
            return reason
    return None


# --- Archives hidden at the end of stored-as-is files ------------------------------------------------------------

_ZIP_EOCD = b"PK\x05\x06"
_ZIP_EOCD_SEARCH = 22 + 65535  # ZIP readers look for the end record in the last 64 KiB (+ its own size)
SCAN_BLOCK = 1024 * 1024


def _refuse_appended_archive(path: Path, *, skip: int = 0) -> None:
    """Refuse files that archive tools would also open (ZIP at the end, RAR anywhere): a classic polyglot.

    `skip` leaves out leading bytes we rewrite anyway (the DICOM preamble). The file is read in blocks, not
    mapped: every page of a mapped file that the search touches stays in the worker's resident memory until it
    is unmapped (a 1 GB video added 1 GB to it), and faulting them in is slower than reading.
    """
    with path.open("rb") as f:
        _refuse_appended_archive_in(f, os.fstat(f.fileno()).st_size, skip=skip)


def _refuse_appended_archive_in(f, size: int, *, skip: int = 0, rar_scan: RarScanner | None = None) -> None:
    """`rar_scan`: a scanner that has already been fed the whole file (an upload's, while it was received)."""
    start = max(skip, size - _ZIP_EOCD_SEARCH)
    f.seek(start)
    tail = f.read()  # at most 64 KiB + 22 bytes
    position = tail.find(_ZIP_EOCD)
    while position >= 0:
        if _plausible_zip_end(tail[position : position + 22], start + position):
            raise _polyglot(f"ZIP end record at {start + position}")
        position = tail.find(_ZIP_EOCD, position + 1)
    if rar_scan is None:
        rar_scan = _scan_rar(f, skip)
    if rar_scan.found_at is not None and rar_scan.found_at >= skip:
        raise _polyglot(f"RAR signature at {rar_scan.found_at}")


def _plausible_zip_end(record: bytes, position: int) -> bool:
    # Random compressed bytes may contain the 4-byte signature; a real end record points back to a central
    # directory that lies before it.
    if len(record) < 22:
        return False
    cd_size, cd_offset = struct.unpack("<II", record[12:20])
    return cd_offset + cd_size <= position


def _scan_rar(f, start: int) -> RarScanner:
    """The file from `start` on, read SCAN_BLOCK bytes at a time through a RAR scanner."""
    scanner = RarScanner()
    f.seek(start)
    while scanner.found_at is None and (block := f.read(SCAN_BLOCK)):
        scanner.feed(block)
    if scanner.found_at is not None:
        scanner.found_at += start
    return scanner


# --- DICOM ---------------------------------------------------------------------------------------------------------

_ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
_UNDEFINED_LENGTH = 0xFFFFFFFF


def _inspect_dicom(path: Path, workdir: Path):
    """Parse (no forcing), check the pixel data is complete, and zero the 128-byte preamble."""
    _refuse_appended_archive(path, skip=128)
    try:
        with _pydicom_eof_watch() as eof_messages:
            ds = pydicom.dcmread(path)
            _check_complete(ds, path.stat().st_size)
            for _element in ds.iterall():  # values are parsed lazily: force them now
                pass
        if eof_messages:
            raise ValueError(eof_messages[0])
        if "TransferSyntaxUID" not in ds.file_meta:
            raise ValueError("no transfer syntax in the file meta information")
        _check_pixel_data(ds)
    except Exception as exc:
        raise _dicom_unreadable(f"{type(exc).__name__}: {exc}") from exc
    sop_class = ds.get("SOPClassUID")
    if not sop_class:
        raise RefusedContent(
            _("Ce fichier n'est pas accepté : le fichier DICOM n'indique pas de classe SOP (SOP Class UID)."),
            "dicom_no_sop_class",
        )
    if str(sop_class) == _ENCAPSULATED_PDF:
        _check_encapsulated_pdf(ds, workdir)
    out_path, flags = _clear_preamble(path, workdir)
    return "application/dicom", out_path, flags, _dicom_details(ds)


def _dicom_unreadable(detail: str) -> RefusedContent:
    return RefusedContent(
        _("Ce fichier n'est pas accepté : le fichier DICOM est illisible, incomplet ou endommagé."),
        "dicom_unreadable",
        detail,
    )


class _EofRecorder(logging.Handler):
    """Collects pydicom's "End of file reached" messages emitted by this thread only."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.messages: list[str] = []

    def emit(self, record):
        if record.thread == self.thread and "end of file" in record.getMessage().lower():
            self.messages.append(record.getMessage())


@contextmanager
def _pydicom_eof_watch():
    # pydicom silently drops the element a truncated file ends in (it only warns and logs); the warnings
    # filters are process-wide, so the log record is caught instead, per thread.
    recorder = _EofRecorder()
    logger = logging.getLogger("pydicom")
    logger.addHandler(recorder)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)


def _check_complete(ds, size: int) -> None:
    """pydicom stops quietly when a file ends inside an element: compare what it read with the file size."""
    for tag in ds.keys():
        raw = ds.get_item(tag)
        if isinstance(raw, RawDataElement) and raw.length != _UNDEFINED_LENGTH and len(raw.value or b"") < raw.length:
            raise ValueError(f"element {raw.tag} cut short")
    if not ds.keys():
        raise ValueError("no data set after the file meta information")
    if ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian:
        return  # deflated: positions are in the inflated stream
    last = ds.get_item(max(ds.keys()))  # elements are stored in ascending tag order: this one ends the file
    if not isinstance(last, RawDataElement) or not isinstance(last.value, bytes | bytearray | None):
        return  # already parsed (sequences): its end is not recorded, the checks above have to do
    if last.length == _UNDEFINED_LENGTH:
        end = last.value_tell + len(last.value or b"") + 8  # + sequence delimitation item
    else:
        end = last.value_tell + last.length
    if end != size:
        raise ValueError(f"dataset ends at byte {end}, file has {size}")


def _check_pixel_data(ds) -> None:
    # A file cut between two elements parses cleanly: an image class without its image is how it shows.
    is_image = "Rows" in ds or "Image Storage" in getattr(ds.get("SOPClassUID"), "name", "")
    if not is_image:
        return  # structured report, RT plan, encapsulated document...
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            return
        raise ValueError("image attributes without pixel data")
    if ds.file_meta.TransferSyntaxUID.is_encapsulated:
        fragments, _offsets = encaps.parse_fragments(ds.PixelData)
        if fragments - 1 < 1:  # the first item is the basic offset table
            raise ValueError("no compressed frame")
    elif len(ds.PixelData) < get_expected_length(ds):
        raise ValueError("pixel data shorter than the image size")


def _check_encapsulated_pdf(ds, workdir: Path) -> None:
    # A PDF wrapped in DICOM reaches the same viewers as a plain PDF: it gets the same checks.
    document = ds.get("EncapsulatedDocument")
    if not document:
        raise _dicom_unreadable("encapsulated PDF without document")
    pdf_path = _new_output(workdir, ".pdf")
    try:
        pdf_path.write_bytes(bytes(document).rstrip(b"\x00"))  # DICOM pads odd lengths with one NUL
        _check_pdf(pdf_path)
    finally:
        pdf_path.unlink(missing_ok=True)


def _clear_preamble(path: Path, workdir: Path) -> tuple[Path, list[str]]:
    """The preamble is free bytes that can make the file also a valid PE/ELF/ZIP: store it zeroed."""
    with path.open("rb") as source:
        if source.read(128) == bytes(128):
            return path, []
        out_path = _new_output(workdir, ".dcm")
        try:
            with out_path.open("xb") as target:
                target.write(bytes(128))
                while chunk := source.read(1024 * 1024):
                    target.write(chunk)
        except BaseException:
            out_path.unlink(missing_ok=True)
            raise
    return out_path, ["dicom_preamble_cleared"]


def _dicom_details(ds) -> dict:
    """What the viewer needs to group and page images (key names are the ones documents.selectors reads)."""
    return {
        "frames": _int_or(ds.get("NumberOfFrames"), 1) or 1,
        "transfer_syntax": str(ds.file_meta.TransferSyntaxUID),
        "sop_class_uid": str(ds.SOPClassUID),
        "modality": str(ds.get("Modality", "")),
        "study_uid": str(ds.get("StudyInstanceUID", "")),
        "series_uid": str(ds.get("SeriesInstanceUID", "")),
        "series_description": str(ds.get("SeriesDescription", "")),
        "instance_number": _int_or(ds.get("InstanceNumber"), None),
    }


def _int_or(value, default):
    try:
        return int(value)
    except (TypeError, ValueError):  # absent, empty or malformed IS value
        return default


# --- Video: ISO BMFF (MP4) ---------------------------------------------------------------------------------------

_VIDEO_BRANDS = {
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"M4VH", b"M4VP",
    b"qt  ", b"dash", b"hvc1", b"MSNV",
}  # fmt: skip
_NOT_VIDEO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"heic", b"heix", b"mif1", b"msf1", b"avif", b"avis"}


def _inspect_mp4(path: Path, workdir: Path):
    with path.open("rb") as f:
        media_type, flags, details = _check_mp4(f, os.fstat(f.fileno()).st_size)
    return media_type, path, flags, details


def _check_mp4(f, size: int, rar_scan: RarScanner | None = None):
    """Boxes must tile the file exactly, start with a video "ftyp" and include a "moov"."""
    _refuse_appended_archive_in(f, size, rar_scan=rar_scan)
    boxes = list(_iter_boxes(f, size))
    if not boxes or boxes[0][0] != b"ftyp":
        raise _video_unreadable("no ftyp box first")
    f.seek(boxes[0][1])
    major = _check_brands(f.read(min(boxes[0][2], 4096)))
    if b"moov" not in {box[0] for box in boxes}:
        raise _video_unreadable("no moov box")
    flags = ["quicktime_container"] if major == b"qt  " else []
    return "video/mp4", flags, {"container": "mp4", "brand": major.decode("latin-1").strip()}


def _iter_boxes(f, size: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload offset, payload length) of each top-level box."""
    position = 0
    for _count in range(VIDEO_MAX_ELEMENTS):
        if position == size:
            return
        f.seek(position)
        header = f.read(8)
        if len(header) < 8:
            raise _video_unreadable(f"short box header at {position}")
        box_size, box_type = struct.unpack(">I4s", header)
        header_size = 8
        if box_size == 1:
            large = f.read(8)
            if len(large) < 8:
                raise _video_unreadable("short large size")
            box_size, header_size = struct.unpack(">Q", large)[0], 16
        elif box_size == 0:
            box_size = size - position  # "to the end of the file"
        if box_size < header_size or position + box_size > size:
            raise _video_unreadable(f"box {box_type!r} size {box_size} at {position} outside the file")
        yield box_type, position + header_size, box_size - header_size
        position += box_size
    raise _video_unreadable("too many boxes")


def _check_brands(payload: bytes) -> bytes:
    if len(payload) < 8 or (len(payload) - 8) % 4:
        raise _video_unreadable("malformed ftyp")
    major = payload[:4]
    compatible = {payload[i : i + 4] for i in range(8, len(payload), 4)}
    if major in _NOT_VIDEO_BRANDS or not ({major} | compatible) & _VIDEO_BRANDS:
        raise _unsupported(f"brand {major!r}")
    return major


def _video_unreadable(detail: str) -> RefusedContent:
    return RefusedContent(
        _("Ce fichier n'est pas accepté : la vidéo est illisible ou sa structure est incorrecte."),
        "video_unreadable",
        detail,
    )


# --- Video: WebM (EBML) ------------------------------------------------------------------------------------------

_EBML_HEADER = 0x1A45DFA3
_EBML_DOCTYPE = 0x4282
_SEGMENT = 0x18538067
_ATTACHMENTS = 0x1941A469
_VOID, _CRC32 = 0xEC, 0xBF
_UNKNOWN = -1


def _inspect_webm(path: Path, workdir: Path):
    with path.open("rb") as f:
        media_type, flags, details = _check_webm_file(f, os.fstat(f.fileno()).st_size)
    return media_type, path, flags, details


def _check_webm_file(f, size: int, rar_scan: RarScanner | None = None):
    """EBML header with DocType "webm", then a Segment; every element must fit in its parent and the file."""
    _refuse_appended_archive_in(f, size, rar_scan=rar_scan)
    _check_webm(_FileBytes(f, size))
    return "video/webm", [], {"container": "webm"}


class _FileBytes:
    """Indexing and slicing over a seekable file, for the EBML walk: it only reads element headers and the
    DocType, a few bytes at a time, so a multi-gigabyte video is never loaded (nor mapped) whole."""

    def __init__(self, f, size: int) -> None:
        self._f = f
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, _step = key.indices(self._size)
            self._f.seek(start)
            return self._f.read(max(0, stop - start))
        if not 0 <= key < self._size:
            raise IndexError(key)
        self._f.seek(key)
        return self._f.read(1)[0]


def _check_webm(data) -> None:
    elements = list(_iter_ebml(data, 0, len(data)))
    first_id, first_start, first_size = elements[0]
    if first_id != _EBML_HEADER or first_size == _UNKNOWN:
        raise _video_unreadable("no EBML header")
    doctype = _ebml_doctype(data, first_start, first_start + first_size)
    if doctype != b"webm":
        raise _unsupported(f"EBML DocType {doctype!r}")
    segments = [element for element in elements if element[0] == _SEGMENT]
    if not segments:
        raise _video_unreadable("no Segment")
    if any(element[0] not in (_EBML_HEADER, _SEGMENT, _VOID, _CRC32) for element in elements):
        raise _video_unreadable("unexpected top-level element")
    for _id, start, size in segments:
        end = len(data) if size == _UNKNOWN else start + size
        if any(child[0] == _ATTACHMENTS for child in _iter_ebml(data, start, end)):
            raise RefusedContent(
                _("Ce fichier n'est pas accepté : la vidéo contient des fichiers joints."), "video_attachment"
            )


def _iter_ebml(data, start: int, end: int) -> Iterator[tuple[int, int, int]]:
    """(id, payload start, payload size or _UNKNOWN) of elements in [start, end); stops after an unknown size."""
    position = start
    for _count in range(VIDEO_MAX_ELEMENTS):
        if position >= end:
            return
        element_id, position = _read_vint(data, position, end, keep_marker=True)
        size, position = _read_vint(data, position, end, keep_marker=False)
        if size == _UNKNOWN:
            yield element_id, position, _UNKNOWN
            return  # a live recording: the rest cannot be delimited without parsing every child
        if position + size > end:
            raise _video_unreadable(f"element {element_id:#x} overruns its parent")
        yield element_id, position, size
        position += size
    raise _video_unreadable("too many elements")


def _read_vint(data, position: int, end: int, *, keep_marker: bool) -> tuple[int, int]:
    if position >= end:
        raise _video_unreadable("truncated element")
    first = data[position]
    length = 9 - first.bit_length() if first else 9
    if length > (4 if keep_marker else 8) or position + length > end:
        raise _video_unreadable("invalid variable-length integer")
    value = int.from_bytes(data[position : position + length], "big")
    if not keep_marker:
        value &= (1 << (7 * length)) - 1
        if value == (1 << (7 * length)) - 1:
            value = _UNKNOWN
    return value, position + length


def _ebml_doctype(data, start: int, end: int) -> bytes | None:
    for element_id, payload, size in _iter_ebml(data, start, end):
        if element_id == _EBML_DOCTYPE and size != _UNKNOWN:
            return bytes(data[payload : payload + size]).rstrip(b"\x00")
    return None


_HANDLERS: dict[str, Callable[[Path, Path], tuple]] = {
    "jpeg": _inspect_jpeg,
    "png": _inspect_png,
    "heic": _inspect_heic,
    "pdf": _inspect_pdf,
    "dicom": _inspect_dicom,
    "mp4": _inspect_mp4,
    "webm": _inspect_webm,
}
