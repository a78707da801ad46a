"""Load the shipped structured request forms (FHIR Questionnaire JSON under cases/data/request_forms/).

Each form is bound to its specialty (read from the Questionnaire's TRE_R38 code), not to a network: an
administrator attaches it to networks in the admin (the demo seeder does so for its networks).
"""

import json
from pathlib import Path

from django.db import migrations

DATA = Path(__file__).resolve().parent.parent / "data" / "request_forms"


def shipped():
    for path in sorted(DATA.glob("*.json")):
        yield json.loads(path.read_text(encoding="utf-8"))


def load(apps, schema_editor):
    RequestForm = apps.get_model("cases", "RequestForm")
    for questionnaire in shipped():
        RequestForm.objects.update_or_create(
            questionnaire__url=questionnaire["url"],
            defaults={"title": questionnaire["title"], "questionnaire": questionnaire,
                      "specialty_id": questionnaire["code"][0]["code"]})


def unload(apps, schema_editor):
    RequestForm = apps.get_model("cases", "RequestForm")
    urls = [q["url"] for q in shipped()]
    # Forms already answered by cases stay (the answers refer to them); the others go.
    RequestForm.objects.filter(questionnaire__url__in=urls, cases__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [("cases", "0003_request_forms"), ("directory", "0002_load_professions_and_specialties"),
                    ("documents", "0002_document_kind_audiogram")]

    operations = [migrations.RunPython(load, unload)]
