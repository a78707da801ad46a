"""The national directory import: the real ANS sample, idempotence, broken lines, streaming, database refusals."""

import io
import os
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from bench.harness import MemorySampler
from teleexpertise.accounts.models import User
from teleexpertise.audit.models import AuditEvent
from teleexpertise.directory.extract import department_of
from teleexpertise.directory.models import (
    DirectoryImport,
    Organisation,
    PracticeActivity,
    Professional,
    Site,
)
from teleexpertise.directory.services import directory_import_file
from tests.directory_extract import rpps_number, write_extract

SAMPLE = Path(__file__).parent / "data" / "Extraction_ProSanteConnect_Personne_activite_sample.txt"
# 200,000 lines take about 70 s here: the test imports 50,000 (DIRECTORY_TEST_LINES to change it) and
# `make bench BENCH=directory` the 200,000 of the issue.
GENERATED_LINES = int(os.environ.get("DIRECTORY_TEST_LINES", "50000"))

pytestmark = pytest.mark.django_db


def snapshot() -> dict:
    """Everything the import writes, as plain values (ids included: an update must not recreate a row)."""
    return {
        "professionals": list(Professional.objects.order_by("pk").values()),
        "organisations": list(Organisation.objects.order_by("pk").values()),
        "sites": list(Site.objects.order_by("pk").values()),
        "activities": list(PracticeActivity.objects.order_by("professional_id", "site_id")
                           .values("professional_id", "site_id", "mode")),
    }


def run_sample() -> DirectoryImport:
    return directory_import_file(path=str(SAMPLE))


def test_the_ans_sample_creates_professionals_sites_and_organisations_and_reports_bad_lines():
    run = run_sample()
    assert run.status == DirectoryImport.Status.DONE
    assert (run.lines, run.created, run.updated, run.rejected) == (10, 4, 0, 2)
    evrard = Professional.objects.get(adeli="012800728")
    assert (evrard.first_name, evrard.last_name, evrard.profession_id) == ("Patrice", "EVRARD", "28")
    assert (evrard.city, evrard.department, evrard.search_name) == ("BOURG EN BRESSE", "01", "EVRARD PATRICE")
    assert evrard.rpps is None and evrard.user is None
    assert sorted(evrard.activities.values_list("site__postcode", flat=True)) == ["01000", "01000", "01400", "01540"]
    assert evrard.site.structure_id == "C39806996300013" and evrard.organisation_id == evrard.site.organisation_id
    vonnas = Site.objects.get(structure_id="C39806996300070")
    assert (vonnas.name, vonnas.address, vonnas.city) == ("SARL PATRICE EVRARD - VISION PLUS", "114 R DU 19 MAI 1962",
                                                           "VONNAS")
    assert Organisation.objects.filter(structure_id__startswith="C398069963").count() == 4
    assert Professional.objects.get(adeli="010000206").profession.label == "Ostéopathe"
    assert Professional.objects.get(rpps="10107592585").last_name == "ROLEAU"
    # HIRE's RPPS 10107582544 fails its check digit (and differs from his national id 810107592544): both lines out.
    rejected = list(run.rejections.values_list("line_number", "reason"))
    assert [n for n, _ in rejected] == [10, 11]
    assert all("RPPS" in reason for _, reason in rejected)
    assert not Professional.objects.filter(last_name="HIRE").exists()


def test_importing_the_sample_twice_changes_nothing_and_adds_no_audit_event():
    first = run_sample()
    before, events = snapshot(), AuditEvent.objects.count()
    assert AuditEvent.objects.filter(action="directory.import").count() == 1
    second = run_sample()
    assert (second.created, second.updated, second.unchanged, second.rejected) == (0, 0, 4, 2)
    assert snapshot() == before
    assert AuditEvent.objects.count() == events
    assert first.pk != second.pk


def test_importing_creates_no_login_account():
    run_sample()
    assert User.objects.count() == 0
    assert not Professional.objects.filter(user__isnull=False).exists()


def test_a_changed_line_updates_the_professional_and_keeps_a_chosen_organisation(tmp_path):
    run_sample()
    pierre = Professional.objects.get(rpps="10107592585")
    chosen = Organisation.objects.create(name="Maison de santé choisie")
    Professional.objects.filter(pk=pierre.pk).update(organisation=chosen)
    changed = SAMPLE.read_text(encoding="utf-8").replace("|ROLEAU|PIERRE|", "|ROLEAU-MARTIN|PIERRE|")
    path = tmp_path / "changed.txt"
    path.write_text(changed, encoding="utf-8")
    run = directory_import_file(path=str(path))
    assert (run.created, run.updated, run.unchanged) == (0, 1, 3)
    pierre.refresh_from_db()
    assert (pierre.last_name, pierre.search_name, pierre.organisation_id) == ("ROLEAU-MARTIN", "ROLEAU MARTIN PIERRE",
                                                                              chosen.pk)


def test_a_file_without_the_expected_columns_fails_whole_and_imports_nothing(tmp_path):
    path = tmp_path / "other.txt"
    path.write_text("Nom|Prénom\nDUPONT|Jean\n", encoding="utf-8")
    run = directory_import_file(path=str(path))
    assert run.status == DirectoryImport.Status.FAILED
    assert "Colonnes absentes" in run.error and "Identifiant PP" in run.error
    assert not Professional.objects.exists()


def test_the_command_prints_counts_and_memory_and_writes_the_report(tmp_path):
    out = io.StringIO()
    report = tmp_path / "rejected.csv"
    call_command("import_directory", str(SAMPLE), "--report", str(report), stdout=out)
    assert "10 lines" in out.getvalue() and "4 created" in out.getvalue() and "peak memory" in out.getvalue()
    assert "line 10:" in out.getvalue()
    lines = report.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "ligne;motif;contenu" and [row.split(";")[0] for row in lines[1:]] == ["10", "11"]


@pytest.mark.parametrize(("postcode", "commune", "department"), [
    ("01000", "", "01"), ("20117", "2A104", "2A"), ("20200", "", "2B"), ("97400", "", "974"), ("", "", "")])
def test_department_of(postcode, commune, department):
    assert department_of(postcode, commune) == department


# --- A generated extract ---------------------------------------------------------------------------------

def test_a_generated_extract_keeps_every_good_line_and_reports_each_broken_one(tmp_path, capsys):
    path = tmp_path / "extract.txt"
    good, broken = write_extract(path, GENERATED_LINES)
    with MemorySampler(os.getpid()) as sampler, sampler.window() as memory:
        started = time.perf_counter()
        run = directory_import_file(path=str(path), batch_size=5_000)
        seconds = time.perf_counter() - started
    with capsys.disabled():
        sys.stdout.write(f"\n{GENERATED_LINES} lines in {seconds:.1f} s ({GENERATED_LINES / seconds:.0f} lines/s), "
                         f"resident memory peak {memory['peak_mb']} MB (+{memory['growth_mb']} MB), file "
                         f"{path.stat().st_size / 2**20:.1f} MB\n")
    assert run.status == DirectoryImport.Status.DONE
    assert run.lines == GENERATED_LINES and run.rejected == len(broken) > 0
    assert dict(run.rejections.values_list("line_number", "reason")).keys() == broken.keys()
    for number, reason in run.rejections.values_list("line_number", "reason"):
        assert broken[number] in reason, (number, reason)
    assert set(Professional.objects.values_list("rpps", flat=True)) == good
    good_lines = GENERATED_LINES - len(broken)
    assert PracticeActivity.objects.count() == Site.objects.count() == good_lines
    # Resident memory includes the in-memory SQLite test database itself: the importer's own memory is below.


def _python_peak(path: Path) -> int:
    tracemalloc.start()
    try:
        directory_import_file(path=str(path), batch_size=1_000)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_is_bounded_by_a_batch_not_by_the_file(tmp_path, capsys):
    """Python's peak allocation while importing 4 times more lines stays that of one batch (the database's own
    memory is not Python's and is not counted)."""
    small, large = tmp_path / "small.txt", tmp_path / "large.txt"
    write_extract(small, 3_000)
    write_extract(large, 12_000)
    small_peak = _python_peak(small)
    Professional.objects.all().delete()
    Site.objects.all().delete()
    Organisation.objects.all().delete()
    large_peak = _python_peak(large)
    with capsys.disabled():
        sys.stdout.write(f"\nPython peak: {small_peak / 2**20:.1f} MB for 3,000 lines, "
                         f"{large_peak / 2**20:.1f} MB for 12,000\n")
    assert large_peak < small_peak * 1.5


def test_a_database_refusal_costs_only_the_refused_professional(tmp_path):
    """A trigger makes the database refuse one professional in the middle of a batch: the batch is written again
    one professional at a time, his lines are reported and his neighbours are kept."""
    if connection.vendor != "sqlite":
        pytest.skip("the refusing trigger is written for SQLite")
    path = tmp_path / "extract.txt"
    good, _ = write_extract(path, 30)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TRIGGER refuse_one BEFORE INSERT ON directory_professional "
                       "WHEN NEW.last_name = 'NOM7' BEGIN SELECT RAISE(ABORT, 'refused by trigger'); END")
    try:
        run = directory_import_file(path=str(path))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER refuse_one")
    reasons = list(run.rejections.values_list("line_number", "reason"))
    assert reasons and all("refused by trigger" in reason for _, reason in reasons)
    assert set(Professional.objects.values_list("rpps", flat=True)) == good - {rpps_number(7)}
    assert run.created == len(good) - 1
