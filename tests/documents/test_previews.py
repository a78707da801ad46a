"""Previews rendered from real files: pydicom's bundled DICOM test data, and JPEG/PDF files made here."""

import io
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pypdf import PdfWriter
from pypdf.generic import ContentStream

from teleexpertise.documents.previews import (
    WINDOW_PRESETS,
    PreviewUnavailable,
    dicom_frame_png,
    dicom_info,
    group_series,
    image_thumbnail,
    pdf_page_png,
)

CT_RENDER_BUDGET = 0.25  # seconds; about 10 ms in practice, the margin is for slow CI machines
PDF_RENDER_BUDGET = 1.0


def dicom(name):
    # download=False: only the files shipped inside the pydicom wheel, never pydicom-data from the network.
    path = get_testdata_file(name, download=False)
    assert path, f"{name} is not bundled with this pydicom"
    return Path(path)


def timed(render, *args, **kwargs):
    start = time.perf_counter()
    result = render(*args, **kwargs)
    return result, time.perf_counter() - start


def png(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    image.load()
    return image


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(png(data), dtype=np.float64)


# --- dicom_info --------------------------------------------------------------------------------------------------


def test_ct_info_is_plain_python():
    info = dicom_info(dicom("CT_small.dcm"))
    assert info["modality"] == "CT"
    assert (info["rows"], info["columns"], info["frames"]) == (128, 128, 1)
    assert info["study_date"] == "2004-01-19"
    assert info["photometric"] == "MONOCHROME2"
    assert info["transfer_syntax"] == "1.2.840.10008.1.2.1"
    assert info["window_center"] is None and info["window_width"] is None
    assert info["has_pixels"] is True
    assert info["study_uid"] and info["series_uid"] and info["sop_uid"]
    assert all(type(value) in (str, int, float, bool, type(None)) for value in info.values()), info


def test_mr_info_reads_the_stored_window():
    info = dicom_info(dicom("MR_small.dcm"))
    assert info["modality"] == "MR"
    assert (info["window_center"], info["window_width"]) == (600.0, 1600.0)
    assert (info["rows"], info["columns"]) == (64, 64)


@pytest.mark.parametrize("name", ["rtplan.dcm", "reportsi.dcm"])
def test_objects_without_pixels(name):
    path = dicom(name)
    assert dicom_info(path)["has_pixels"] is False
    with pytest.raises(PreviewUnavailable):
        dicom_frame_png(path)


def test_deflated_file_is_read_and_rendered():
    path = dicom("image_dfl.dcm")
    info = dicom_info(path)
    assert info["has_pixels"] is True
    assert png(dicom_frame_png(path)).size == (512, 512)


def test_enhanced_functional_groups_give_rescale_and_window(tmp_path):
    ds = pydicom.dcmread(dicom("CT_small.dcm"))
    intercept = ds.RescaleIntercept
    del ds.RescaleSlope, ds.RescaleIntercept
    transformation = Dataset()
    transformation.RescaleSlope, transformation.RescaleIntercept = 1, intercept
    shared = Dataset()
    shared.PixelValueTransformationSequence = Sequence([transformation])
    voi = Dataset()
    voi.WindowCenter, voi.WindowWidth = -600, 1500
    frame = Dataset()
    frame.FrameVOILUTSequence = Sequence([voi])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    path = tmp_path / "enhanced.dcm"
    ds.save_as(path)

    assert (dicom_info(path)["window_center"], dicom_info(path)["window_width"]) == (-600.0, 1500.0)
    stored = pixels(dicom_frame_png(path))
    lung = pixels(dicom_frame_png(dicom("CT_small.dcm"), preset="lung"))
    assert np.abs(stored - lung).mean() < 1  # same window; LINEAR's half-pixel offset aside


# --- dicom_frame_png: greyscale and windows ----------------------------------------------------------------------


def test_ct_presets_change_the_picture():
    path = dicom("CT_small.dcm")
    renders = {}
    for preset in ("stored", "auto", "lung", "bone", "mediastinum"):
        data, _elapsed = timed(dicom_frame_png, path, preset=preset)
        image = png(data)
        assert (image.size, image.mode) == ((128, 128), "L")
        renders[preset] = np.asarray(image, dtype=np.float64)
    assert np.array_equal(renders["stored"], renders["auto"])  # no window in this file: falls back to "auto"
    means = {preset: render.mean() for preset, render in renders.items()}
    assert len({round(means[preset], 1) for preset in ("auto", "lung", "bone", "mediastinum")}) == 4, means
    assert means["lung"] > means["mediastinum"] > means["bone"]  # a wider, lower window shows soft tissue white
    assert all(render.std() > 10 for render in renders.values())


def test_stored_window_differs_from_auto():
    path = dicom("693_J2KI.dcm")  # head CT with a 40/100 window, JPEG 2000
    stored, auto = pixels(dicom_frame_png(path)), pixels(dicom_frame_png(path, preset="auto"))
    brain = pixels(dicom_frame_png(path, preset="brain"))
    assert not np.array_equal(stored, auto)
    assert np.abs(stored - brain).mean() < 2


def test_ct_frame_render_time(tmp_path):
    ds = pydicom.dcmread(dicom("693_J2KI.dcm"))
    ds.decompress()  # a usual 512 x 512 uncompressed CT slice
    path = tmp_path / "ct.dcm"
    ds.save_as(path)
    dicom_frame_png(path)  # the first call imports the pixel handlers
    for preset in ("stored", "lung", "auto"):
        data, elapsed = timed(dicom_frame_png, path, preset=preset)
        assert png(data).size == (512, 512)
        assert elapsed < CT_RENDER_BUDGET, f"{preset}: {elapsed * 1000:.0f} ms"


def test_mr_small_render():
    image = png(dicom_frame_png(dicom("MR_small.dcm")))
    assert (image.size, image.mode) == ((64, 64), "L")


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm"])
def test_lossless_encodings_render_like_the_uncompressed_file(name):
    reference = pixels(dicom_frame_png(dicom("MR_small.dcm")))
    assert np.array_equal(pixels(dicom_frame_png(dicom(name))), reference)


def test_jpeg2000_is_decoded_and_downscaled():
    path = dicom("JPEG2000.dcm")  # NM, 256 x 1024
    assert png(dicom_frame_png(path)).size == (256, 1024)
    small = png(dicom_frame_png(path, max_side=512))
    assert small.size == (128, 512)
    assert np.asarray(small).std() > 10


def test_large_image_is_reduced(tmp_path):
    ds = pydicom.dcmread(dicom("MR_small.dcm"))
    big = np.kron(ds.pixel_array, np.ones((40, 40), dtype=ds.pixel_array.dtype))  # 2560 x 2560
    ds.set_pixel_data(big, "MONOCHROME2", 16)
    path = tmp_path / "big.dcm"
    ds.save_as(path)
    image, elapsed = timed(dicom_frame_png, path)
    assert png(image).size == (1024, 1024)
    assert elapsed < 2


def test_monochrome1_is_inverted(tmp_path):
    # No MONOCHROME1 file ships with pydicom: the same pixels relabelled must come out as the negative.
    ds = pydicom.dcmread(dicom("MR_small.dcm"))
    ds.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    ds.save_as(path)
    for preset in ("stored", "auto"):
        normal = pixels(dicom_frame_png(dicom("MR_small.dcm"), preset=preset))
        inverted = pixels(dicom_frame_png(path, preset=preset))
        assert np.array_equal(inverted, 255 - normal)


def test_unknown_preset_is_refused():
    assert set(WINDOW_PRESETS) >= {"stored", "auto", "lung", "bone"}
    with pytest.raises(ValueError, match="preset"):
        dicom_frame_png(dicom("CT_small.dcm"), preset="soft")


def test_damaged_pixel_data_is_unavailable_not_a_crash():
    with pytest.raises(PreviewUnavailable, match="cannot decode"):
        dicom_frame_png(dicom("MR_truncated.dcm"))


# --- dicom_frame_png: colour -------------------------------------------------------------------------------------


def test_rgb_jpeg_baseline_is_colour():
    data, _elapsed = timed(dicom_frame_png, dicom("SC_rgb_jpeg_dcmtk.dcm"))  # YBR_FULL in JPEG baseline
    image = png(data)
    assert (image.size, image.mode) == ((100, 100), "RGB")
    red, green, blue = image.getpixel((50, 3))  # the file is colour bars, red on top
    assert red > 200 and green < 40 and blue < 40
    assert image.getpixel((50, 33))[1] > 200  # green band


def test_rgb_16_bit_is_scaled_to_8():
    image = png(dicom_frame_png(dicom("SC_rgb_rle_16bit.dcm")))
    assert image.mode == "RGB"
    assert image.getpixel((50, 3)) == (255, 0, 0)


def test_palette_colour_is_expanded():
    image = png(dicom_frame_png(dicom("examples_palette.dcm")))
    assert (image.size, image.mode) == ((800, 350), "RGB")
    assert np.asarray(image).std() > 10


# --- dicom_frame_png: multi-frame --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "frames"), [("rtdose.dcm", 15), ("rtdose_rle.dcm", 15), ("examples_ybr_color.dcm", 30)]
)
def test_multi_frame(name, frames):
    path = dicom(name)
    assert dicom_info(path)["frames"] == frames
    first, elapsed = timed(dicom_frame_png, path, frame=0)
    last = dicom_frame_png(path, frame=frames - 1)
    assert png(first).size == png(last).size
    assert not np.array_equal(pixels(first), pixels(last))
    for missing in (frames, -1):
        with pytest.raises(ValueError, match=f"frame {missing} does not exist"):
            dicom_frame_png(path, frame=missing)


# --- group_series ------------------------------------------------------------------------------------------------


def test_group_series_orders_studies_series_and_images():
    def info(study, date, series, number, instance, sop, **extra):
        return {
            "study_uid": study, "study_date": date, "study_description": extra.get("study_description", ""),
            "series_uid": series, "series_number": number, "series_description": extra.get("description", ""),
            "modality": extra.get("modality", "CT"), "body_part": extra.get("body_part", ""),
            "instance_number": instance, "sop_uid": sop, "document_id": sop,
        }  # fmt: skip

    infos = [
        info("2", "2024-03-01", "2.2", 3, 2, "b"),
        info("1", "2023-12-24", "1.1", 1, None, "z", study_description="Thorax", description="Axial"),
        info("2", "2024-03-01", "2.1", 2, 10, "c", body_part="CHEST"),
        info("2", "2024-03-01", "2.1", 2, 2, "d"),
        info("2", "2024-03-01", "2.2", 3, 1, "a", description="Coronal", modality="CT"),
        info("3", "", "3.1", None, 1, "x", modality="MR"),
        info("2", "2024-03-01", "2.1", 2, 2, "a2"),
    ]
    studies = group_series(infos)
    assert [study["study_uid"] for study in studies] == ["1", "2", "3"]  # undated last
    assert studies[0]["study_description"] == "Thorax"
    series = studies[1]["series"]
    assert [entry["series_uid"] for entry in series] == ["2.1", "2.2"]
    assert [item["sop_uid"] for item in series[0]["items"]] == ["a2", "d", "c"]  # instance, then SOP UID
    assert series[0]["body_part"] == "CHEST"
    assert series[1]["series_description"] == "Coronal"
    assert studies[2]["series"][0]["modality"] == "MR"
    assert series[0]["items"][0]["document_id"] == "a2"  # the caller's own keys travel along
    assert group_series([]) == []


# --- image_thumbnail ---------------------------------------------------------------------------------------------


def test_thumbnail_applies_exif_orientation(tmp_path):
    path = tmp_path / "photo.jpg"
    stored = Image.new("RGB", (4000, 3000), (255, 0, 0))
    stored.paste((0, 0, 255), (2000, 0, 4000, 3000))  # left half red, right half blue, as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored.save(path, "JPEG", exif=exif, quality=90)

    data, elapsed = timed(image_thumbnail, path)
    thumb = Image.open(io.BytesIO(data))
    assert thumb.format == "JPEG"
    assert thumb.size == (240, 320)  # portrait once upright
    assert max(thumb.size) <= 320
    top, bottom = thumb.getpixel((120, 10)), thumb.getpixel((120, 310))
    assert top[0] > 200 and top[2] < 60  # the stored left side is now on top
    assert bottom[2] > 200 and bottom[0] < 60
    assert not thumb.getexif()  # no metadata (GPS, camera) leaks into previews
    assert elapsed < 1


def test_thumbnail_keeps_small_images_and_whitens_transparency(tmp_path):
    path = tmp_path / "scan.png"
    Image.new("RGBA", (100, 50), (0, 0, 0, 0)).save(path)
    thumb = Image.open(io.BytesIO(image_thumbnail(path, max_side=320)))
    assert thumb.size == (100, 50)
    assert min(thumb.getpixel((50, 25))) > 245


def test_thumbnail_of_16_bit_png_is_not_flat(tmp_path):
    path = tmp_path / "export.png"
    ramp = np.tile(np.linspace(0, 4095, 400, dtype=np.uint16), (300, 1))  # 12-bit values, as DICOM exports have
    Image.fromarray(ramp).save(path)
    thumb = np.asarray(Image.open(io.BytesIO(image_thumbnail(path))).convert("L"))
    assert thumb[:, :20].mean() < 30 and thumb[:, -20:].mean() > 225


# --- pdf_page_png ------------------------------------------------------------------------------------------------


def two_page_pdf(path):
    """Page 1: A4 portrait with a blue rectangle low on the left; page 2: red, turned to landscape."""
    writer = PdfWriter()
    for colour in (b"0 0 1 rg", b"1 0 0 rg"):
        page = writer.add_blank_page(width=595, height=842)
        content = ContentStream(None, writer)
        content.set_data(colour + b" 50 50 300 400 re f")
        page.replace_contents(content)
    writer.pages[1].rotate(90)
    writer.write(path)
    return path


def test_pdf_first_page(tmp_path):
    path = two_page_pdf(tmp_path / "report.pdf")
    (data, count), elapsed = timed(pdf_page_png, path)
    image = png(data)
    assert count == 2
    assert image.width == 900
    assert abs(image.height - round(900 * 842 / 595)) <= 1
    assert image.convert("RGB").getpixel((150, image.height - 150)) == (0, 0, 255)
    assert image.convert("RGB").getpixel((800, 100)) == (255, 255, 255)  # white paper, not transparent black
    assert elapsed < PDF_RENDER_BUDGET


def test_pdf_rotated_page_and_missing_page(tmp_path):
    path = two_page_pdf(tmp_path / "report.pdf")
    data, count = pdf_page_png(path, page=1, width=600)
    image = png(data)
    assert count == 2
    assert image.width == 600 and image.height < image.width  # /Rotate 90 is honoured
    assert (255, 0, 0) in {colour for _n, colour in image.convert("RGB").getcolors(10_000)}
    with pytest.raises(ValueError, match="page 2 does not exist"):
        pdf_page_png(path, page=2)


def test_pdf_renders_from_several_threads(tmp_path):
    # gunicorn's gthread workers and huey's threads share one PDFium: renders are serialised by a lock.
    path = two_page_pdf(tmp_path / "report.pdf")
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda page: pdf_page_png(path, page=page % 2, width=300), range(8)))
    assert {count for _data, count in results} == {2}
    assert results[0][0] == results[2][0] == results[6][0]
