"""Load the TRE_G15 professions and TRE_R38 doctor specialties (ANS value set JDV_J01, 2024-12-13)."""

import json
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data"
EXPERT_PROFESSIONS = {"10", "50"}  # doctors and midwives: the only professions that may give an opinion


def load(apps, schema_editor):
    Profession = apps.get_model("directory", "Profession")
    Specialty = apps.get_model("directory", "Specialty")
    professions = json.loads((DATA / "tre_g15_professions.json").read_text(encoding="utf-8"))["concepts"]
    for item in professions:
        Profession.objects.update_or_create(code=item["code"], defaults={
            "label": item["label"], "may_be_expert": item["code"] in EXPERT_PROFESSIONS})
    specialties = json.loads((DATA / "tre_r38_specialties.json").read_text(encoding="utf-8"))["concepts"]
    for item in specialties:
        Specialty.objects.update_or_create(code=item["code"], defaults={"label": item["label"]})


def unload(apps, schema_editor):
    apps.get_model("directory", "Specialty").objects.all().delete()
    apps.get_model("directory", "Profession").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("directory", "0001_initial")]
    operations = [migrations.RunPython(load, unload)]
