"""Background work of reports: render the PDF of a signed version and store it encrypted, then what follows a
stored PDF (`_after_pdf_ready`): the e-mail/MSSanté deliveries and the DMP filing through the outbox."""

import logging

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from teleexpertise.core.jobs import enqueue
from teleexpertise.documents import storage
from teleexpertise.reports import delivery, dmp, pdf
from teleexpertise.reports.models import DmpExport, RenderedReport, ReportVersion

logger = logging.getLogger(__name__)
R = RenderedReport.Status


@db_task(retries=2, retry_delay=60, context=True)
def render_report_pdf(version_id, task=None) -> None:
    """Idempotent: a version whose PDF is ready is not rendered again. The last failed attempt marks it failed."""
    rendered = RenderedReport.objects.select_related("version").filter(version_id=version_id).first()
    if rendered is None or rendered.is_ready or not rendered.version.is_signed:
        return
    try:
        blob = storage.put([pdf.render_report_pdf(_version_for_render(version_id))])
    except Exception as exc:
        final = task is None or not task.retries
        RenderedReport.objects.filter(pk=rendered.pk).exclude(status=R.READY).update(
            status=R.FAILED if final else R.PENDING, error=f"{type(exc).__name__}: {exc}"[:2000])
        logger.exception("report pdf rendering failed", extra={"version": str(version_id), "final": final})
        if not final:
            raise  # huey retries after retry_delay
        return
    if _mark_ready(rendered.pk, blob):
        _after_pdf_ready(rendered.version)


def _version_for_render(version_id) -> ReportVersion:
    return ReportVersion.objects.select_related(
        "case__patient", "case__requester__profession", "case__requester__specialty",
        "case__requester__organisation", "author__profession", "author__specialty", "author__organisation",
    ).get(pk=version_id)


def _mark_ready(rendered_pk, blob: storage.StoredBlob) -> bool:
    """Record the stored PDF; False when another render was recorded first (ours is then deleted, and the other
    one did what follows)."""
    with transaction.atomic():
        rendered = RenderedReport.objects.select_for_update().get(pk=rendered_pk)
        if rendered.is_ready:  # two renders raced (a retry and a worker): keep the first, drop ours
            transaction.on_commit(lambda: storage.delete(blob))
            return False
        rendered.status, rendered.error, rendered.rendered_at = R.READY, "", timezone.now()
        rendered.storage_key, rendered.size, rendered.sha256 = blob.key, blob.size, blob.sha256
        rendered.key_id, rendered.wrapped_key = blob.key_id, blob.wrapped_key
        rendered.save()
    return True


def _after_pdf_ready(version: ReportVersion) -> None:
    """What a stored PDF sets off, each an idempotent job of its own: the deliveries and the DMP filing."""
    with transaction.atomic():
        for row in delivery.deliveries_create(version):
            enqueue(send_report_delivery, row.pk)
        if dmp.dmp_export_prepare(version):
            enqueue(export_report_to_dmp, version.pk)


@db_task(retries=3, retry_delay=300, context=True)
def export_report_to_dmp(version_id, task=None) -> None:
    """Idempotent: a filed version is not written again. A refusal fails at once; other errors are retried and the
    last attempt marks the row failed."""
    export = DmpExport.objects.filter(version_id=version_id).first()
    if export is None or export.is_written:
        return
    try:
        dmp.export_version(version_id)
    except dmp.DmpRefused as exc:
        dmp.mark_failed(version_id, str(exc), final=True, reason=str(exc))
    except Exception as exc:
        final = task is None or not task.retries
        dmp.mark_failed(version_id, f"{type(exc).__name__}: {exc}", final=final)
        logger.exception("dmp export failed", extra={"version": str(version_id), "final": final})
        if not final:
            raise  # huey retries after retry_delay
@db_task(retries=settings.REPORT_DELIVERY_RETRIES, retry_delay=settings.REPORT_DELIVERY_RETRY_DELAY, context=True)
def send_report_delivery(delivery_id, task=None) -> None:
    """Idempotent: a sent or refused delivery, or one another job is sending, is left alone. Errors are recorded
    on the row; huey retries, and only the last attempt (or a refusal) marks it failed."""
    row = delivery.claim(delivery_id)
    if row is None:
        return
    try:
        message_id = delivery.send(row)
    except Exception as exc:
        final = task is None or not task.retries
        delivery.record_failure(row, exc, final=final)
        logger.warning("report delivery failed", extra={"delivery": str(delivery_id), "final": final,
                                                        "error": delivery.describe_error(exc)})
        if not final and not delivery.is_permanent(exc):
            raise  # huey retries after retry_delay
        return
    delivery.record_sent(row, message_id)


@db_periodic_task(crontab(minute=f"*/{settings.REPORT_DELIVERY_SWEEP_MINUTES}"))
def sweep_report_deliveries() -> None:
    """Send again what failed (relay down, timeouts) or was never sent (a job lost with its worker)."""
    for delivery_id in delivery.due_for_retry():
        enqueue(send_report_delivery, delivery_id)
