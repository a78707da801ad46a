"""The rules in force when the platform was installed (DOMAIN.md, "Billing rules in force"), and their lookups.

The data migration loads RULES; test databases flushed by transactional tests reload them with load_rules().
Values change with conventions: an administrator edits them in the admin, never here.
"""

from datetime import date
from decimal import Decimal

# 1 April 2022 (amendment 9 to the medical convention): one level of tele-expertise.
AVENANT_9 = date(2022, 4, 1)
_SRC_TE2 = "Avenant 9 (2022) ; convention médicale 2024 : TE2 à 23 EUR au 1er janvier 2026"
_SRC_RQD = "Assurance Maladie (ameli) : requérants médecins, sages-femmes, infirmiers (dont IPA), orthophonistes, " \
           "masseurs-kinésithérapeutes, pédicures-podologues"
# TRE_G15: doctor, midwife, nurse, psychiatric nurse, physiotherapist, podiatrist, speech therapist.
# Advanced-practice nurses are nurses (code 60) with the IPA flag: the nurse row covers them.
RQD_PROFESSIONS = ("10", "50", "60", "69", "70", "80", "91")

TARIFFS = [
    # (act, profession, amount, valid_from, valid_to, source)
    ("TE2", "10", "20.00", AVENANT_9, date(2025, 12, 31), _SRC_TE2),
    ("TE2", "10", "23.00", date(2026, 1, 1), None, _SRC_TE2),
    ("TE2", "50", "20.00", AVENANT_9, None, "Avenant 9 (2022) ; sages-femmes : TE2 à 20 EUR"),
    *[("RQD", code, "10.00", AVENANT_9, None, _SRC_RQD) for code in RQD_PROFESSIONS],
]
PARAMETERS = [
    # (key, value, valid_from, source)
    ("per_patient_yearly_limit", "4", AVENANT_9,
     "4 actes par an, par patient et par professionnel (requis comme requérant) ; avertissement seulement"),
    ("remote_activity_cap_percent", "20", AVENANT_9, "Convention médicale : 20 % de l'activité annuelle"),
    ("remote_cap_counts_teleexpertise", "0", date(2024, 6, 4),
     "Convention médicale 2024 : le plafond compte les téléconsultations, pas la téléexpertise"),
]


def load_rules(apps=None) -> None:
    """Create the rules of the tables above that do not exist yet (idempotent; apps: the migration's registry)."""
    if apps is None:
        from django.apps import apps
    tariff = apps.get_model("billing", "Tariff")
    parameter = apps.get_model("billing", "Parameter")
    for act, profession, amount, start, end, source in TARIFFS:
        tariff.objects.get_or_create(act_code=act, profession_id=profession, valid_from=start, defaults={
            "amount": Decimal(amount), "valid_to": end, "source": source})
    for key, value, start, source in PARAMETERS:
        parameter.objects.get_or_create(key=key, valid_from=start, defaults={"value": Decimal(value),
                                                                            "source": source})


def tariff_in_force(act_code: str, profession_code: str, on: date):
    from teleexpertise.billing.models import Tariff

    return Tariff.in_force(on).filter(act_code=act_code, profession_id=profession_code).order_by(
        "-valid_from").first()


def parameter_in_force(key: str, on: date):
    from teleexpertise.billing.models import Parameter

    return Parameter.in_force(on).filter(key=key).order_by("-valid_from").first()
