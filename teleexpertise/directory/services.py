"""Directory changes: the national directory import (upload, run).

An import is a `DirectoryImport` row: created by an administrator's upload (the file is written to
DIRECTORY_IMPORT_DIR and a background job reads it) or by the `import_directory` command (which reads the file
where it is). Running it again, or the job being retried, is harmless: the import is idempotent and a run starts
by clearing the rejections of its previous attempt.
"""

import logging
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.core.jobs import enqueue
from teleexpertise.directory.extract import ExtractError
from teleexpertise.directory.importer import BATCH_SIZE, Counts, import_extract
from teleexpertise.directory.models import DirectoryImport

logger = logging.getLogger(__name__)
S = DirectoryImport.Status


def directory_import_upload(*, actor, upload, ip: str | None = None) -> DirectoryImport:
    """Spool an administrator's upload in clear (the directory is public data) and queue its import."""
    if not (actor.is_authenticated and actor.is_staff):
        raise PermissionDenied
    if not upload or not upload.size:
        raise ValidationError(_("Le fichier est vide."))
    folder = Path(settings.DIRECTORY_IMPORT_DIR)
    folder.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4()
    path = folder / f"{run_id}.txt"
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    with transaction.atomic():
        run = DirectoryImport.objects.create(id=run_id, created_by=actor, source_name=upload.name[:255],
                                             path=str(path), size=path.stat().st_size)
        audit_log(actor=actor, action="directory.import_upload", kind=AuditEvent.Kind.CREATE, obj=run, ip=ip,
                  summary=f"{run.source_name} ({run.size} octets)")
        from teleexpertise.directory.tasks import run_directory_import

        enqueue(run_directory_import, str(run.pk))
    return run


def directory_import_file(*, path: str, actor=None, batch_size: int = BATCH_SIZE) -> DirectoryImport:
    """Import a file where it is (the command): synchronously, the file is left in place."""
    path = Path(path)
    run = DirectoryImport.objects.create(created_by=actor, source_name=path.name[:255], path=str(path),
                                         size=path.stat().st_size)
    return directory_import_run(run_id=run.pk, batch_size=batch_size, keep_file=True)


def directory_import_run(*, run_id, batch_size: int = BATCH_SIZE, keep_file: bool = False) -> DirectoryImport:
    """Read the run's file into the directory. A finished run is not run again."""
    run = DirectoryImport.objects.get(pk=run_id)
    if run.status in (S.DONE, S.FAILED):
        return run
    run.rejections.all().delete()  # a retried attempt reports its own rejections only
    DirectoryImport.objects.filter(pk=run.pk).update(status=S.RUNNING, started_at=timezone.now(), bytes_read=0)
    try:
        with open(run.path, "rb") as stream:
            counts = import_extract(stream, run, batch_size=batch_size)
    except (ExtractError, OSError) as exc:
        return _finish(run, S.FAILED, Counts(), error=str(exc))
    run = _finish(run, S.DONE, counts)
    if not keep_file:
        Path(run.path).unlink(missing_ok=True)
    return run


def _finish(run: DirectoryImport, status: str, counts: Counts, *, error: str = "") -> DirectoryImport:
    with transaction.atomic():
        DirectoryImport.objects.filter(pk=run.pk).update(status=status, error=error, finished_at=timezone.now())
        run.refresh_from_db()
        # A run that changed nothing (the same file again) leaves no trace in the audit trail but its own row.
        if counts.changes or status == S.FAILED:
            audit_log(actor=run.created_by, action="directory.import", kind=AuditEvent.Kind.EXECUTE, obj=run,
                      summary=(f"{run.source_name} : {run.lines} lignes, {run.created} créés, {run.updated} mis à "
                               f"jour, {run.rejected} rejetées" if status == S.DONE else error)[:500])
    logger.info("directory import finished", extra={"run": str(run.pk), "status": status, "lines": run.lines,
                                                    "rejected": run.rejected})
    return run
