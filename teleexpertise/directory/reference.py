"""The national code lists shipped with the platform (TRE_G15 professions, TRE_R38 specialties).

The data migration loads them at install; this loader serves the same files to commands and to test
databases that were flushed (transactional tests)."""

import json
from pathlib import Path

from teleexpertise.directory.models import Profession, Specialty

DATA = Path(__file__).resolve().parent / "data"
EXPERT_PROFESSIONS = {"10", "50"}  # doctors and midwives: the only professions that may give an opinion


def load_reference_codes(profession_model=Profession, specialty_model=Specialty) -> None:
    load_professions(profession_model)
    for item in json.loads((DATA / "tre_r38_specialties.json").read_text(encoding="utf-8"))["concepts"]:
        specialty_model.objects.update_or_create(code=item["code"], defaults={"label": item["label"]})


def load_professions(profession_model=Profession) -> None:
    """TRE_G15, and the usage titles (osteopath, psychologist...) the national directory extract lists too."""
    for name in ("tre_g15_professions.json", "usage_title_professions.json"):
        for item in json.loads((DATA / name).read_text(encoding="utf-8"))["concepts"]:
            profession_model.objects.update_or_create(code=item["code"], defaults={
                "label": item["label"], "may_be_expert": item["code"] in EXPERT_PROFESSIONS})


