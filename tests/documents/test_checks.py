"""Content checks on real generated files (tests/documents/hostile.py) and the clamd INSTREAM client."""

import io
import socket
import socketserver
import struct
import threading
import zipfile

import pydicom
import pytest
from PIL import Image

from teleexpertise.documents import checks
from teleexpertise.documents.checks import RefusedContent, detect_kind, inspect_upload, safe_filename
from teleexpertise.documents.clamav import ScannerUnavailable, parse_address, ping, scan
from tests.documents import hostile

FORMAT_MESSAGE = (
    "Format non accepté. Formats acceptés : photos JPEG, PNG ou HEIC, documents PDF, images DICOM, vidéos MP4 ou WebM."
)


@pytest.fixture
def src(tmp_path):
    directory = tmp_path / "in"
    directory.mkdir()
    return directory


@pytest.fixture
def workdir(tmp_path):
    directory = tmp_path / "work"
    directory.mkdir()
    return directory


@pytest.fixture(autouse=True)
def _restore_pillow_limit():
    # inspect_upload sets this process-wide from settings; tests that lower the setting must not leak it.
    before = Image.MAX_IMAGE_PIXELS
    yield
    Image.MAX_IMAGE_PIXELS = before


def inspect(path, workdir, name=None):
    return inspect_upload(path, name or path.name, workdir=workdir)


def refusal(path, workdir, name=None) -> RefusedContent:
    with pytest.raises(RefusedContent) as caught:
        inspect(path, workdir, name)
    assert caught.value.message and caught.value.reason
    return caught.value


# --- Photos --------------------------------------------------------------------------------------------------------


def test_jpeg_loses_exif_gps_and_all_metadata(src, workdir):
    original = hostile.jpeg_with_gps(src)
    before = original.read_bytes()
    result = inspect(original, workdir)
    assert (result.media_type, result.category, result.safe_name) == ("image/jpeg", "photo", "IMG_0042.jpg")
    assert result.path.parent == workdir and result.path != original
    assert {"exif_removed", "gps_removed", "metadata_removed"} <= set(result.flags)
    assert result.details == {"width": 64, "height": 48, "source_format": "JPEG", "frames": 1}
    data = result.path.read_bytes()
    for secret in (b"Exif", b"GPS", b"Apple", b"iPhone", b"Dupont", b"Martin", b"xmpmeta"):
        assert secret not in data
    with Image.open(result.path) as output:
        assert output.format == "JPEG"
        assert not output.getexif()
        assert not output.getexif().get_ifd(0x8825)
        assert not {"exif", "xmp", "comment", "icc_profile"} & set(output.info)
    assert original.read_bytes() == before  # the upload itself is never modified


def test_png_loses_text_chunks_and_keeps_alpha(src, workdir):
    result = inspect(hostile.png_with_text(src), workdir)
    assert (result.media_type, result.safe_name) == ("image/png", "capture.png")
    assert {"exif_removed", "gps_removed", "metadata_removed"} <= set(result.flags)
    data = result.path.read_bytes()
    assert set(hostile.png_chunks(data)) == {b"IHDR", b"IDAT", b"IEND"}
    assert b"Martin" not in data and b"Dupont" not in data
    with Image.open(result.path) as output:
        assert output.mode == "RGBA"
        assert output.getpixel((5, 5)) == (10, 200, 10, 128)


def test_a_png_photo_is_re_encoded_without_changing_a_pixel(src, workdir):
    """The re-encoded PNG trades size for speed (zlib's fastest level), never pixels: PNG is lossless."""
    photo = Image.effect_noise((120, 90), 40).convert("RGB")
    photo = Image.merge("RGB", [photo.getchannel(0), Image.linear_gradient("L").resize((120, 90)),
                                photo.getchannel(2).point(lambda v: 255 - v)])
    path = src / "plaie.png"
    photo.save(path, "PNG")
    result = inspect(path, workdir)
    assert result.media_type == "image/png" and result.path != path
    with Image.open(result.path) as output:
        assert (output.mode, output.size) == ("RGB", (120, 90))
        assert output.tobytes() == photo.tobytes()


def test_exif_orientation_is_applied_to_pixels(src, workdir):
    result = inspect(hostile.jpeg_rotated(src), workdir)
    assert "orientation_applied" in result.flags
    assert (result.details["width"], result.details["height"]) == (20, 40)
    with Image.open(result.path) as output:
        assert output.size == (20, 40)
        assert not output.getexif()  # no orientation left to apply twice
        red, green, blue = output.getpixel((10, 5))  # the stored left half is now on top
        assert red > 200 and blue < 60
        red, green, blue = output.getpixel((10, 35))
        assert blue > 200 and red < 60


def test_heic_is_converted_to_jpeg(src, workdir):
    result = inspect(hostile.heic_photo(src), workdir)
    assert (result.media_type, result.category, result.safe_name) == ("image/jpeg", "photo", "IMG_0042.jpg")
    assert {"heic_converted", "exif_removed", "gps_removed"} <= set(result.flags)
    assert result.details["source_format"] == "HEIF"
    with Image.open(result.path) as output:
        assert output.format == "JPEG" and output.size == (64, 48)
        assert not output.getexif()
    assert b"Apple" not in result.path.read_bytes()


@pytest.mark.parametrize(("mode", "flag"), [("RGB", "icc_converted"), ("CMYK", "icc_dropped")])
def test_colour_profile_is_baked_into_srgb_pixels(src, workdir, mode, flag):
    result = inspect(hostile.jpeg_with_icc(src, mode), workdir)
    assert flag in result.flags
    with Image.open(result.path) as output:
        assert output.mode == "RGB"
        assert "icc_profile" not in output.info
        red, green, blue = output.getpixel((16, 16))
        assert red > 150 and green < 80 and blue < 80


@pytest.mark.parametrize(
    ("maker", "first_colour"), [(hostile.png_animated, hostile.RED), (hostile.jpeg_mpo, None)], ids=["apng", "mpo"]
)
def test_multi_frame_images_keep_the_first_frame(src, workdir, maker, first_colour):
    result = inspect(maker(src), workdir)
    assert "first_frame_only" in result.flags
    assert result.details["frames"] == 2
    with Image.open(result.path) as output:
        assert getattr(output, "n_frames", 1) == 1
        if first_colour:
            assert output.convert("RGB").getpixel((0, 0)) == first_colour


def test_jpeg_zip_polyglot_is_neutralised(src, workdir):
    original = hostile.jpeg_zip_polyglot(src)
    assert zipfile.is_zipfile(original)
    result = inspect(original, workdir)
    data = result.path.read_bytes()
    assert b"PK\x03\x04" not in data and b"PK\x05\x06" not in data
    assert not zipfile.is_zipfile(result.path)


def test_truncated_jpeg_is_refused(src, workdir):
    assert refusal(hostile.jpeg_truncated(src), workdir).reason == "image_unreadable"
    assert not list(workdir.iterdir())  # no half-written output left behind


def test_png_decompression_bomb_is_refused(src, workdir):
    path = hostile.png_bomb(src)
    assert path.stat().st_size < 100_000
    error = refusal(path, workdir)
    assert error.reason == "image_too_large"
    assert "60 millions de pixels" in error.message


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("limit", [2_000, 1_000], ids=["warning-zone", "error-zone"])
def test_image_over_the_configured_limit_is_refused(src, workdir, settings, limit):
    settings.DOCUMENT_IMAGE_MAX_PIXELS = limit  # 64 x 48 = 3072 pixels: between 1x and 2x, then beyond 2x
    assert refusal(hostile.jpeg_with_gps(src), workdir).reason == "image_too_large"


# --- PDF -----------------------------------------------------------------------------------------------------------


def test_pdf_is_accepted_unchanged(src, workdir):
    original = hostile.pdf_report(src, pages=3)
    result = inspect(original, workdir, "Compte rendu IRM.PDF")
    assert (result.media_type, result.category, result.safe_name) == ("application/pdf", "pdf", "Compte rendu IRM.pdf")
    assert result.path == original
    assert result.details == {"pages": 3}
    assert not list(workdir.iterdir())


def test_hand_built_pdf_is_accepted(src, workdir):
    path = src / "minimal.pdf"
    path.write_bytes(hostile.build_pdf())
    assert inspect(path, workdir).details == {"pages": 1}


@pytest.mark.parametrize(
    ("maker", "reason"),
    [
        (hostile.pdf_javascript, "pdf_javascript"),
        (hostile.pdf_javascript_hidden, "pdf_javascript"),
        (hostile.pdf_javascript_unreferenced, "pdf_javascript"),
        (hostile.pdf_launch, "pdf_launch"),
        (hostile.pdf_embedded_file, "pdf_embedded_file"),
        (hostile.pdf_xfa, "pdf_xfa"),
        (hostile.pdf_encrypted, "pdf_encrypted"),
        (hostile.pdf_no_pages, "pdf_no_pages"),
        (hostile.pdf_zip_polyglot, "polyglot"),
        (hostile.pdf_zip_polyglot_hidden_eof, "polyglot"),
        (hostile.pdf_html_prefix, "polyglot"),
    ],
)
def test_hostile_pdfs_are_refused(src, workdir, maker, reason):
    error = refusal(maker(src), workdir)
    assert error.reason == reason
    assert error.message.startswith("Ce fichier n'est pas accepté : ")


def test_pdf_refusal_explains_the_way_out(src, workdir):
    error = refusal(hostile.pdf_javascript(src), workdir)
    assert "JavaScript" in error.message and "Imprimer en PDF" in error.message
    assert "mot de passe" in refusal(hostile.pdf_encrypted(src), workdir).message


# --- DICOM ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "transfer_syntax", "frames", "modality", "preamble_cleared"),
    [
        ("CT_small.dcm", "1.2.840.10008.1.2.1", 1, "CT", True),  # TIFF preamble: libmagic says image/tiff
        ("MR_small.dcm", "1.2.840.10008.1.2.1", 1, "MR", True),
        ("JPEG2000.dcm", "1.2.840.10008.1.2.4.91", 1, "NM", False),
        ("SC_rgb_jpeg_dcmtk.dcm", "1.2.840.10008.1.2.4.50", 1, "OT", False),
        ("MR_small_RLE.dcm", "1.2.840.10008.1.2.5", 1, "MR", True),
        ("SC_rgb_rle_2frame.dcm", "1.2.840.10008.1.2.5", 2, "OT", False),
    ],
)
def test_dicom_files_are_accepted(src, workdir, name, transfer_syntax, frames, modality, preamble_cleared):
    original = hostile.dicom_copy(src, name)
    result = inspect(original, workdir)
    reference = pydicom.dcmread(original)
    assert (result.media_type, result.category, result.safe_name) == ("application/dicom", "dicom", name)
    assert result.details == {
        "frames": frames,
        "transfer_syntax": transfer_syntax,
        "sop_class_uid": str(reference.SOPClassUID),
        "modality": modality,
        "study_uid": str(reference.StudyInstanceUID),
        "series_uid": str(reference.SeriesInstanceUID),
        "series_description": str(reference.get("SeriesDescription", "")),
        "instance_number": int(reference.InstanceNumber) if reference.get("InstanceNumber") not in (None, "") else None,
    }
    assert ("dicom_preamble_cleared" in result.flags) is preamble_cleared
    assert (result.path != original) is preamble_cleared
    assert result.path.read_bytes()[:128] == bytes(128)


def test_dicom_is_recognised_before_libmagic(src):
    path = hostile.dicom_copy(src, "CT_small.dcm")
    assert checks._libmagic_mime(path) == "image/tiff"
    assert detect_kind(path) == "dicom"


def test_dicom_preamble_executable_is_cleared(src, workdir):
    original = hostile.dicom_with_elf_preamble(src)
    source = original.read_bytes()
    result = inspect(original, workdir, "examen")
    assert "dicom_preamble_cleared" in result.flags
    assert result.safe_name == "examen.dcm"
    stored = result.path.read_bytes()
    assert stored[:128] == bytes(128) and stored[128:] == source[128:]
    assert checks._libmagic_mime(result.path) == "application/dicom"
    assert pydicom.dcmread(result.path).SOPInstanceUID == pydicom.dcmread(original).SOPInstanceUID


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_broken_dicoms_are_refused(src, workdir):
    assert refusal(hostile.dicom_garbage(src), workdir).reason == "dicom_unreadable"
    assert refusal(hostile.dicom_copy(src, "MR_truncated.dcm"), workdir).reason == "dicom_unreadable"
    assert refusal(hostile.dicom_without_sop_class(src), workdir).reason == "dicom_no_sop_class"
    full = hostile.dicom_copy(src, "JPEG2000.dcm").read_bytes()
    # Inside the compressed pixel data, inside an element header, inside a value, inside the identifying elements.
    for cut in (100, 1000, 1190, 2000, 3000):
        path = src / f"cut-{cut}.dcm"
        path.write_bytes(full[: len(full) - cut])
        assert refusal(path, workdir).reason == "dicom_unreadable", cut


def test_encapsulated_pdf_gets_the_pdf_checks(src, workdir):
    benign = hostile.dicom_encapsulated_pdf(src, hostile.build_pdf())
    assert inspect(benign, workdir).media_type == "application/dicom"
    hostile_pdf = hostile.pdf_javascript(src).read_bytes()
    (src / "encapsulated.dcm").unlink()
    assert refusal(hostile.dicom_encapsulated_pdf(src, hostile_pdf), workdir).reason == "pdf_javascript"


# --- Video ---------------------------------------------------------------------------------------------------------


def test_mp4_is_accepted_unchanged(src, workdir):
    original = hostile.mp4_video(src)
    result = inspect(original, workdir, "Vidéo marche.mp4")
    assert (result.media_type, result.category, result.safe_name) == ("video/mp4", "video", "Vidéo marche.mp4")
    assert result.path == original
    assert result.details == {"container": "mp4", "brand": "isom"}


def test_quicktime_movie_is_accepted_as_mp4(src, workdir):
    result = inspect(hostile.mov_video(src), workdir)
    assert (result.media_type, result.safe_name) == ("video/mp4", "IMG_0001.mp4")
    assert "quicktime_container" in result.flags


@pytest.mark.parametrize(
    "options", [{}, {"unknown_size": True}, {"wide": True}], ids=["sized-segment", "live-recording", "wide-sizes"]
)
def test_webm_is_accepted_unchanged(src, workdir, options):
    original = hostile.webm_video(src, **options)
    result = inspect(original, workdir)
    assert (result.media_type, result.category, result.safe_name) == ("video/webm", "video", "video.webm")
    assert result.path == original


@pytest.mark.parametrize(
    ("maker", "reason"),
    [
        (hostile.mp4_box_overrun, "video_unreadable"),
        (hostile.mp4_without_moov, "video_unreadable"),
        (hostile.m4a_audio, "unsupported_format"),
        (hostile.matroska_video, "unsupported_format"),
        (hostile.webm_with_attachment, "video_attachment"),
        (hostile.webm_overrun, "video_unreadable"),
    ],
)
def test_broken_or_foreign_videos_are_refused(src, workdir, maker, reason):
    assert refusal(maker(src), workdir).reason == reason


def test_video_with_appended_archive_is_refused(src, workdir):
    path = src / "polyglot.mp4"
    path.write_bytes(hostile.mp4_bytes() + hostile.zip_bytes())
    assert refusal(path, workdir).reason == "polyglot"


# --- Not accepted --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "maker",
    [
        hostile.elf_executable,
        hostile.pe_executable,
        hostile.macho_executable,
        hostile.shell_script,
        hostile.html_page,
        hostile.svg_script,
        hostile.zip_archive,
        hostile.docx_document,
        hostile.tiff_image,
        hostile.gifar,
        hostile.fake_malware,
    ],
)
def test_other_formats_are_refused_whatever_their_name(src, workdir, maker):
    path = maker(src)
    error = refusal(path, workdir)
    assert (error.reason, error.message) == ("unsupported_format", FORMAT_MESSAGE)
    assert error.detail  # what libmagic saw, for the audit trail
    assert not list(workdir.iterdir())


def test_empty_file_is_refused(src, workdir):
    error = refusal(hostile.empty_file(src), workdir)
    assert error.reason == "empty"


# --- File names ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "extension", "expected"),
    [
        ("../../etc/passwd", ".pdf", "passwd.pdf"),
        ("C:\\Users\\Dr\\Bureau\\scan 01.PDF", ".pdf", "scan 01.pdf"),
        ("photo\u202egpj.exe", ".jpg", "photogpj.jpg"),
        ("zero\u200bwidth\u2066.png", ".png", "zerowidth.png"),
        ("rapport\x00\nfinal\t.pdf", ".pdf", "rapport final.pdf"),
        ('a<b>c:d*e?f"g|h.jpg', ".jpg", "a_b_c_d_e_f_g_h.jpg"),
        (".htaccess", ".png", "document.png"),
        ("...bashrc.jpg", ".jpg", "bashrc.jpg"),
        ("...", ".pdf", "document.pdf"),
        ("", ".pdf", "document.pdf"),
        ("Compte rendu 12.03.2024", ".pdf", "Compte rendu 12.03.2024.pdf"),
        ("IMG_0042.HEIC", ".jpg", "IMG_0042.jpg"),
        ("photo.jpg.exe", ".jpg", "photo.jpg.jpg"),
        ("e\u0301chographie.jpg", ".jpg", "\u00e9chographie.jpg"),
        ("CON.jpg", ".jpg", "CON_.jpg"),
        ("scan .  ", ".pdf", "scan.pdf"),
    ],
)
def test_safe_filename(original, extension, expected):
    assert safe_filename(original, extension) == expected


@pytest.mark.parametrize("stem", ["a" * 300, "é" * 300, "compte rendu " * 30])
def test_long_names_are_cut_to_120_characters(stem):
    name = safe_filename(stem + ".jpg", ".jpg")
    assert len(name) <= 120 and name.endswith(".jpg")
    assert not name[:-4].endswith((" ", "."))


def test_inspected_name_follows_the_content(src, workdir):
    path = hostile.jpeg_with_gps(src)
    assert inspect(path, workdir, "resultats/photo\u202egpj.exe").safe_name == "photogpj.jpg"


# --- ClamAV (a fake clamd speaking the INSTREAM protocol on 127.0.0.1 or a unix socket) -------------------------


class FakeClamdHandler(socketserver.BaseRequestHandler):
    def handle(self):
        server = self.server
        command = self._read_until(b"\x00")
        if server.silent:
            threading.Event().wait(2)  # never answers within the client's timeout
            return
        if command == b"zPING":
            self.request.sendall(b"PONG\x00")
            return
        if command != b"zINSTREAM":
            self.request.sendall(b"UNKNOWN COMMAND\x00")
            return
        received = bytearray()
        while length := struct.unpack("!I", self._read_exact(4))[0]:
            received += self._read_exact(length)
            if len(received) > server.max_length:
                self.request.sendall(b"INSTREAM size limit exceeded. ERROR\x00")
                return
        server.streams.append(bytes(received))
        verdict = b"stream: Eicar-Test-Signature FOUND" if hostile.FAKE_MALWARE_MARKER in received else b"stream: OK"
        self.request.sendall(verdict + b"\x00")

    def _read_until(self, end: bytes) -> bytes:
        data = bytearray()
        while (byte := self.request.recv(1)) and byte != end:
            data += byte
        return bytes(data)

    def _read_exact(self, size: int) -> bytes:
        data = bytearray()
        while len(data) < size:
            chunk = self.request.recv(size - len(data))
            if not chunk:
                raise ConnectionError("client went away")
            data += chunk
        return bytes(data)


def _start(server_class, address, **options):
    server = server_class(address, FakeClamdHandler)
    server.daemon_threads = True
    server.streams = []
    server.silent = options.get("silent", False)
    server.max_length = options.get("max_length", 10**9)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server


@pytest.fixture
def clamd():
    servers = []

    def start(**options):
        server = _start(socketserver.ThreadingTCPServer, ("127.0.0.1", 0), **options)
        servers.append(server)
        host, port = server.server_address
        return server, f"{host}:{port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_clean_file_streams_in_chunks(clamd, src, settings):
    server, address = clamd()
    settings.CLAMAV_ADDRESS = address
    big = src / "big.bin"
    big.write_bytes(bytes(range(256)) * 1000)  # several INSTREAM chunks
    assert scan(big) is None
    assert server.streams == [big.read_bytes()]
    assert ping()


def test_infected_file_returns_the_signature(clamd, src, settings):
    _server, settings.CLAMAV_ADDRESS = clamd()
    assert scan(hostile.fake_malware(src)) == "Eicar-Test-Signature"


def test_unix_socket_address(tmp_path, src, settings):
    socket_path = tmp_path / "clamd.sock"
    server = _start(socketserver.ThreadingUnixStreamServer, str(socket_path))
    try:
        settings.CLAMAV_ADDRESS = str(socket_path)
        assert scan(hostile.fake_malware(src)) == "Eicar-Test-Signature"
    finally:
        server.shutdown()
        server.server_close()


def test_scanning_disabled_without_address(src, settings):
    settings.CLAMAV_ADDRESS = ""
    assert scan(hostile.fake_malware(src)) is None


def test_unreachable_daemon_raises(src, settings):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CLAMAV_ADDRESS = f"127.0.0.1:{port}"
    with pytest.raises(ScannerUnavailable):
        scan(hostile.fake_malware(src))


def test_silent_daemon_times_out(clamd, src):
    _server, address = clamd(silent=True)
    with pytest.raises(ScannerUnavailable):
        scan(hostile.fake_malware(src), address=address, timeout=0.3)


def test_daemon_error_reply_raises(clamd, src):
    _server, address = clamd(max_length=1000)
    big = src / "big.bin"
    big.write_bytes(b"x" * 500_000)
    with pytest.raises(ScannerUnavailable, match="size limit"):
        scan(big, address=address)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("127.0.0.1:3310", ("tcp", ("127.0.0.1", 3310))),
        ("clamav:3310", ("tcp", ("clamav", 3310))),
        ("[::1]:3310", ("tcp", ("::1", 3310))),
        ("/run/clamav/clamd.ctl", ("unix", "/run/clamav/clamd.ctl")),
    ],
)
def test_parse_address(address, expected):
    assert parse_address(address) == expected


def test_bad_address_is_a_configuration_error():
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured):
        parse_address("clamav")


def test_generated_zip_helper_is_a_real_archive():
    assert zipfile.is_zipfile(io.BytesIO(hostile.zip_bytes()))
