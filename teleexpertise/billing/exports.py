"""A month of acts as the billing software needs them ("SESAM sans Vitale" claim): CSV for spreadsheets, JSON.

CSV: UTF-8 with a byte-order mark and ";" separators with decimal commas, which is what French Excel and
LibreOffice open without an import dialog; the last row holds the totals.
"""

import csv
import io
from decimal import Decimal

from django.utils.translation import gettext as _

from teleexpertise.billing.checks import check_texts

FORMAT = "teleexpertise-sesam-sans-vitale/1"


def _euros(value: Decimal) -> str:
    return f"{value:.2f}".replace(".", ",")


def header() -> list[str]:
    return [_("Demande"), _("Date de l'acte"), _("Acte"), _("Montant (EUR)"), _("Facturable"), _("Statut"),
            _("Motif du rejet"), _("Professionnel"), _("Profession (TRE_G15)"), _("RPPS"), _("ADELI"),
            _("NIR du patient"), _("Nom de naissance"), _("Prénoms"), _("Date de naissance"), _("Sexe"),
            _("Tiers payant"), _("Prise en charge AMO (%)"), _("Contrôles")]


def _row(r) -> list[str]:
    return [r.case.reference, r.act_date.isoformat(), r.act_code, _euros(r.amount),
            _("oui") if r.billable else _("non"), r.get_status_display(), r.rejection_reason, r.professional_name,
            r.profession_code, r.rpps, r.adeli, r.patient_nir, r.patient_birth_name, r.patient_first_names,
            r.patient_birth_date.isoformat(), r.patient_sex, _("oui") if r.third_party_payment else _("non"),
            str(r.coverage_percent), " | ".join(text for level, text in check_texts(r.checks) if level != "info")]


def records_csv(records) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(header())
    total, count = Decimal("0"), 0
    for record in records:
        writer.writerow(_row(record))
        total += record.amount
        count += 1
    writer.writerow([_("Total"), "", str(count), _euros(total)] + [""] * (len(header()) - 4))
    return out.getvalue().encode("utf-8-sig")


def records_json(records, *, month: str) -> dict:
    """What a claim needs, for the billable acts (a not-billable act is not claimed)."""
    claims = [_claim(r) for r in records if r.billable]
    return {"format": FORMAT, "month": month, "currency": "EUR", "claims": claims,
            "totals": {"count": len(claims), "amount": str(sum((Decimal(c["amount"]) for c in claims),
                                                                Decimal("0.00")))}}


def _claim(r) -> dict:
    return {
        "id": str(r.id), "case_reference": r.case.reference, "act_code": r.act_code,
        "act_date": r.act_date.isoformat(), "amount": str(r.amount), "billing_mode": "sesam_sans_vitale",
        "status": r.status, "rejection_reason": r.rejection_reason,
        "third_party_payment": r.third_party_payment, "coverage_percent": r.coverage_percent,
        "cumulable": r.cumulable, "excess_fee_allowed": r.excess_fee_allowed,
        "professional": {"name": r.professional_name, "profession_code": r.profession_code, "rpps": r.rpps,
                         "adeli": r.adeli, "role": r.role},
        "patient": {"nir": r.patient_nir, "birth_date": r.patient_birth_date.isoformat(),
                    "birth_name": r.patient_birth_name, "first_names": r.patient_first_names, "sex": r.patient_sex},
        "warnings": [text for level, text in check_texts(r.checks) if level == "warning"],
    }
