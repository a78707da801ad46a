"""The billing rules in force at installation (DOMAIN.md); later changes are made in the admin, as new dated rows."""

from django.db import migrations


def load(apps, schema_editor):
    from teleexpertise.billing.rules import load_rules

    load_rules(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0001_initial"),
        ("directory", "0002_load_professions_and_specialties"),
    ]

    operations = [migrations.RunPython(load, migrations.RunPython.noop)]
