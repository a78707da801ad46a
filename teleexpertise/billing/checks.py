"""The explanations written on a billing record: stored as codes and values, rendered in the reader's language."""

from django.utils.translation import gettext as _
from django.utils.translation import ngettext

ERROR, WARNING, INFO = "error", "warning", "info"


def check(code: str, level: str, **params) -> dict:
    return {"code": code, "level": level, "params": params}


def check_text(item: dict) -> str:
    p = item.get("params", {})
    code = item["code"]
    if code == "same_practice":
        return _("Requérant et requis exercent dans le même cabinet de groupe (%(organisation)s) sur le même site : "
                 "la téléexpertise entre eux n'est pas facturable.") % p
    if code == "yearly_limit":
        return ngettext(
            "%(count)s acte %(act)s déjà enregistré en %(year)s pour ce patient et ce professionnel : la limite de "
            "%(limit)s actes par an est atteinte. Avertissement seulement : l'acte reste à facturer, la caisse "
            "peut le refuser.",
            "%(count)s actes %(act)s déjà enregistrés en %(year)s pour ce patient et ce professionnel : la limite "
            "de %(limit)s actes par an est atteinte. Avertissement seulement : l'acte reste à facturer, la caisse "
            "peut le refuser.", p["count"]) % p
    if code == "not_cumulable":
        return _("Non cumulable avec un autre acte ni avec une majoration : rien d'autre sur la même feuille de "
                 "soins.")
    if code == "no_excess_fee":
        return _("Aucun dépassement d'honoraires possible.")
    if code == "full_coverage":
        return _("Pris en charge à %(percent)s %% par l'Assurance Maladie obligatoire.") % p
    if code == "third_party_payment":
        return _("Tiers payant : rien n'est demandé au patient.")
    if code == "sesam_without_vitale":
        return _("Feuille de soins électronique en mode SESAM sans Vitale (ou en mode dégradé), sans feuille "
                 "papier.")
    return code


def check_texts(checks: list[dict]) -> list[tuple[str, str]]:
    """[(level, text)] in the order stored."""
    return [(item["level"], check_text(item)) for item in checks]
