"""The INS: a NIR of 15 characters (Corsica as 2A/2B) whose last two digits are 97 - (first 13 mod 97)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.exceptions import InvalidChecksum
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import nir


def normalise_nir(value: str) -> str:
    """The compact NIR, or a ValidationError that says what is wrong."""
    compact = nir.compact(value or "").upper()
    if len(compact) != 15:
        raise ValidationError(_("Le matricule INS (NIR) doit compter 15 caractères, clé comprise."), code="length")
    try:
        return nir.validate(compact)
    except InvalidChecksum as exc:
        raise ValidationError(
            _("La clé du matricule INS (NIR) ne correspond pas : vérifiez chaque chiffre."), code="checksum"
        ) from exc
    except StdnumError as exc:
        raise ValidationError(_("Le matricule INS (NIR) n'est pas valide."), code="invalid") from exc


def format_nir(value: str) -> str:
    return nir.format(value) if value else ""
