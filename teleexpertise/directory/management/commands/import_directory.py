"""`manage.py import_directory EXTRACT [--report rejected.csv] [--batch-size N]`: the national directory import."""

import csv
import resource
import time

from django.core.management.base import BaseCommand, CommandError

from teleexpertise.directory.importer import BATCH_SIZE
from teleexpertise.directory.models import DirectoryImport
from teleexpertise.directory.services import directory_import_file


class Command(BaseCommand):
    help = "Import the national directory extract (RPPS/ADELI 'Personne activité', pipe-separated)."

    def add_arguments(self, parser):
        parser.add_argument("path", help="the extract file")
        parser.add_argument("--report", help="write the rejected lines to this CSV file (line;reason;content)")
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="lines per transaction")

    def handle(self, *args, path, report=None, batch_size=BATCH_SIZE, **options):
        started = time.perf_counter()
        try:
            run = directory_import_file(path=path, batch_size=batch_size)
        except OSError as exc:
            raise CommandError(str(exc)) from exc
        seconds = time.perf_counter() - started
        if report:
            self._write_report(run, report)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
        self.stdout.write(
            f"{run.get_status_display()}: {run.lines} lines in {seconds:.1f} s ({run.lines / max(seconds, 1e-9):.0f}"
            f" lines/s), {run.created} created, {run.updated} updated, {run.unchanged} unchanged, "
            f"{run.rejected} rejected; peak memory {peak_mb:.0f} MB")
        for rejection in run.rejections.order_by("line_number")[:20]:
            self.stdout.write(f"  line {rejection.line_number}: {rejection.reason}")
        if run.status == DirectoryImport.Status.FAILED:
            raise CommandError(run.error)

    def _write_report(self, run, report: str) -> None:
        with open(report, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out, delimiter=";")
            writer.writerow(["ligne", "motif", "contenu"])
            for r in run.rejections.order_by("line_number").iterator(chunk_size=2000):
                writer.writerow([r.line_number, r.reason, r.content])
