"""Pictures of checked documents for the browser: photo thumbnails, PDF pages and DICOM frames.

Every function takes a plaintext file that documents.checks has already accepted and returns encoded bytes, so
the expert sees photos, PDFs and medical images without installing a viewer. Nothing here trusts the file to be
small: large radiographs are reduced before the float maths and PDF pages are rendered at a bounded size.
"""

from __future__ import annotations

import io
import re
import threading
from datetime import date
from pathlib import Path

import numpy as np
import pillow_heif
import pydicom
import pypdfium2 as pdfium
from PIL import Image, ImageOps
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, pixel_array
from pydicom.uid import DeflatedExplicitVRLittleEndian

pillow_heif.register_heif_opener()

THUMBNAIL_QUALITY = 85
PDF_MAX_HEIGHT = 8000  # pixels: a banner-shaped page must not allocate a gigantic bitmap
PNG_COMPRESS_LEVEL = 3  # previews are short-lived: faster encoding beats a few percent of size

WINDOW_PRESETS = {
    "stored": None,
    "auto": None,
    "lung": (-600, 1500),
    "mediastinum": (50, 350),
    "bone": (400, 1800),
    "brain": (40, 80),
    "abdomen": (60, 400),
    "liver": (60, 160),
}  # (center, width) in Hounsfield units

# PDFium keeps global state and is not thread-safe; gunicorn (gthread) and huey (thread workers) share a process.
_PDFIUM_LOCK = threading.Lock()

_FUNCTIONAL_GROUP_MODULES = ("PixelValueTransformationSequence", "FrameVOILUTSequence")


class PreviewUnavailable(Exception):
    """The file is valid but cannot be pictured here (no pixel data, or a compression without decoder)."""


# --- Photos ------------------------------------------------------------------------------------------------------


def image_thumbnail(path: Path, *, max_side: int = 320) -> bytes:
    """A JPEG no larger than max_side on either side, upright (EXIF orientation applied), without metadata."""
    with Image.open(path) as image:
        image.draft("RGB", (max_side, max_side))  # JPEG only: let libjpeg decode at 1/2..1/8 scale, much faster
        # A CMYK or grey profile would mislabel the RGB output; photos were converted to sRGB at upload anyway.
        icc_profile = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
        upright = ImageOps.exif_transpose(image)
    upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    _as_rgb(upright).save(buffer, "JPEG", quality=THUMBNAIL_QUALITY, icc_profile=icc_profile)
    return buffer.getvalue()


def _as_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        return _stretch(np.asarray(image, dtype=np.float32))  # 16-bit PNG: convert("RGB") would clip to white
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))  # JPEG has no alpha: white, not black
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image if image.mode in ("RGB", "L") else image.convert("RGB")


def _stretch(values: np.ndarray) -> Image.Image:
    low, high = float(values.min()), float(values.max())
    return Image.fromarray(_linear(values, low, max(high - low, 1e-6)), "L")


# --- PDF ---------------------------------------------------------------------------------------------------------


def pdf_page_png(path: Path, *, page: int = 0, width: int = 900) -> tuple[bytes, int]:
    """(PNG of one page, width pixels wide on a white background, number of pages)."""
    if width < 1:
        raise ValueError(f"width must be positive, not {width}")
    with _PDFIUM_LOCK:
        document = pdfium.PdfDocument(path)
        try:
            count = len(document)
            if not 0 <= page < count:
                raise ValueError(f"page {page} does not exist: the document has {count} page(s)")
            image = _render_pdf_page(document, page, width)
        finally:
            document.close()
    return _png(image), count


def _render_pdf_page(document: pdfium.PdfDocument, index: int, width: int) -> Image.Image:
    page = document[index]
    try:
        page_width, page_height = page.get_size()  # already swapped for /Rotate 90 and 270
        scale = min(width / max(page_width, 1), PDF_MAX_HEIGHT / max(page_height, 1))
        bitmap = page.render(scale=scale, may_draw_forms=True)
        try:
            return bitmap.to_pil().copy()  # to_pil() shares the bitmap's buffer, which close() frees
        finally:
            bitmap.close()
    finally:
        page.close()


# --- DICOM: information ------------------------------------------------------------------------------------------


def dicom_info(path: Path) -> dict:
    """What the viewer shows and sorts by, as plain Python values (no patient identifiers)."""
    ds, has_pixels = _read_header(path)
    frames = _frame_count(ds)
    _flatten_functional_groups(ds, 0)
    return {
        "modality": _text(ds, "Modality"),
        "study_date": _iso_date(ds.get("StudyDate")),
        "study_description": _text(ds, "StudyDescription"),
        "body_part": _text(ds, "BodyPartExamined"),
        "series_description": _text(ds, "SeriesDescription"),
        "series_number": _int(ds.get("SeriesNumber")),
        "instance_number": _int(ds.get("InstanceNumber")),
        "study_uid": _text(ds, "StudyInstanceUID"),
        "series_uid": _text(ds, "SeriesInstanceUID"),
        "sop_uid": _text(ds, "SOPInstanceUID"),
        "frames": frames,
        "rows": _int(ds.get("Rows")),
        "columns": _int(ds.get("Columns")),
        "photometric": _text(ds, "PhotometricInterpretation"),
        "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")),
        "window_center": _float(ds.get("WindowCenter")),
        "window_width": _float(ds.get("WindowWidth")),
        "has_pixels": has_pixels,
    }


def _read_header(path: Path) -> tuple[Dataset, bool]:
    """The data set without its pixels, and whether pixels follow."""
    with Path(path).open("rb") as file:
        ds = pydicom.dcmread(file, stop_before_pixels=True)
        # pydicom stops in front of a pixel data element and otherwise reads to the end of the file.
        has_pixels = bool(file.read(1))
    if _is_deflated(ds):  # the file was inflated into memory: its position says nothing
        full = pydicom.dcmread(path)
        has_pixels = any(keyword in full for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
    return ds, has_pixels


def _is_deflated(ds: Dataset) -> bool:
    return ds.file_meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian


def _flatten_functional_groups(ds: Dataset, frame: int) -> None:
    """Enhanced (multi-frame) objects keep rescale and window per frame: copy them where classic files have them."""
    groups = []
    if shared := ds.get("SharedFunctionalGroupsSequence"):
        groups.append(shared[0])
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])  # after the shared group: per-frame values win
    for group in groups:
        for module in _FUNCTIONAL_GROUP_MODULES:
            if items := group.get(module):
                for element in items[0]:
                    ds[element.tag] = element


def _frame_count(ds: Dataset) -> int:
    return max(_int(ds.get("NumberOfFrames")) or 1, 1)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    if value is None:
        return ""
    if isinstance(value, MultiValue):
        return "\\".join(str(part) for part in value).strip()
    return str(value).strip()


def _first(value):
    return value[0] if isinstance(value, MultiValue | list | tuple) and value else value


def _int(value) -> int | None:
    try:
        return int(_first(value))
    except (TypeError, ValueError):  # absent, empty or malformed IS value
        return None


def _float(value) -> float | None:
    try:
        return float(_first(value))
    except (TypeError, ValueError):
        return None


def _iso_date(value) -> str:
    # DA is YYYYMMDD; some old (ACR-NEMA era) files write YYYY.MM.DD.
    match = re.fullmatch(r"(\d{4})\.?(\d{2})\.?(\d{2})", str(value or "").strip())
    if not match:
        return ""
    try:
        return date(*(int(part) for part in match.groups())).isoformat()
    except ValueError:
        return ""


# --- DICOM: rendering --------------------------------------------------------------------------------------------


def dicom_frame_png(path: Path, *, frame: int = 0, preset: str = "stored", max_side: int = 1024) -> bytes:
    """One frame as an 8-bit PNG: greyscale through the modality LUT and a VOI window, colour as RGB."""
    if preset not in WINDOW_PRESETS:
        raise ValueError(f"unknown window preset {preset!r}")
    ds, has_pixels = _read_header(path)
    if not has_pixels:
        raise PreviewUnavailable("this DICOM object has no pixel data")
    frames = _frame_count(ds)
    if not 0 <= frame < frames:
        raise ValueError(f"frame {frame} does not exist: the image has {frames} frame(s)")
    _flatten_functional_groups(ds, frame)
    stored = _decode_frame(path, ds, frame)
    image = _colour_image(stored, ds) if _is_colour(stored, ds) else _grey_image(stored, ds, preset, max_side)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return _png(image)


def _decode_frame(path: Path, ds: Dataset, frame: int) -> np.ndarray:
    """Only the requested frame is read and decompressed (pylibjpeg, Pillow or pydicom's RLE decoder)."""
    try:
        if _is_deflated(ds):  # pixel_array() cannot inflate from a path
            return pixel_array(pydicom.dcmread(path), index=frame)
        return pixel_array(path, index=frame)
    except Exception as exc:  # decoders raise many types: no plugin for this syntax, damaged or short data...
        transfer_syntax = ds.file_meta.get("TransferSyntaxUID")
        name = transfer_syntax.name if transfer_syntax else "unknown"
        raise PreviewUnavailable(f"cannot decode frame {frame} ({name}): {type(exc).__name__}: {exc}") from exc


def _is_colour(stored: np.ndarray, ds: Dataset) -> bool:
    return stored.ndim == 3 or _text(ds, "PhotometricInterpretation") == "PALETTE COLOR"


def _colour_image(stored: np.ndarray, ds: Dataset) -> Image.Image:
    """RGB as stored (YBR was already converted by the decoder): windowing is for greyscale only."""
    if _text(ds, "PhotometricInterpretation") == "PALETTE COLOR":
        rgb = apply_color_lut(stored, ds)
        bits = 8 if rgb.dtype == np.uint8 else 16
    else:
        rgb = stored
        bits = _int(ds.get("BitsStored")) or rgb.dtype.itemsize * 8
    if bits > 8:
        rgb = (rgb.astype(np.float32) * (255 / (2**bits - 1))).round()
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def _grey_image(stored: np.ndarray, ds: Dataset, preset: str, max_side: int) -> Image.Image:
    stored = _shrink(stored, max_side)
    values = apply_modality_lut(stored, ds)
    grey = _apply_window(values, ds, preset)
    if _text(ds, "PhotometricInterpretation") == "MONOCHROME1" or _text(ds, "PresentationLUTShape") == "INVERSE":
        grey = 255 - grey  # MONOCHROME1: low values are white
    return Image.fromarray(grey, "L")


def _shrink(stored: np.ndarray, max_side: int) -> np.ndarray:
    """Average blocks of stored values first: a 4000-pixel radiograph then needs a fraction of the float memory."""
    factor = max(stored.shape) // max_side
    if factor < 2 or stored.dtype.kind not in "iub" or stored.dtype.itemsize > 2:
        return stored  # 32-bit values would overflow Pillow's int32 mode
    return np.asarray(Image.fromarray(stored.astype(np.int32), "I").reduce(factor))


def _apply_window(values: np.ndarray, ds: Dataset, preset: str) -> np.ndarray:
    if preset == "stored":
        return _stored_window(values, ds)
    if preset == "auto":
        return _auto_window(values)
    center, width = WINDOW_PRESETS[preset]
    return _linear_window(values, center, width)


def _stored_window(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """The file's own window (first one if several), else its VOI LUT, else automatic."""
    center, width = _float(ds.get("WindowCenter")), _float(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        function = _text(ds, "VOILUTFunction").upper() or "LINEAR"
        if function == "SIGMOID":
            with np.errstate(over="ignore"):  # exp() overflows to inf far below the window: the output is 0 there
                return (255 / (1 + np.exp(-4 * (values.astype(np.float32) - center) / width))).astype(np.uint8)
        if function == "LINEAR" and width > 1:
            center, width = center - 0.5, width - 1  # PS3.3 C.11.2.1.2.1
        return _linear_window(values, center, width)
    if ds.get("VOILUTSequence"):
        return _voi_lut_window(values, ds)
    return _auto_window(values)


def _voi_lut_window(values: np.ndarray, ds: Dataset) -> np.ndarray:
    """pydicom applies the table; its entries often use fewer bits than declared, so scale by their real range."""
    descriptor = ds.VOILUTSequence[0].LUTDescriptor
    entries, first = descriptor[0] or 2**16, descriptor[1]
    table = apply_voi(np.arange(first, first + entries, dtype=np.int64), ds)
    low, high = float(table.min()), float(table.max())
    mapped = apply_voi(np.rint(values).astype(np.int64), ds)
    return _linear(mapped, low, max(high - low, 1.0))


def _auto_window(values: np.ndarray) -> np.ndarray:
    """1st-99th percentile, so a few very bright pixels (metal, text burnt in) do not grey out the image."""
    low, high = (float(v) for v in np.percentile(values, (1, 99)))
    if high <= low:  # mostly uniform (masks, small objects on a flat background)
        low, high = float(values.min()), float(values.max())
    return _linear(values, low, max(high - low, 1e-6))


def _linear_window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    width = max(float(width), 1e-6)
    return _linear(values, center - width / 2, width)


def _linear(values: np.ndarray, low: float, width: float) -> np.ndarray:
    scaled = (values.astype(np.float32) - np.float32(low)) * np.float32(255 / width)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


# --- DICOM: series -----------------------------------------------------------------------------------------------


def group_series(infos: list[dict]) -> list[dict]:
    """Studies by date, their series by number, their images by instance number (as a viewer lists them)."""
    studies: dict[str, dict[str, list[dict]]] = {}
    for info in infos:
        studies.setdefault(info.get("study_uid", ""), {}).setdefault(info.get("series_uid", ""), []).append(info)
    grouped = [_study(study_uid, series) for study_uid, series in studies.items()]
    grouped.sort(key=lambda study: (study["study_date"] == "", study["study_date"], study["study_uid"]))
    return grouped


def _study(study_uid: str, series_by_uid: dict[str, list[dict]]) -> dict:
    members = [info for items in series_by_uid.values() for info in items]
    series = [_series(series_uid, items) for series_uid, items in series_by_uid.items()]
    series.sort(key=lambda entry: (_none_last(entry["series_number"]), entry["series_uid"]))
    return {
        "study_uid": study_uid,
        "study_date": _first_set(members, "study_date"),
        "study_description": _first_set(members, "study_description"),
        "series": series,
    }


def _series(series_uid: str, items: list[dict]) -> dict:
    ordered = sorted(items, key=lambda info: (_none_last(info.get("instance_number")), info.get("sop_uid", "")))
    return {
        "series_uid": series_uid,
        "series_number": next((info["series_number"] for info in items if info.get("series_number") is not None), None),
        "series_description": _first_set(items, "series_description"),
        "modality": _first_set(items, "modality"),
        "body_part": _first_set(items, "body_part"),
        "items": ordered,
    }


def _first_set(infos: list[dict], key: str) -> str:
    # Images of one series normally agree; the first non-empty value covers those that leave it out.
    return next((info[key] for info in infos if info.get(key)), "")


def _none_last(number: int | None) -> tuple[bool, int]:
    return (number is None, number or 0)
