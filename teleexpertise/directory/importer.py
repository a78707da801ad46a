"""Writing the national directory extract into the directory, a batch at a time.

Lines are grouped by professional (the extract is sorted by identifier: a professional's activities are
consecutive) and written in batches of about `batch_size` lines, never splitting a professional, each batch in
its own transaction with a handful of bulk statements: organisations and sites first, then professionals, then
their activities, then the batch's rejected lines and the run's progress. Memory is bounded by one batch.

Idempotent: every row is looked up by its national key (RPPS/ADELI, FINESS, structure id) and written only when a
value differs, so importing the same file again writes nothing. If the database refuses a batch (a value it
rejects), the batch is written again one professional at a time and only the refused professional's lines are
reported: a bad line never costs its neighbours.

What the directory owns: a professional's names, title, profession, specialty (when the extract gives one),
city and department of the first listed site; sites' names and addresses. What it does not touch: accounts
(importing creates no login), an organisation's name once it exists, and an organisation or site a person chose
for a professional.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db import DatabaseError, transaction
from django.utils.translation import gettext as _

from teleexpertise.directory.extract import ActivityLine, Codes, Rejection, read_extract
from teleexpertise.directory.models import (
    DirectoryImport,
    DirectoryImportRejection,
    Organisation,
    PracticeActivity,
    Profession,
    Professional,
    Site,
    Specialty,
)
from teleexpertise.directory.search import search_key

BATCH_SIZE = 5_000
PERSON_FIELDS = ("title", "first_name", "last_name", "profession_id", "specialty_id", "city", "department",
                 "search_name", "city_key", "organisation_id", "site_id")
SITE_FIELDS = ("name", "address", "postcode", "city", "department", "finess")


@dataclass
class Counts:
    lines: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    other_changes: int = 0  # organisations, sites and activities created or updated

    def add(self, other: "Counts") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def changes(self) -> int:
        return self.created + self.updated + self.other_changes


@dataclass
class Person:
    """A professional's lines of the extract, merged."""

    lines: list[ActivityLine] = field(default_factory=list)

    @property
    def first(self) -> ActivityLine:
        return self.lines[0]

    @property
    def specialty(self) -> str | None:
        return next((line.specialty for line in self.lines if line.specialty), None)

    @property
    def main_structure(self):
        return next((line.structure for line in self.lines if line.structure), None)


def load_codes() -> Codes:
    return Codes(professions=frozenset(Profession.objects.values_list("code", flat=True)),
                 specialties=frozenset(Specialty.objects.values_list("code", flat=True)))


def import_extract(stream, run: DirectoryImport, *, batch_size: int = BATCH_SIZE) -> Counts:
    """Read the whole stream into the directory; the run row is kept up to date (progress, counts)."""
    total, position = Counts(), {"bytes": 0}
    people: dict[tuple, Person] = {}
    rejections: list[Rejection] = []
    pending_lines = 0

    def flush() -> None:
        nonlocal people, rejections, pending_lines
        total.add(write_batch(list(people.values()), rejections, run))
        DirectoryImport.objects.filter(pk=run.pk).update(
            bytes_read=position["bytes"], lines=total.lines, created=total.created, updated=total.updated,
            unchanged=total.unchanged, rejected=total.rejected)
        people, rejections, pending_lines = {}, [], 0

    def progress(read: int) -> None:
        position["bytes"] = read

    last_key = None
    for item in read_extract(stream, load_codes(), progress=progress):
        total.lines += 1
        if isinstance(item, Rejection):
            rejections.append(item)
            continue
        if pending_lines >= batch_size and item.person_key != last_key:
            flush()  # only between two professionals: each one's lines are written together
        people.setdefault(item.person_key, Person()).lines.append(item)
        pending_lines, last_key = pending_lines + 1, item.person_key
    flush()
    return total


def write_batch(people: list[Person], rejections: list[Rejection], run: DirectoryImport) -> Counts:
    try:
        with transaction.atomic():
            counts = _write(people)
    except DatabaseError:
        counts = Counts()
        for person in people:  # one at a time: only the professional the database refuses is lost
            try:
                with transaction.atomic():
                    counts.add(_write([person]))
            except DatabaseError as exc:
                reason = _("refusée par la base de données : %(error)s") % {"error": str(exc).splitlines()[0][:200]}
                rejections += [Rejection(line.line_number, reason, "") for line in person.lines]
    DirectoryImportRejection.objects.bulk_create([
        DirectoryImportRejection(run=run, line_number=r.line_number, reason=r.reason, content=r.content)
        for r in rejections])
    counts.rejected += len(rejections)
    return counts


def _write(people: list[Person]) -> Counts:
    counts = Counts()
    structures = {line.structure.structure_id: line.structure
                  for person in people for line in person.lines if line.structure}
    organisations = _organisations(structures.values(), counts)
    sites = _sites(structures.values(), organisations, counts)
    professionals = _professionals(people, sites, counts)
    _activities(people, professionals, sites, counts)
    return counts


def _organisation_key(structure) -> tuple[str, str]:
    """An establishment is found by its legal entity's FINESS; a private practice by its structure id."""
    return ("finess", structure.finess_ej) if structure.finess_ej else ("structure", structure.structure_id)


def _organisations(structures, counts: Counts) -> dict[tuple, str]:
    wanted = {_organisation_key(s): s for s in structures}
    finess = [value for kind, value in wanted if kind == "finess"]
    structure_ids = [value for kind, value in wanted if kind == "structure"]
    found = {("finess", f): pk for pk, f in Organisation.objects.filter(finess__in=finess).values_list("pk", "finess")}
    found |= {("structure", s): pk for pk, s in
              Organisation.objects.filter(structure_id__in=structure_ids).values_list("pk", "structure_id")}
    new = [Organisation(name=s.name, finess=key[1] if key[0] == "finess" else None,
                        structure_id=key[1] if key[0] == "structure" else None, city=s.city, postcode=s.postcode)
           for key, s in wanted.items() if key not in found]
    Organisation.objects.bulk_create(new)
    counts.other_changes += len(new)
    found |= {("finess", o.finess) if o.finess else ("structure", o.structure_id): o.pk for o in new}
    return found


def _sites(structures, organisations: dict, counts: Counts) -> dict[str, Site]:
    structures = list(structures)
    existing = Site.objects.in_bulk([s.structure_id for s in structures], field_name="structure_id")
    new, changed = [], []
    for s in structures:
        values = {"name": s.name, "address": s.address, "postcode": s.postcode, "city": s.city,
                  "department": s.department, "finess": s.finess_site}
        site = existing.get(s.structure_id)
        if site is None:
            site = Site(structure_id=s.structure_id, organisation_id=organisations[_organisation_key(s)], **values)
            new.append(site)
            existing[s.structure_id] = site
        elif _assign(site, values):
            changed.append(site)
    Site.objects.bulk_create(new)
    Site.objects.bulk_update(changed, SITE_FIELDS)
    counts.other_changes += len(new) + len(changed)
    return existing


def _assign(obj, values: dict) -> bool:
    """Set the values that differ; True if any did."""
    differs = False
    for name, value in values.items():
        if getattr(obj, name) != value:
            setattr(obj, name, value)
            differs = True
    return differs


def _person_values(person: Person, sites: dict, current: Professional | None) -> dict:
    line = person.first
    values = {"title": line.title, "first_name": line.first_name, "last_name": line.last_name,
              "profession_id": line.profession,
              "search_name": search_key(f"{line.last_name} {line.first_name}")}
    if person.specialty:
        values["specialty_id"] = person.specialty
    structure = person.main_structure
    if structure:
        values |= {"city": structure.city, "department": structure.department, "city_key": search_key(structure.city)}
        site = sites[structure.structure_id]
        if current is None or (current.organisation_id is None and current.site_id is None):
            values |= {"organisation_id": site.organisation_id, "site_id": site.pk}
    return values


def _professionals(people: list[Person], sites: dict, counts: Counts) -> dict[tuple, Professional]:
    by_kind = defaultdict(list)
    for person in people:
        by_kind[person.first.kind].append(person.first.identifier)
    existing = {}
    for kind, identifiers in by_kind.items():
        for pro in Professional.objects.filter(**{f"{kind}__in": identifiers}):
            existing[(kind, getattr(pro, kind))] = pro
    new, changed = [], []
    for person in people:
        key = person.first.person_key
        pro = existing.get(key)
        values = _person_values(person, sites, pro)
        if pro is None:
            pro = Professional(**{key[0]: key[1]}, **values)
            new.append(pro)
            existing[key] = pro
        elif _assign(pro, values):
            changed.append(pro)
        else:
            counts.unchanged += 1
    Professional.objects.bulk_create(new)
    Professional.objects.bulk_update(changed, PERSON_FIELDS)
    counts.created += len(new)
    counts.updated += len(changed)
    return existing


def _activities(people: list[Person], professionals: dict, sites: dict, counts: Counts) -> None:
    wanted = {}
    for person in people:
        pro = professionals[person.first.person_key]
        for line in person.lines:
            if line.structure:
                wanted.setdefault((pro.pk, sites[line.structure.structure_id].pk), line.mode)
    existing = {(a.professional_id, a.site_id): a for a in
                PracticeActivity.objects.filter(professional_id__in={pro_id for pro_id, _ in wanted})}
    new = [PracticeActivity(professional_id=p, site_id=s, mode=mode) for (p, s), mode in wanted.items()
           if (p, s) not in existing]
    changed = [a for key, a in existing.items() if key in wanted and _assign(a, {"mode": wanted[key]})]
    PracticeActivity.objects.bulk_create(new)
    PracticeActivity.objects.bulk_update(changed, ["mode"])
    counts.other_changes += len(new) + len(changed)
