"""Documents in headless Chromium, as people add and read them.

The requester chooses a kind and sends a photo (with GPS in its EXIF) and a CT slice at once: one progress bar per
file, each reaching its end with « ✓ », then the page reloads and the table lists both files with kind, author and
size. A second photo is dropped on the drop zone, a second slice of the same CT series is added, and a web page
renamed .jpg is refused in French without adding a row. The expert signs in, opens the photo and the DICOM viewer
(window presets change the rendered image), then the series viewer, whose slider moves from slice to slice.
"""

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.template.defaultfilters import filesizeformat
from django.utils import translation
from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from teleexpertise.documents.models import Document
from tests.browser.test_journey import open_case_from_inbox, sign_in
from tests.factories import Cast

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
DESKTOP = {"width": 1280, "height": 900}
PHOTO, SLICE_1, SLICE_2, DROPPED, HOSTILE = (
    "lesion-dos.jpg", "scanner-coupe-1.dcm", "scanner-coupe-2.dcm", "dermoscopie.jpg", "resultats-biologie.jpg")

# Records every state of the progress list into sessionStorage, which survives the reload upload.js does when all
# files are in: what the list showed just before the reload can be checked after it. Nothing is slowed down.
WATCH_PROGRESS = """() => {
  const list = document.querySelector("[data-progress]");
  sessionStorage.setItem("upload-log", "[]");
  const snapshot = () => Array.from(list.children).map(li => ({
    text: li.textContent, cls: li.className,
    bars: Array.from(li.querySelectorAll("progress")).map(bar => ({value: bar.value, max: bar.max}))}));
  new MutationObserver(() => {
    const log = JSON.parse(sessionStorage.getItem("upload-log"));
    log.push(snapshot());
    sessionStorage.setItem("upload-log", JSON.stringify(log));
  }).observe(list, {childList: true, subtree: true, attributes: true, characterData: true});
}"""

# Arms a promise on an <img> that settles with the next image it loads (or fails with its URL on an error).
ARM_IMAGE = """img => { img.__next = new Promise((resolve, reject) => {
  img.addEventListener("load", () => resolve(img.src), {once: true});
  img.addEventListener("error", () => reject(new Error("image failed to load: " + img.src)), {once: true});
}); }"""

# What is on screen: the image's size and mean grey level, read back from a canvas (same origin, not tainted).
PIXELS = """img => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
  const g = canvas.getContext("2d"); g.drawImage(img, 0, 0);
  const data = g.getImageData(0, 0, canvas.width, canvas.height).data;
  let sum = 0, hash = 0;
  for (let i = 0; i < data.length; i += 4) { sum += data[i]; hash = (hash * 31 + data[i]) >>> 0; }
  return {src: img.getAttribute("src"), complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
          mean: data.length ? sum / (data.length / 4) : 0, hash: hash};
}"""

DROP_FILE = """([name, type, payload]) => {
  const bytes = Uint8Array.from(atob(payload), c => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, {type: type}));
  return transfer;
}"""


@pytest.fixture(autouse=True)
def _documents_in_tmp(settings, tmp_path):
    """Encrypted documents go under tmp_path, never into the project's var/ (the live server shares settings)."""
    settings.DOCUMENT_ROOT = tmp_path / "documents"
    settings.DOCUMENT_STORAGE = "local"


# --- Files as a phone, a PACS export and an attacker make them -------------------------------------------------

def jpeg_with_gps(colour=(200, 120, 90), spot=(90, 50, 40)) -> bytes:
    image = Image.new("RGB", (640, 480), colour)
    ImageDraw.Draw(image).ellipse((250, 170, 390, 300), fill=spot)  # the lesion
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0110] = "Model X"  # Model
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}  # GPSInfo: Paris
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def second_slice(first: Path, target: Path) -> None:
    """Another image of the same CT series: new instance, next position, different pixels (mirrored)."""
    ds = pydicom.dcmread(first)
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = 2
    ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(ds.ImagePositionPatient[2]) + 5]
    ds.PixelData = np.ascontiguousarray(np.fliplr(ds.pixel_array)).tobytes()
    ds.save_as(target)


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "to-upload"
    folder.mkdir()
    ct = Path(get_testdata_file("CT_small.dcm", download=False))
    made = {name: folder / name for name in (PHOTO, SLICE_1, SLICE_2, DROPPED, HOSTILE)}
    made[PHOTO].write_bytes(jpeg_with_gps())
    shutil.copyfile(ct, made[SLICE_1])
    second_slice(ct, made[SLICE_2])
    made[DROPPED].write_bytes(jpeg_with_gps((230, 190, 170), (60, 30, 20)))
    made[HOSTILE].write_text("<!doctype html><html><body><script>fetch('/accounts/email/')</script></body></html>")
    return made


# --- Steps ---------------------------------------------------------------------------------------------------

def documents_section(page):
    return page.get_by_role("region", name="Documents", exact=True)


def document_rows(page):
    return documents_section(page).locator("tbody tr")


def choose_kind(page, label):
    page.get_by_label("Type de document").select_option(label=label)


def progress_items(page):
    return page.locator("[data-progress] > li")


def progress_log(page) -> list[list[dict]]:
    log = page.evaluate("() => JSON.parse(sessionStorage.getItem('upload-log') || '[]')")
    page.evaluate("() => sessionStorage.removeItem('upload-log')")
    return log


def assert_uploaded_before_reload(log, names):
    """Each file had its own <progress> from its first appearance, and the last state before the reload shows every
    bar at its maximum with the « ✓ » of a stored file."""
    assert log, "the progress list never changed: no <progress> was rendered"
    for name in names:
        states = [item for snapshot in log for item in snapshot if item["text"].startswith(name)]
        assert states, f"no progress item for {name}: {log}"
        assert all(len(item["bars"]) == 1 for item in states), f"{name}: not one <progress> per file: {states}"
    final = log[-1]
    assert [item["text"].split(" ")[0] for item in final] == list(names), final
    for item in final:
        assert item["cls"] == "upload-done" and item["text"].endswith("✓"), item
        assert item["bars"] == [{"value": 100, "max": 100}], item


def expect_document_row(page, name, *, kind, author):
    document = Document.objects.get(name=name)
    with translation.override("fr"):
        size = filesizeformat(document.size)
    row = document_rows(page).filter(has=page.get_by_role("link", name=name, exact=True))
    expect(row).to_have_count(1)
    cells = row.get_by_role("cell")
    expect(cells.nth(1)).to_have_text(kind)
    expect(cells.nth(2)).to_have_text(author)
    expect(cells.nth(4)).to_have_text(size.replace("\xa0", " "))
    assert re.fullmatch(r"\d+(,\d)? (octets|Kio|Mio|Ko|Mo)", size.replace("\xa0", " ")), size
    return document


def wait_image(page, img):
    """The image currently in the <img> has loaded and has pixels."""
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=img.element_handle())
    return img.evaluate(PIXELS)


def click_and_reload_image(page, img, control, *, key=None):
    """Clicks a control (or presses a key on it) that changes the image's URL; returns the new image once loaded."""
    before = img.evaluate(PIXELS)
    img.evaluate(ARM_IMAGE)
    with page.expect_response(lambda r: "/preview" in r.url and r.request.resource_type == "image") as answer:
        if key:
            control.press(key)
        else:
            control.click()
    response = answer.value
    assert response.ok and response.headers["content-type"] == "image/png", (response.status, response.url)
    loaded_src = img.evaluate("img => img.__next")
    after = wait_image(page, img)
    assert after["src"] != before["src"] and loaded_src.endswith(after["src"]), (before, after)
    return before, after


def tag_value(page, label):
    return page.locator("dl.facts dt", has_text=label).locator("xpath=following-sibling::dd[1]")


def screenshot(page, name):
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


# --- The test ------------------------------------------------------------------------------------------------

def test_documents_uploaded_and_viewed_through_the_ui(new_page, totp, files, settings):
    cast = Cast()
    case = cast.case_in("taken")
    secrets = {who: generate_totp_secret() for who in ("requester", "expert")}
    for who, secret in secrets.items():
        TOTP.activate(getattr(cast, who).user, secret)  # both enrolled their authenticator app earlier
    requester_name = cast.requester.display_name
    requester = new_page("requester", viewport=DESKTOP)
    expert = new_page("expert", viewport=DESKTOP)

    # The requester opens the case and sends a photo and a CT slice at once, as « Imagerie ».
    sign_in(requester, cast.requester.user.email, secrets["requester"], totp)
    open_case_from_inbox(requester, "Mes demandes", case.reference)
    case_url = requester.url
    expect(documents_section(requester)).to_contain_text("Aucun document.")
    choose_kind(requester, "Imagerie")
    requester.get_by_label("Fichiers (photos, PDF, DICOM, vidéos)").set_input_files([files[PHOTO], files[SLICE_1]])

    # The second file's answer is held back: meanwhile the first shows « ✓ », the second its bar in flight.
    upload_url = re.compile(rf"/cases/{case.pk}/documents/(\?.*)?$")  # the file is the body; its fields in the query
    held, seen = [], []

    def hold_second(route, request):
        seen.append(request)
        if len(seen) == 2:
            held.append(route)  # answered below
        else:
            route.continue_()

    requester.route(upload_url, hold_second)
    requester.evaluate(WATCH_PROGRESS)
    requester.get_by_role("button", name="Envoyer les documents").click()
    items = progress_items(requester)
    expect(items).to_have_count(2)
    expect(items.nth(0)).to_have_class("upload-done")
    expect(items.nth(0)).to_have_text(re.compile(rf"^{re.escape(PHOTO)}\s+✓$"))
    expect(items.nth(0).locator("progress")).to_have_js_property("value", 100)
    expect(items.nth(0).locator("progress")).to_have_js_property("max", 100)
    expect(items.nth(1)).to_contain_text(SLICE_1)
    expect(items.nth(1).locator("progress")).to_be_visible()
    expect(items.nth(1)).not_to_have_class(re.compile("upload-(done|error)"))
    for _ in range(100):
        if held:
            break
        requester.wait_for_timeout(50)
    assert len(held) == 1, "the second file's upload never left the browser"
    with requester.expect_navigation(url=case_url):  # upload.js reloads the page once every file is in
        held[0].continue_()
    requester.unroute(upload_url)
    assert_uploaded_before_reload(progress_log(requester), [PHOTO, SLICE_1])
    assert [r.headers.get("accept") for r in seen] == ["application/json"] * 2, "one request per file, as JSON"
    assert [r.headers.get("content-type") for r in seen] == ["application/octet-stream"] * 2, "the file is the body"

    expect(document_rows(requester)).to_have_count(2)
    photo = expect_document_row(requester, PHOTO, kind="Imagerie", author=requester_name)
    dicom = expect_document_row(requester, SLICE_1, kind="Imagerie", author=requester_name)
    assert (photo.category, dicom.category) == ("photo", "dicom")
    thumbnail = document_rows(requester).filter(has_text=PHOTO).locator("img.thumb")
    thumbnail.scroll_into_view_if_needed()
    assert wait_image(requester, thumbnail)["width"] > 0
    expect(documents_section(requester).locator("p", has_text="Étude DICOM").get_by_role("link")).to_have_text(
        re.compile(r"CT .*\(1\)"))

    # A second photo, dropped on the drop zone (a synthetic drop carrying a File built in the page).
    choose_kind(requester, "Photo")
    zone = requester.locator("[data-dropzone]")
    transfer = requester.evaluate_handle(
        DROP_FILE, [DROPPED, "image/jpeg", base64.b64encode(files[DROPPED].read_bytes()).decode()])
    zone.dispatch_event("dragenter", {"dataTransfer": transfer})
    zone.dispatch_event("dragover", {"dataTransfer": transfer})
    expect(zone).to_have_class(re.compile(r"\bdragging\b"))
    requester.evaluate(WATCH_PROGRESS)
    with requester.expect_navigation(url=case_url):
        zone.dispatch_event("drop", {"dataTransfer": transfer})
    assert_uploaded_before_reload(progress_log(requester), [DROPPED])
    expect(document_rows(requester)).to_have_count(3)
    expect_document_row(requester, DROPPED, kind="Photo", author=requester_name)
    expect(requester.locator("[data-dropzone]")).not_to_have_class(re.compile(r"\bdragging\b"))

    # The next slice of the same CT series, through the file input again.
    choose_kind(requester, "Imagerie")
    requester.get_by_label("Fichiers (photos, PDF, DICOM, vidéos)").set_input_files(files[SLICE_2])
    requester.evaluate(WATCH_PROGRESS)
    with requester.expect_navigation(url=case_url):
        requester.get_by_role("button", name="Envoyer les documents").click()
    assert_uploaded_before_reload(progress_log(requester), [SLICE_2])
    expect(document_rows(requester)).to_have_count(4)
    expect_document_row(requester, SLICE_2, kind="Imagerie", author=requester_name)
    expect(documents_section(requester).locator("p", has_text="Étude DICOM").get_by_role("link")).to_have_text(
        re.compile(r"CT .*\(2\)"))

    # A web page renamed .jpg: refused in French in the progress list, no reload, no new row.
    choose_kind(requester, "Résultats de biologie")
    requester.get_by_label("Fichiers (photos, PDF, DICOM, vidéos)").set_input_files(files[HOSTILE])
    requester.evaluate("() => { window.__samePage = true; }")
    with requester.expect_response(upload_url) as answer:
        requester.get_by_role("button", name="Envoyer les documents").click()
    assert answer.value.status == 400
    refused = progress_items(requester).filter(has_text=HOSTILE)
    expect(refused).to_have_class("upload-error")
    expect(refused).to_contain_text("Formats acceptés")
    expect(refused.locator("progress")).to_have_count(0)  # a refused file shows its reason, not a full bar
    requester.wait_for_timeout(300)  # a reload would be scheduled right after the answer: give it the chance
    assert requester.evaluate("() => window.__samePage === true"), "the page reloaded after a refused file"
    expect(document_rows(requester)).to_have_count(4)
    assert Document.objects.filter(case=case).count() == 4
    assert not Document.objects.filter(name=HOSTILE).exists()
    screenshot(requester, "documents-case.png")
    requester.reload()
    expect(document_rows(requester)).to_have_count(4)
    expect(document_rows(requester).filter(has_text=HOSTILE)).to_have_count(0)

    # Stored encrypted under the temporary DOCUMENT_ROOT: no EXIF, no GPS, no plain JPEG on disk.
    stored = [p for p in Path(settings.DOCUMENT_ROOT).rglob("*") if p.is_file()]
    assert len(stored) >= 4, stored
    assert not any(b"PhoneMaker" in p.read_bytes() or b"Exif" in p.read_bytes() for p in stored)

    # The expert signs in, opens the case and the photo.
    sign_in(expert, cast.expert.user.email, secrets["expert"], totp)
    open_case_from_inbox(expert, "À traiter", case.reference)
    expect(document_rows(expert)).to_have_count(4)
    expert.get_by_role("link", name=PHOTO, exact=True).click()
    expect(expert.get_by_role("heading", name=PHOTO, level=1)).to_be_visible()
    shown = wait_image(expert, expert.locator("img.viewer"))
    assert (shown["width"], shown["height"]) == (640, 480), shown
    download = expert.context.request.get(f"/documents/{photo.pk}/file")
    assert download.ok and b"PhoneMaker" not in download.body()
    assert Image.open(io.BytesIO(download.body())).getexif().get(0x8825) is None, "GPS left in the photo"
    expert.get_by_role("link", name=re.compile("Retour à la demande")).click()
    expert.wait_for_url(re.compile(re.escape(case_url) + "(#documents)?$"))

    # The DICOM viewer: the key tags, the image, the lung and bone windows.
    expert.get_by_role("link", name=SLICE_1, exact=True).click()
    expect(expert.get_by_role("heading", name=SLICE_1, level=1)).to_be_visible()
    expect(tag_value(expert, "Modalité")).to_have_text("CT")
    image = expert.locator("img.viewer.dicom")
    stored_window = wait_image(expert, image)
    assert stored_window["width"] == stored_window["height"] == 128, stored_window
    presets = expert.get_by_role("group", name="Fenêtrage")
    button = {name: presets.locator(f"[data-preset={name}]") for name in ("stored", "lung", "bone")}
    expect(button["stored"]).to_have_attribute("aria-pressed", "true")

    _, lung = click_and_reload_image(expert, image, button["lung"])
    assert "preset=lung" in lung["src"] and lung["width"] == 128, lung
    expect(button["lung"]).to_have_attribute("aria-pressed", "true")
    expect(button["stored"]).to_have_attribute("aria-pressed", "false")
    assert lung["hash"] != stored_window["hash"], "the lung window did not change the image"

    _, bone = click_and_reload_image(expert, image, button["bone"])
    assert "preset=bone" in bone["src"] and bone["width"] == 128, bone
    expect(button["bone"]).to_have_attribute("aria-pressed", "true")
    expect(button["lung"]).to_have_attribute("aria-pressed", "false")
    assert bone["hash"] != lung["hash"], "the bone window did not change the image"
    # Soft tissue is near white in a lung window (-600/1500 HU) and grey in a bone window (400/1800 HU).
    assert lung["mean"] > bone["mean"] + 20, (lung["mean"], bone["mean"])
    expect(expert.locator("[data-preset][aria-pressed=true]")).to_have_count(1)
    screenshot(expert, "dicom-viewer.png")

    # The series viewer, from the case page's « Étude DICOM » link: two slices, one slider.
    expert.get_by_role("link", name=re.compile("Retour à la demande")).click()
    study = documents_section(expert).locator("p", has_text="Étude DICOM")
    study.get_by_role("link").click()
    expert.wait_for_url(re.compile(r"/cases/[0-9a-f-]{36}/dicom/[0-9.]+/$"))
    expect(expert.get_by_role("heading", name=re.compile("Série DICOM"), level=1)).to_be_visible()
    expect(tag_value(expert, "Modalité")).to_have_text("CT")
    slider = expert.get_by_role("slider")
    expect(slider).to_have_attribute("max", "1")
    expect(expert.locator("[data-frame-label]")).to_have_text("1")
    image = expert.locator("img.viewer.dicom")
    first = wait_image(expert, image)
    assert first["width"] == 128, first
    _, second = click_and_reload_image(expert, image, slider, key="ArrowRight")
    expect(slider).to_have_value("1")
    expect(expert.locator("[data-frame-label]")).to_have_text("2")
    second_doc = Document.objects.get(name=SLICE_2)
    assert f"/documents/{second_doc.pk}/preview?frame=0" in second["src"], second
    assert second["hash"] != first["hash"], "the slider did not change the image"
    _, windowed = click_and_reload_image(
        expert, image, expert.get_by_role("group", name="Fenêtrage").locator("[data-preset=bone]"))
    assert f"/documents/{second_doc.pk}/" in windowed["src"] and "preset=bone" in windowed["src"], windowed
    _, back = click_and_reload_image(expert, image, slider, key="ArrowLeft")
    expect(expert.locator("[data-frame-label]")).to_have_text("1")
    assert f"/documents/{dicom.pk}/" in back["src"] and "preset=bone" in back["src"], back
    assert back["hash"] == bone["hash"], "the first slice in the bone window differs from the viewer's"
