"""Generated files for the demo cases: a lesion photo, an ECG and lab results as PDF, a CT image.

Everything is drawn here or taken from the pydicom wheel, so the demo works offline and holds no real patient's
image. The files go through the same upload service as a clinician's.
"""

import io
import math
import random

from PIL import Image, ImageDraw
from pydicom.data import get_testdata_file


def lesion_photo(seed: int) -> bytes:
    """A skin-coloured field with an irregular brown macule and a millimetre ruler, as a clinician would shoot it."""
    rng = random.Random(seed)
    image = Image.new("RGB", (1200, 900), (224, 182, 156))
    draw = ImageDraw.Draw(image)
    centre, points = (600, 430), []
    for step in range(48):
        angle = 2 * math.pi * step / 48
        radius = 150 + rng.randint(-35, 35)
        points.append((centre[0] + radius * math.cos(angle), centre[1] + 0.8 * radius * math.sin(angle)))
    draw.polygon(points, fill=(118, 72, 48))
    draw.ellipse((560, 400, 640, 470), fill=(78, 46, 32))
    draw.rectangle((200, 760, 1000, 800), fill=(250, 250, 250))
    for mm in range(0, 81):
        x = 200 + mm * 10
        draw.line((x, 760, x, 770 if mm % 10 else 785), fill=(0, 0, 0), width=2)
    return _save(image, "JPEG")


def ecg_pdf() -> bytes:
    """One page with a 12-second rhythm strip on ECG paper."""
    image = Image.new("RGB", (2480, 1000), (255, 245, 245))
    draw = ImageDraw.Draw(image)
    for x in range(0, 2480, 20):
        draw.line((x, 0, x, 1000), fill=(245, 190, 190) if x % 100 else (230, 140, 140))
    for y in range(0, 1000, 20):
        draw.line((0, y, 2480, y), fill=(245, 190, 190) if y % 100 else (230, 140, 140))
    baseline, trace = 500, []
    for x in range(2480):
        phase = (x % 200) / 200
        y = baseline - (260 * math.exp(-((phase - 0.3) ** 2) / 0.0004) - 40 * math.exp(-((phase - 0.6) ** 2) / 0.004))
        trace.append((x, y))
    draw.line(trace, fill=(20, 20, 20), width=4)
    draw.text((40, 30), "DII - 25 mm/s - 10 mm/mV", fill=(0, 0, 0))
    return _save(image, "PDF", resolution=200)


def lab_results_pdf(lines: list[str]) -> bytes:
    image = Image.new("RGB", (1654, 2339), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    draw.text((120, 120), "Laboratoire de biologie médicale - compte-rendu de résultats", fill=(0, 0, 0))
    for row, line in enumerate(lines):
        draw.text((120, 220 + 50 * row), line, fill=(0, 0, 0))
    return _save(image, "PDF", resolution=200)


def ct_image() -> bytes:
    with open(get_testdata_file("CT_small.dcm", download=False), "rb") as handle:
        return handle.read()


def _save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


FILES = {
    "lesion": lambda seed: ("photo-lesion.jpg", "photo", lesion_photo(seed)),
    "nail": lambda seed: ("photo-ongle.jpg", "photo", lesion_photo(seed + 1)),
    "scalp": lambda seed: ("photo-cuir-chevelu.jpg", "photo", lesion_photo(seed + 2)),
    "ecg": lambda seed: ("ecg-repos.pdf", "ecg", ecg_pdf()),
    "nfs": lambda seed: ("nfs.pdf", "lab", lab_results_pdf([
        "Leucocytes : 27,4 G/L (4,0 - 10,0)", "Lymphocytes : 21,0 G/L (1,0 - 4,0)",
        "Hémoglobine : 13,2 g/dL (12,0 - 16,0)", "Plaquettes : 245 G/L (150 - 400)"])),
    "ct": lambda seed: ("scanner-thorax.dcm", "imaging", ct_image()),
}
