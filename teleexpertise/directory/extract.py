"""Reading the national directory extract ("Extraction ProSanteConnect Personne activité", RPPS/ADELI).

The file is UTF-8, pipe-separated, one line per activity of a professional, header first; a line ends with a
trailing '|'. Columns are found by their header name, so a reordered extract still reads. Reading is streaming:
`read_extract` yields one parsed line (or one rejection) at a time from a binary file and never holds more.

A line is refused, with its number and a French reason, when it cannot be trusted: wrong number of fields,
undecodable bytes, an identifier whose check digit is wrong or that disagrees with the national identification,
a missing name, a profession or specialty absent from the national code lists, a malformed FINESS or postcode.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from teleexpertise.core.digits import ascii_digits
from teleexpertise.directory.identifiers import validate_adeli, validate_finess, validate_rpps

# Header names of the columns this import reads.
COL = {
    "id_type": "Type d'identifiant PP",
    "id": "Identifiant PP",
    "national_id": "Identification nationale PP",
    "birth_name": "Nom de famille",
    "given_names": "Prénoms",
    "title": "Code civilité d'exercice",
    "profession": "Code profession",
    "last_name": "Nom d'exercice",
    "first_name": "Prénom d'exercice",
    "skill_type": "Code type savoir-faire",
    "skill": "Code savoir-faire",
    "mode": "Code mode exercice",
    "finess_site": "Numéro FINESS site",
    "finess_ej": "Numéro FINESS établissement juridique",
    "structure_id": "Identifiant technique de la structure",
    "company": "Raison sociale site",
    "brand": "Enseigne commerciale site",
    "street_number": "Numéro Voie (coord. structure)",
    "street_repeat": "Indice répétition voie (coord. structure)",
    "street_type": "Code type de voie (coord. structure)",
    "street": "Libellé Voie (coord. structure)",
    "post_office": "Bureau cedex (coord. structure)",
    "postcode": "Code postal (coord. structure)",
    "commune": "Code commune (coord. structure)",
    "department": "Code département (coord. structure)",
}
TITLES = {"DR": "Dr", "PR": "Pr"}
SPECIALTY_SKILL_TYPE = "S"  # "spécialité ordinale": its code is a TRE_R38 specialty
KINDS = {"8": "rpps", "0": "adeli"}
MAX_LINE_SHOWN = 200


class ExtractError(Exception):
    """The file as a whole cannot be read (no header, a column missing): nothing is imported."""


@dataclass(frozen=True)
class Structure:
    structure_id: str
    name: str
    finess_site: str
    finess_ej: str
    address: str
    postcode: str
    city: str
    department: str


@dataclass(frozen=True)
class ActivityLine:
    line_number: int
    kind: str  # "rpps" or "adeli"
    identifier: str
    title: str
    first_name: str
    last_name: str
    profession: str
    specialty: str | None
    mode: str
    structure: Structure | None

    @property
    def person_key(self) -> tuple[str, str]:
        return self.kind, self.identifier


@dataclass(frozen=True)
class Rejection:
    line_number: int
    reason: str
    content: str


@dataclass(frozen=True)
class Codes:
    """The national code lists a line is checked against (loaded once per import)."""

    professions: frozenset
    specialties: frozenset


class LineRefused(Exception):
    pass


def _header(raw: bytes) -> dict[str, int]:
    try:
        names = raw.decode("utf-8-sig").rstrip("\r\n").split("|")
    except UnicodeDecodeError as exc:
        raise ExtractError(_("L'en-tête du fichier n'est pas en UTF-8.")) from exc
    index = {name.strip(): i for i, name in enumerate(names)}
    missing = [name for name in COL.values() if name not in index]
    if missing:
        raise ExtractError(_("Colonnes absentes de l'en-tête : %(columns)s. Est-ce bien l'extraction « Personne "
                             "activité » de l'annuaire ?") % {"columns": ", ".join(missing)})
    return {key: index[name] for key, name in COL.items()} | {"_count": len(names)}


def read_extract(stream: BinaryIO, codes: Codes, *, progress=None) -> Iterator[ActivityLine | Rejection]:
    """Parsed lines and rejections, in file order. `progress(bytes_read)` is told after each line."""
    header = stream.readline()
    if not header:
        raise ExtractError(_("Le fichier est vide."))
    columns = _header(header)
    read = len(header)
    for number, raw in enumerate(stream, start=2):
        read += len(raw)
        if progress:
            progress(read)
        if not raw.strip():
            continue
        try:
            yield parse_line(raw, number, columns, codes)
        except LineRefused as refusal:
            yield Rejection(number, str(refusal)[:300], raw[:MAX_LINE_SHOWN].decode("utf-8", "replace").rstrip())


def parse_line(raw: bytes, number: int, columns: dict[str, int], codes: Codes) -> ActivityLine:
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise LineRefused(_("caractères illisibles (le fichier doit être en UTF-8)")) from None
    fields = text.split("|")
    if len(fields) != columns["_count"]:
        raise LineRefused(_("%(found)s champs au lieu de %(expected)s") % {"found": len(fields),
                                                                           "expected": columns["_count"]})
    get = lambda key: fields[columns[key]].strip()  # noqa: E731
    kind, identifier = _identity(get)
    last_name = get("last_name") or get("birth_name")
    first_name = get("first_name") or get("given_names").split("'")[0]
    if not last_name or not first_name:
        raise LineRefused(_("nom ou prénom d'exercice absent"))
    if len(last_name) > 150 or len(first_name) > 150:
        raise LineRefused(_("nom ou prénom trop long"))
    profession = get("profession")
    if profession not in codes.professions:
        raise LineRefused(_("code profession inconnu (TRE_G15) : « %(code)s »") % {"code": profession})
    return ActivityLine(
        line_number=number, kind=kind, identifier=identifier, title=TITLES.get(get("title").upper(), ""),
        first_name=_first_name_case(first_name), last_name=last_name, profession=profession,
        specialty=_specialty(get, codes), mode=get("mode")[:2], structure=_structure(get),
    )


def _identity(get) -> tuple[str, str]:
    id_type, identifier = get("id_type"), get("id")
    kind = KINDS.get(id_type)
    if kind is None:
        raise LineRefused(_("type d'identifiant inconnu : « %(type)s » (8 : RPPS, 0 : ADELI)") % {"type": id_type})
    try:
        (validate_rpps if kind == "rpps" else validate_adeli)(identifier)
    except ValidationError as exc:
        raise LineRefused(" ".join(exc.messages)) from None
    if get("national_id") and get("national_id") != id_type + identifier:
        raise LineRefused(_("l'identification nationale %(national)s ne correspond pas à l'identifiant "
                            "%(identifier)s") % {"national": get("national_id"), "identifier": identifier})
    return kind, identifier


def _first_name_case(name: str) -> str:
    """'PATRICE' -> 'Patrice', 'JEAN-MARC' -> 'Jean-Marc'; a name already in mixed case is kept."""
    return name.title() if name.isupper() else name


def _specialty(get, codes: Codes) -> str | None:
    if get("skill_type") != SPECIALTY_SKILL_TYPE or not get("skill"):
        return None  # other know-how kinds (competences, DESC...) are not TRE_R38 specialties
    if get("skill") not in codes.specialties:
        raise LineRefused(_("spécialité inconnue (TRE_R38) : « %(code)s »") % {"code": get("skill")})
    return get("skill")


def _structure(get) -> Structure | None:
    structure_id = get("structure_id")
    if not structure_id:
        return None  # an activity without a place (retired, replacement...): the professional alone
    if len(structure_id) > 40:
        raise LineRefused(_("identifiant de structure trop long"))
    finess_site, finess_ej = get("finess_site").upper(), get("finess_ej").upper()
    for value in filter(None, (finess_site, finess_ej)):
        try:
            validate_finess(value)
        except ValidationError as exc:
            raise LineRefused(" ".join(exc.messages)) from None
    postcode = get("postcode")
    if postcode and not (len(postcode) == 5 and ascii_digits(postcode)):
        raise LineRefused(_("code postal malformé : « %(code)s »") % {"code": postcode})
    street = " ".join(filter(None, (get("street_number"), get("street_repeat"), get("street_type"), get("street"))))
    return Structure(
        structure_id=structure_id, name=(get("company") or get("brand") or structure_id)[:200],
        finess_site=finess_site, finess_ej=finess_ej, address=street[:255], postcode=postcode,
        city=_city(get("post_office"), postcode)[:120],
        department=(get("department") or department_of(postcode, get("commune")))[:3],
    )


def _city(post_office: str, postcode: str) -> str:
    """'01000 BOURG EN BRESSE' -> 'BOURG EN BRESSE' (the post office line starts with the postcode)."""
    head, _sep, rest = post_office.partition(" ")
    return rest.strip() if head.isdigit() and rest else post_office


def department_of(postcode: str, commune: str = "") -> str:
    """The department code: '2A'/'2B' in Corsica (from the commune code), 3 digits overseas, else 2."""
    if commune[:2] in ("2A", "2B"):
        return commune[:2]
    if not postcode:
        return ""
    if postcode.startswith("97") or postcode.startswith("98"):
        return postcode[:3]
    if postcode.startswith("20"):
        return "2A" if postcode < "20200" else "2B"
    return postcode[:2]
