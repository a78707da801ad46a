"""Checks of the national identifiers of professionals and establishments (Luhn check digits)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum import luhn

from teleexpertise.core.digits import ascii_digits


def _digits_with_luhn(value: str, length: int, label: str) -> str:
    value = (value or "").strip().replace(" ", "")
    if len(value) != length or not ascii_digits(value):
        raise ValidationError(_("%(label)s : %(length)s chiffres attendus."), params={"label": label, "length": length},
                              code="length")
    if not luhn.is_valid(value):
        raise ValidationError(_("%(label)s : la clé de contrôle est fausse (vérifiez la saisie)."),
                              params={"label": label}, code="checksum")
    return value


def validate_rpps(value: str) -> None:
    _digits_with_luhn(value, 11, "RPPS")


def validate_adeli(value: str) -> None:
    _digits_with_luhn(value, 9, "ADELI")


def validate_finess(value: str) -> None:
    """FINESS is 9 characters; Corsican numbers start with 2A/2B, whose letters are left out of the check."""
    value = (value or "").strip().upper()
    if len(value) != 9:
        raise ValidationError(_("FINESS : 9 caractères attendus."), code="length")
    digits = value.replace("2A", "20", 1).replace("2B", "20", 1) if value[:2] in ("2A", "2B") else value
    if not ascii_digits(digits) or not luhn.is_valid(digits):
        raise ValidationError(_("FINESS : la clé de contrôle est fausse (vérifiez la saisie)."), code="checksum")


def national_id(*, rpps: str = "", adeli: str = "") -> str:
    """The idNatPs used in national exchanges: '8' + RPPS, or '0' + ADELI."""
    return f"8{rpps}" if rpps else (f"0{adeli}" if adeli else "")
