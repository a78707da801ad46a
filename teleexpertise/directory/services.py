"""Directory changes: the national directory import (upload, run) and the on-call rota of a network, edited by its
dispatchers.

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
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.core.jobs import enqueue
from teleexpertise.directory.extract import ExtractError
from teleexpertise.directory.importer import BATCH_SIZE, Counts, import_extract
from teleexpertise.directory.models import DirectoryImport, Network, NetworkMembership, OnCallShift

WEEK = 7 * 24 * 60


def rota_network_for(user, network_id, *, edit: bool) -> Network:
    """The network if the user may read its rota (a member) or edit it (a dispatcher, or staff); else 404."""
    network = Network.objects.filter(pk=network_id).first()
    if network is None or not user.is_authenticated:
        raise Http404
    if user.is_staff:
        return network
    role = (NetworkMembership.objects.filter(network=network, professional__user=user)
            .values_list("role", flat=True).first())
    if role is None or (edit and role != NetworkMembership.Role.DISPATCHER):
        raise Http404
    return network


def _minutes(shift) -> list[tuple[int, int]]:
    """The slot as intervals of minutes in the week (Monday 00:00 = 0), split where it wraps past Sunday."""
    start = shift.weekday * 1440 + shift.starts_at.hour * 60 + shift.starts_at.minute
    length = (shift.ends_at.hour * 60 + shift.ends_at.minute) - (shift.starts_at.hour * 60 + shift.starts_at.minute)
    end = start + (length if length > 0 else length + 1440)
    return [(start, min(end, WEEK))] + ([(0, end - WEEK)] if end > WEEK else [])


def _overlaps(a, b) -> bool:
    return any(s1 < e2 and s2 < e1 for s1, e1 in _minutes(a) for s2, e2 in _minutes(b))


def oncall_shift_add(*, user, network_id, weekday: int, starts_at, ends_at, expert, backup=None,
                     ip=None) -> OnCallShift:
    network = rota_network_for(user, network_id, edit=True)
    shift = OnCallShift(network=network, weekday=weekday, starts_at=starts_at, ends_at=ends_at, expert=expert,
                        backup=backup)
    _validate(shift)
    with transaction.atomic():
        existing = list(OnCallShift.objects.select_for_update().filter(network=network))
        clash = next((s for s in existing if _overlaps(s, shift)), None)
        if clash is not None:
            raise ValidationError(_("Ce créneau chevauche celui du %(day)s %(start)s–%(end)s (%(name)s).") % {
                "day": clash.get_weekday_display(), "start": f"{clash.starts_at:%H:%M}",
                "end": f"{clash.ends_at:%H:%M}", "name": clash.expert.display_name}, code="overlap")
        shift.save()
        audit_log(actor=user, action="oncall_shift.add", kind=AuditEvent.Kind.CREATE, obj=shift, ip=ip,
                  summary=_describe(shift))
    return shift


def _validate(shift: OnCallShift) -> None:
    if shift.starts_at == shift.ends_at:
        raise ValidationError(_("La fin du créneau doit différer de son début."), code="empty")
    members = set(NetworkMembership.objects.filter(network=shift.network, professional__profession__may_be_expert=True)
                  .values_list("professional_id", flat=True))
    for pro in (shift.expert, shift.backup):
        if pro is not None and pro.pk not in members:
            raise ValidationError(_("%(name)s n'est pas médecin ou sage-femme membre du réseau.")
                                  % {"name": pro.display_name}, code="member")
    if shift.backup is not None and shift.backup.pk == shift.expert.pk:
        raise ValidationError(_("Le suppléant doit être une autre personne que l'expert d'astreinte."), code="backup")


def oncall_shift_remove(*, user, network_id, shift_id, ip=None) -> None:
    network = rota_network_for(user, network_id, edit=True)
    with transaction.atomic():
        shift = OnCallShift.objects.select_related("expert").filter(network=network, pk=shift_id).first()
        if shift is None:
            raise Http404
        audit_log(actor=user, action="oncall_shift.remove", kind=AuditEvent.Kind.UPDATE, obj=shift, ip=ip,
                  summary=_describe(shift))
        shift.delete()


def _describe(shift: OnCallShift) -> str:
    backup = shift.backup.display_name if shift.backup else "—"
    return _("%(network)s, %(day)s %(start)s–%(end)s : %(name)s (suppléant : %(backup)s)") % {
        "network": shift.network.name, "day": shift.get_weekday_display(), "start": f"{shift.starts_at:%H:%M}",
        "end": f"{shift.ends_at:%H:%M}", "name": shift.expert.display_name, "backup": backup}


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
