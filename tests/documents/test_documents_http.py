"""Documents through the web: upload, what is stored, who can read it, and what an interrupted upload leaves."""

import io
import os

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from pydicom.data import get_testdata_file

from teleexpertise.audit.models import AuditEvent
from teleexpertise.documents.models import Document

CAST = ("requester", "expert", "colleague", "dispatcher", "outsider", "admin")


def _jpeg_with_gps() -> bytes:
    image = Image.new("RGB", (640, 480), (200, 120, 90))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPSInfo: Paris
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def _upload(client, case, name, content, kind="photo", attached_to="request"):
    return client.post(reverse("documents:upload", args=[case.pk]),
                       {"kind": kind, "attached_to": attached_to, "files": [SimpleUploadedFile(name, content)]},
                       HTTP_ACCEPT="application/json")


def _stored_files(settings):
    root = settings.DOCUMENT_ROOT
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files] if os.path.isdir(root) else []


@pytest.fixture(autouse=True)
def _documents_in_tmp(settings, tmp_path):
    settings.DOCUMENT_ROOT = tmp_path / "documents"
    settings.DOCUMENT_STORAGE = "local"


@pytest.fixture
def case_with_photo(cast, client_for):
    case = cast.case_in("taken")
    response = _upload(client_for(cast.requester.user), case, "lesion dos.jpg", _jpeg_with_gps())
    assert response.status_code == 200, response.content
    return case, Document.objects.get(case=case)


def test_photo_upload_strips_gps_and_is_stored_encrypted(case_with_photo, client_for, cast, settings):
    case, document = case_with_photo
    assert document.category == "photo" and document.media_type == "image/jpeg" and document.kind == "photo"
    assert document.uploaded_by == cast.requester
    stored = b"".join(open(path, "rb").read() for path in _stored_files(settings))
    assert b"PhoneMaker" not in stored and b"JFIF" not in stored and b"Exif" not in stored
    body = b"".join(client_for(cast.expert.user).get(reverse("documents:download", args=[document.pk]))
                    .streaming_content)
    assert body.startswith(b"\xff\xd8") and b"PhoneMaker" not in body and b"GPS" not in body
    assert Image.open(io.BytesIO(body)).getexif().get(0x8825) is None
    assert AuditEvent.objects.filter(action="document.add", case_id=case.pk).exists()
    assert AuditEvent.objects.filter(action="document.download", object_id=str(document.pk), kind="R").exists()


def test_download_headers_are_safe(case_with_photo, client_for, cast):
    _, document = case_with_photo
    response = client_for(cast.expert.user).get(reverse("documents:download", args=[document.pk]))
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Content-Type"] == "image/jpeg"


@pytest.mark.parametrize("who", CAST)
def test_only_those_who_see_the_case_reach_its_documents(case_with_photo, client_for, cast, who):
    case, document = case_with_photo
    user = cast.admin if who == "admin" else getattr(cast, who).user
    client = client_for(user)
    urls = [reverse("documents:view", args=[document.pk]), reverse("documents:download", args=[document.pk]),
            reverse("documents:preview", args=[document.pk])]
    allowed = who in ("requester", "expert", "admin")
    for url in urls:
        assert (client.get(url).status_code == 404) != allowed, (who, url)
    upload = _upload(client, case, "x.jpg", _jpeg_with_gps())
    assert upload.status_code == (404 if not allowed else upload.status_code)


def test_range_requests_return_the_right_bytes(case_with_photo, client_for, cast):
    _, document = case_with_photo
    client = client_for(cast.expert.user)
    full = b"".join(client.get(reverse("documents:download", args=[document.pk])).streaming_content)
    part = client.get(reverse("documents:download", args=[document.pk]), HTTP_RANGE="bytes=10-99")
    assert part.status_code == 206 and part["Content-Range"] == f"bytes 10-99/{len(full)}"
    assert b"".join(part.streaming_content) == full[10:100]
    beyond = client.get(reverse("documents:download", args=[document.pk]), HTTP_RANGE=f"bytes={len(full) + 5}-")
    assert beyond.status_code == 416


def test_refused_file_is_explained_audited_and_leaves_nothing(cast, client_for, settings):
    case = cast.case_in("taken")
    response = _upload(client_for(cast.requester.user), case, "compte-rendu.pdf", b"\x7fELF\x02\x01\x01" + b"\0" * 200)
    assert response.status_code == 400
    assert "Formats acceptés" in response.json()["errors"][0]
    assert not Document.objects.exists() and _stored_files(settings) == []
    assert AuditEvent.objects.filter(action="document.refused", case_id=case.pk).exists()


def test_a_failing_store_leaves_no_record_and_no_file(cast, client_for, settings, tmp_path):
    case = cast.case_in("taken")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    settings.DOCUMENT_ROOT = blocked / "documents"  # cannot be created: the store fails midway
    response = _upload(client_for(cast.requester.user), case, "photo.jpg", _jpeg_with_gps())
    assert response.status_code == 400 and "erreur de stockage" in response.json()["errors"][0]
    assert not Document.objects.exists()
    assert not list(tmp_path.glob("**/te-upload-*"))


def test_a_case_that_moves_while_its_file_is_checked_gets_no_document(cast, client_for, settings, monkeypatch):
    """The case is read again under its lock before the document is recorded: withdrawn meanwhile, it takes
    nothing, and the file already stored is removed."""
    from teleexpertise.cases import services
    from teleexpertise.documents import checks

    case = cast.case_in("taken")
    real_inspect = checks.inspect_upload

    def withdrawn_meanwhile(*args, **kwargs):
        services.case_withdraw(actor=cast.actor(cast.requester), case_id=case.pk, reason="Patient guéri")
        return real_inspect(*args, **kwargs)

    monkeypatch.setattr(checks, "inspect_upload", withdrawn_meanwhile)
    response = _upload(client_for(cast.requester.user), case, "photo.jpg", _jpeg_with_gps())
    assert response.status_code == 400
    assert "changé d'état pendant l'envoi" in response.json()["errors"][0]
    assert not Document.objects.exists() and _stored_files(settings) == []


def test_dicom_upload_is_viewable_frame_by_frame(cast, client_for):
    case = cast.case_in("taken")
    requester, expert = client_for(cast.requester.user), client_for(cast.expert.user)
    content = open(get_testdata_file("CT_small.dcm"), "rb").read()
    assert _upload(requester, case, "scanner.dcm", content, kind="imaging").status_code == 200
    document = Document.objects.get(case=case)
    assert document.category == "dicom" and document.details.get("modality") == "CT"
    page = expert.get(reverse("documents:view", args=[document.pk]))
    assert page.status_code == 200 and "CT" in page.content.decode()
    for preset in ("stored", "lung", "bone"):
        png = expert.get(reverse("documents:preview", args=[document.pk]), {"preset": preset})
        assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    series = expert.get(reverse("documents:series", args=[case.pk, document.details["series_uid"]]))
    assert series.status_code == 200
    case_page = expert.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "scanner.dcm" in case_page and "Étude DICOM" in case_page


def test_case_and_request_limits_are_enforced(case_with_photo, cast, client_for, settings):
    case, first = case_with_photo
    client = client_for(cast.requester.user)
    photo = _jpeg_with_gps()
    settings.DOCUMENT_MAX_CASE_BYTES = len(photo) + first.size - 1  # room for the request, not for both photos
    response = _upload(client, case, "photo.jpg", photo)
    assert response.status_code == 400 and "taille maximale" in response.json()["errors"][0]
    settings.DOCUMENT_MAX_CASE_BYTES = 1000  # the request itself is larger: refused before it is read
    response = _upload(client, case, "photo.jpg", _jpeg_with_gps())
    assert response.status_code == 400 and "trop volumineux" in response.json()["errors"][0]
    assert Document.objects.filter(case=case).count() == 1


def test_the_expert_attaches_to_the_report_not_to_the_request(cast, client_for):
    case = cast.case_in("accepted")
    expert = client_for(cast.expert.user)
    pdf = open(get_testdata_file("CT_small.dcm"), "rb").read()
    refused = _upload(expert, case, "ct.dcm", pdf, kind="imaging", attached_to="request")
    assert refused.status_code == 400
    accepted = _upload(expert, case, "ct.dcm", pdf, kind="imaging", attached_to="report")
    assert accepted.status_code == 200
    assert Document.objects.get(case=case).attached_to == "report"


def test_files_sent_with_a_thread_message_are_attached_to_it(cast, client_for):
    case = cast.case_in("taken")
    client = client_for(cast.requester.user)
    client.post(reverse("cases:message", args=[case.pk]), {
        "body": "Voici la photo en lumière du jour.", "attachment_kind": "photo",
        "attachments": [SimpleUploadedFile("jour.jpg", _jpeg_with_gps())]})
    document = Document.objects.get(case=case)
    assert document.attached_to == "message" and document.message.body.startswith("Voici la photo")
    page = client_for(cast.expert.user).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "jour.jpg" in page


def test_information_answer_carries_its_documents_and_a_refused_file_keeps_the_answer(cast, client_for):
    case = cast.case_in("awaiting_information")
    client = client_for(cast.requester.user)
    url = reverse("cases:action", args=[case.pk, "provide_information"])
    refused = client.post(url, {"answer": "Dermoscopie jointe.", "attachment_kind": "photo",
                                "attachments": [SimpleUploadedFile("x.jpg", b"<html><script>1</script></html>")]})
    assert refused.status_code == 400 and "Dermoscopie jointe." in refused.content.decode()
    case.refresh_from_db()
    assert case.state == "awaiting_information"
    done = client.post(url, {"answer": "Dermoscopie jointe.", "attachment_kind": "photo",
                             "attachments": [SimpleUploadedFile("dermoscopie.jpg", _jpeg_with_gps())]})
    assert done.status_code == 302
    case.refresh_from_db()
    assert case.state == "taken"
    assert Document.objects.get(case=case).attached_to == "information"


def test_a_large_upload_goes_through_djangos_temporary_file(cast, client_for, settings):
    import numpy

    pixels = numpy.random.default_rng(7).integers(0, 255, (1200, 1200, 3), dtype=numpy.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    content = buffer.getvalue()
    assert len(content) > settings.FILE_UPLOAD_MAX_MEMORY_SIZE  # Django writes it to a temporary file
    case = cast.case_in("taken")
    assert _upload(client_for(cast.requester.user), case, "grande.png", content).status_code == 200
    document = Document.objects.get(case=case)
    body = b"".join(client_for(cast.expert.user).get(reverse("documents:download", args=[document.pk]))
                    .streaming_content)
    assert Image.open(io.BytesIO(body)).size == (1200, 1200)


def test_an_infected_file_is_refused_and_audited_when_a_scanner_is_configured(cast, client_for, settings):
    import socketserver
    import threading

    from tests.documents import hostile
    from tests.documents.test_checks import FakeClamdHandler

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), FakeClamdHandler)
    server.daemon_threads, server.streams, server.silent, server.max_length = True, [], False, 10**9
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        settings.CLAMAV_ADDRESS = "{}:{}".format(*server.server_address)
        case = cast.case_in("taken")
        client = client_for(cast.requester.user)
        # The marker replaces 36 bytes of the mdat payload: the box sizes stay right, the video stays valid.
        infected = hostile.mp4_bytes().replace(b"\x00\x00\x00\x02\x09\x10" * 6, hostile.FAKE_MALWARE_MARKER + bytes(3))
        response = _upload(client, case, "video.mp4", infected, kind="video")
        assert response.status_code == 400 and "logiciel malveillant" in response.json()["errors"][0]
        assert AuditEvent.objects.filter(action="document.refused", case_id=case.pk,
                                         summary__contains="malware").exists()
        assert _upload(client, case, "video.mp4", hostile.mp4_bytes(), kind="video").status_code == 200
        assert len(server.streams) == 2
    finally:
        server.shutdown()
        server.server_close()


def test_an_expired_session_gets_a_json_error_not_the_login_page(cast, client):
    case = cast.case_in("taken")
    response = _upload(client, case, "photo.jpg", _jpeg_with_gps())
    assert response.status_code == 401 and "session a expiré" in response.json()["errors"][0]
    assert client.post(reverse("documents:upload", args=[case.pk]), {}).status_code == 302


def test_dicom_view_shows_exam_date_and_french_presets(cast, client_for):
    case = cast.case_in("taken")
    content = open(get_testdata_file("CT_small.dcm"), "rb").read()
    _upload(client_for(cast.requester.user), case, "scanner.dcm", content, kind="imaging")
    document = Document.objects.get(case=case)
    page = client_for(cast.expert.user).get(reverse("documents:view", args=[document.pk])).content.decode()
    assert "19/01/2004" in page and "Poumon" in page and "Fenêtre du fichier" in page


def _spool_files(settings):
    from teleexpertise.documents.spool import spool_directory

    return list(spool_directory().glob("*")) if spool_directory().is_dir() else []


def test_a_video_is_checked_and_stored_from_its_encrypted_spool(cast, client_for, settings):
    from tests.documents.hostile import mp4_bytes

    case = cast.case_in("taken")
    content = mp4_bytes()
    assert _upload(client_for(cast.requester.user), case, "deglutition.mp4", content, kind="video").status_code == 200
    document = Document.objects.get(case=case)
    assert document.media_type == "video/mp4" and document.size == len(content)
    assert not _spool_files(settings)  # renamed into the store
    assert b"ftyp" not in b"".join(open(path, "rb").read() for path in _stored_files(settings))
    body = b"".join(client_for(cast.expert.user).get(reverse("documents:download", args=[document.pk]))
                    .streaming_content)
    assert body == content


def test_a_refused_video_leaves_no_spool_file(cast, client_for, settings):
    from tests.documents.hostile import mp4_bytes

    case = cast.case_in("taken")
    hidden_zip = mp4_bytes() + b"PK\x05\x06" + bytes(18)  # a ZIP end record after the video: a polyglot
    response = _upload(client_for(cast.requester.user), case, "video.mp4", hidden_zip, kind="video")
    assert response.status_code == 400 and "fichier composite" in response.json()["errors"][0]
    assert not Document.objects.exists() and not _spool_files(settings) and not _stored_files(settings)


def test_an_upload_cut_off_mid_body_leaves_no_file(cast, client_for, settings):
    """The client disconnects half-way: Django's parser raises, and the spool must still go."""
    import gc

    from django.test import RequestFactory
    from django.test.client import BOUNDARY, encode_multipart

    body = encode_multipart(BOUNDARY, {"kind": "photo", "files": SimpleUploadedFile("big.jpg", os.urandom(3 << 20))})

    class CutStream(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > len(body) // 2:
                raise OSError("client disconnected")
            return super().read(size)

    request = RequestFactory().post("/", data={})
    request.META["CONTENT_LENGTH"] = str(len(body))
    request._stream = CutStream(body)
    request.upload_handlers  # noqa: B018 - built from settings, as in a real request
    with pytest.raises(OSError, match="client disconnected"):
        request.POST  # noqa: B018
    del request
    gc.collect()
    assert not _spool_files(settings) and not Document.objects.exists()


# --- The file as the whole request body (what the page's script sends) -----------------------------------------

def _raw_upload(client, case, name, content, kind="photo", attached_to="request", **extra):
    from urllib.parse import quote

    headers = {"X-File-Name": quote(name)} if name is not None else {}
    return client.post(f"{reverse('documents:upload', args=[case.pk])}?kind={kind}&attached_to={attached_to}",
                       data=content, content_type="application/octet-stream", headers=headers,
                       HTTP_ACCEPT="application/json", **extra)


def test_a_raw_body_upload_is_checked_and_stored_like_a_form_upload(cast, client_for, settings):
    case = cast.case_in("taken")
    response = _raw_upload(client_for(cast.requester.user), case, "lésion épaule.jpg", _jpeg_with_gps())
    assert response.status_code == 200, response.content
    document = Document.objects.get(case=case)
    assert response.json()["documents"][0]["id"] == str(document.pk)
    assert document.name == "lésion épaule.jpg" and document.kind == "photo" and document.attached_to == "request"
    body = b"".join(client_for(cast.expert.user).get(reverse("documents:download", args=[document.pk]))
                    .streaming_content)
    assert body.startswith(b"\xff\xd8") and b"PhoneMaker" not in body
    assert not _spool_files(settings)


def test_a_raw_body_upload_needs_the_csrf_token(cast, client_for):
    from django.test import Client

    case = cast.case_in("taken")
    client = Client(enforce_csrf_checks=True)
    client.force_login(cast.requester.user)
    session = client.session
    session["mfa_enrolled"] = True
    session.save()
    assert _raw_upload(client, case, "photo.jpg", _jpeg_with_gps()).status_code == 403
    assert not Document.objects.exists()


@pytest.mark.parametrize(("name", "kind", "expected"), [
    (None, "photo", "X-File-Name"),
    ("photo.jpg", "tableau", "Type de document"),
])
def test_a_raw_body_upload_with_bad_fields_is_refused_clearly(cast, client_for, settings, name, kind, expected):
    case = cast.case_in("taken")
    response = _raw_upload(client_for(cast.requester.user), case, name, _jpeg_with_gps(), kind=kind)
    assert response.status_code == 400 and expected in " ".join(response.json()["errors"])
    assert not Document.objects.exists() and not _spool_files(settings) and not _stored_files(settings)


def test_a_raw_body_larger_than_the_file_limit_is_refused_before_it_is_read(cast, client_for, settings):
    settings.DOCUMENT_MAX_FILE_BYTES = 1000
    case = cast.case_in("taken")
    response = _raw_upload(client_for(cast.requester.user), case, "photo.jpg", _jpeg_with_gps())
    assert response.status_code == 400 and "trop volumineux" in response.json()["errors"][0]
    assert not Document.objects.exists() and not _spool_files(settings)


def test_a_raw_body_cut_short_leaves_no_file(cast, settings):
    """The body ends before its announced length (the client went away): no record, no spool, no stored file.
    Called on the view with a real short stream, as the WSGI server hands it (the test client refuses it)."""
    from django.test import RequestFactory

    from teleexpertise.documents.views import document_upload

    case = cast.case_in("taken")
    content = _jpeg_with_gps()
    request = RequestFactory().post("/?kind=photo&attached_to=request", data=b"",
                                    content_type="application/octet-stream",
                                    headers={"X-File-Name": "photo.jpg", "Accept": "application/json"})
    request.META["CONTENT_LENGTH"] = str(len(content) * 2)
    request._stream = io.BytesIO(content)  # what LimitedStream gives: fewer bytes, then b""
    request.user = cast.requester.user
    assert document_upload(request, case.pk).status_code == 400
    assert not Document.objects.exists() and not _spool_files(settings) and not _stored_files(settings)


@pytest.mark.parametrize("at", ["start", "seam", "end"])
def test_a_video_hiding_a_rar_archive_is_refused_from_the_scan_made_while_receiving(cast, client_for, settings, at):
    """The RAR scan runs on the bytes as they arrive (not in a second pass): a signature anywhere is found,
    including one cut in two by the boundary between two encrypted chunks."""
    import struct

    from teleexpertise.documents.crypto import CHUNK_SIZE
    from tests.documents.hostile import mp4_bytes

    head = mp4_bytes()
    payload = bytearray(2 * CHUNK_SIZE)
    offset = {"start": 16, "seam": CHUNK_SIZE - len(head) - 8 - 3, "end": len(payload) - 7}[at]
    payload[offset:offset + 7] = b"Rar!\x1a\x07\x00"
    video = head + struct.pack(">I", 8 + len(payload)) + b"mdat" + bytes(payload)
    case = cast.case_in("taken")
    response = _raw_upload(client_for(cast.requester.user), case, "video.mp4", video, kind="video")
    assert response.status_code == 400 and "fichier composite" in response.json()["errors"][0]
    assert not Document.objects.exists() and not _spool_files(settings) and not _stored_files(settings)


def test_a_clean_video_of_several_chunks_goes_through(cast, client_for, settings):
    import struct

    from teleexpertise.documents.crypto import CHUNK_SIZE
    from tests.documents.hostile import mp4_bytes

    payload = b"Rar!\x1a\x07\x02" * (3 * CHUNK_SIZE // 7)  # almost a signature, everywhere: not one
    video = mp4_bytes() + struct.pack(">I", 8 + len(payload)) + b"mdat" + payload
    case = cast.case_in("taken")
    response = _raw_upload(client_for(cast.requester.user), case, "video.mp4", video, kind="video")
    assert response.status_code == 200, response.content
    assert Document.objects.get(case=case).size == len(video)
