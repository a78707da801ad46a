"""Writing and signing the report. Signing the first version answers the case; later ones amend it."""

import logging

from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from teleexpertise.audit.models import AuditEvent
from teleexpertise.audit.services import audit_log
from teleexpertise.billing.services import billing_records_create_for_report
from teleexpertise.cases import workflow
from teleexpertise.cases.models import Case
from teleexpertise.cases.services import case_answer, lock_case
from teleexpertise.cases.workflow import Actor, WorkflowError
from teleexpertise.core.jobs import enqueue
from teleexpertise.documents import storage
from teleexpertise.messaging.services import notify
from teleexpertise.reports import dmp
from teleexpertise.reports.models import DmpExport, RenderedReport, ReportDelivery, ReportVersion
from teleexpertise.reports.tasks import export_report_to_dmp, render_report_pdf, send_report_delivery
from teleexpertise.webhooks.events import case_event_emit

logger = logging.getLogger(__name__)

CONTENT_FIELDS = ("act_at", "answer", "conclusion", "treatments", "prescription_justification", "exams",
                  "orientation", "orientation_detail", "consultation_at", "hospitalisation", "technical_incidents",
                  "amendment_reason")
# Professions whose requests need the completeness justification when the expert prescribes (TRE_G15):
# pharmacists and paramedical professions (everyone but doctors and midwives).
_NO_JUSTIFICATION_NEEDED = {"10", "50"}


def _writing_action(case) -> str:
    return "answer" if case.state == case.State.ACCEPTED else "amend_report"


def report_draft_for(case) -> ReportVersion | None:
    return case.report_versions.filter(status=ReportVersion.Status.DRAFT).first()


def report_save_draft(*, actor: Actor, case_id, data: dict, ip=None) -> ReportVersion:
    with transaction.atomic():
        case = lock_case(case_id)
        workflow.check(actor, case, _writing_action(case))
        draft = report_draft_for(case)
        if draft is None:
            last = case.report_versions.order_by("-number").first()
            draft = ReportVersion(case=case, number=(last.number + 1) if last else 1, author=actor.professional)
        for name in CONTENT_FIELDS:
            if name in data:
                setattr(draft, name, data[name])
        draft.author = actor.professional
        draft.save()
        # The work item changed (its report is being written): a new version for the FHIR Task, a new live stamp.
        Case.objects.filter(pk=case.pk).update(updated_at=timezone.now())
        audit_log(actor=actor.user, action="report.save_draft", kind=AuditEvent.Kind.UPDATE, obj=draft, case=case,
                  ip=ip, summary=_("Brouillon du compte-rendu, version %(n)s") % {"n": draft.number})
    return draft


def report_validate(version: ReportVersion) -> None:
    errors = {}
    if not version.answer.strip():
        errors["answer"] = _("La réponse à la question posée est obligatoire.")
    if not version.conclusion.strip():
        errors["conclusion"] = _("La conclusion est obligatoire.")
    requester_code = version.case.requester.profession_id
    if (version.treatments.strip() and requester_code not in _NO_JUSTIFICATION_NEEDED
            and not version.prescription_justification.strip()):
        errors["prescription_justification"] = _(
            "Le requérant n'est ni médecin ni sage-femme : justifiez que les données transmises étaient complètes "
            "pour proposer ce traitement.")
    if version.orientation in (ReportVersion.Orientation.CONSULTATION, ReportVersion.Orientation.TELECONSULTATION) \
            and version.consultation_at is None:
        errors["consultation_at"] = _("Indiquez la date de la consultation que vous fixez.")
    if version.number > 1 and not version.amendment_reason.strip():
        errors["amendment_reason"] = _("Indiquez le motif de la correction.")
    if errors:
        raise ValidationError(errors)


def report_sign(*, actor: Actor, case_id, ip=None) -> ReportVersion:
    """Sign the current draft: it becomes immutable; the first signature answers the case."""
    with transaction.atomic():
        case = lock_case(case_id)
        action = _writing_action(case)
        workflow.check(actor, case, action)
        draft = report_draft_for(case)
        if draft is None:
            raise WorkflowError(_("Aucun brouillon de compte-rendu à signer."))
        report_validate(draft)
        now = timezone.now()
        ReportVersion.objects.filter(pk=draft.pk, status=ReportVersion.Status.DRAFT).update(
            status=ReportVersion.Status.SIGNED, signed_at=now)
        draft.status, draft.signed_at = ReportVersion.Status.SIGNED, now
        audit_log(actor=actor.user, action="report.sign", kind=AuditEvent.Kind.EXECUTE, obj=draft, case=case, ip=ip,
                  summary=_("Compte-rendu signé, version %(n)s") % {"n": draft.number})
        _schedule_pdf(draft)
        if action == "answer":
            case_answer(actor=actor, case_id=case.pk, ip=ip)  # notifies the requester
            billing_records_create_for_report(actor=actor, case=case, version=draft, ip=ip)  # TE2, RQD
        else:
            notify(users=[case.requester.user], case=case, verb=_("compte-rendu corrigé : nouvelle version signée"))
            case_event_emit(case=case, action="amend_report", occurred_at=now)
    return draft


def _schedule_pdf(version: ReportVersion) -> None:
    """A pending PDF row and its rendering job, which runs once the surrounding transaction commits."""
    RenderedReport.objects.update_or_create(version=version, defaults={
        "status": RenderedReport.Status.PENDING, "error": ""})
    enqueue(render_report_pdf, version.pk)


def report_pdf_retry(*, actor: Actor, version: ReportVersion, ip=None) -> None:
    """Render again a PDF that failed (or was never made): for the case's requester and expert."""
    if not {workflow.REQUESTER, workflow.EXPERT} & workflow.roles_for(actor, version.case):
        raise WorkflowError(_("Seuls le requérant et l'expert peuvent relancer la génération du PDF."))
    if not version.is_signed:
        raise WorkflowError(_("Seules les versions signées ont un PDF."))
    with transaction.atomic():
        rendered = RenderedReport.objects.select_for_update().filter(version=version).first()
        if rendered is not None and rendered.status != RenderedReport.Status.FAILED:
            return  # ready or already on its way
        _schedule_pdf(version)
        audit_log(actor=actor.user, action="report.pdf_retry", kind=AuditEvent.Kind.EXECUTE, obj=version,
                  case=version.case, ip=ip, summary=_("Génération du PDF relancée, version %(n)s") % {
                      "n": version.number})


def report_dmp_retry(*, actor: Actor, version: ReportVersion, ip=None) -> None:
    """File again, for the DMP, a version whose filing failed: for the case's requester and expert."""
    if not {workflow.REQUESTER, workflow.EXPERT} & workflow.roles_for(actor, version.case):
        raise WorkflowError(_("Seuls le requérant et l'expert peuvent relancer le versement au DMP."))
    with transaction.atomic():
        export = DmpExport.objects.select_for_update().filter(version=version).first()
        if export is None or not export.is_failed:
            return  # written, or already on its way
        if not dmp.outbox_enabled():
            raise WorkflowError(_("Le versement au DMP n'est pas activé sur cette plateforme."))
        DmpExport.objects.filter(pk=export.pk).update(status=DmpExport.Status.PENDING, error="", reason="")
        enqueue(export_report_to_dmp, version.pk)
        audit_log(actor=actor.user, action="report.dmp_retry", kind=AuditEvent.Kind.EXECUTE, obj=version,
                  case=version.case, ip=ip, summary=_("Versement au DMP relancé, version %(n)s") % {
                      "n": version.number})
def report_delivery_retry(*, actor: Actor, delivery: ReportDelivery, ip=None) -> None:
    """Send again a delivery that failed (after the cause is fixed: an address corrected, the relay back)."""
    case = delivery.version.case
    if not {workflow.REQUESTER, workflow.EXPERT} & workflow.roles_for(actor, case):
        raise WorkflowError(_("Seuls le requérant et l'expert peuvent relancer l'envoi du compte-rendu."))
    with transaction.atomic():
        # The lease is kept: a job sending this row right now finishes, and ours then finds nothing to do.
        requeued = ReportDelivery.objects.filter(pk=delivery.pk, status=ReportDelivery.Status.FAILED).update(
            status=ReportDelivery.Status.QUEUED, permanent_error=False)
        if not requeued:
            return  # sent meanwhile, or already on its way
        audit_log(actor=actor.user, action="report.delivery_retry", kind=AuditEvent.Kind.EXECUTE, obj=delivery,
                  case=case, ip=ip, summary=_("Version %(n)s à %(name)s (%(channel)s)") % {
                      "n": delivery.version.number, "name": delivery.recipient.display_name,
                      "channel": delivery.get_channel_display()})
        enqueue(send_report_delivery, delivery.pk)


def report_pdf_rewrap(*, to_key_id: str | None = None) -> tuple[int, list[dict]]:
    """Re-wrap the data key of every stored report PDF (key rotation); returns (changed, counts per key id)."""
    changed = 0
    for rendered in RenderedReport.objects.filter(status=RenderedReport.Status.READY).iterator(chunk_size=500):
        key_id, wrapped = storage.rewrap(storage.blob_of(rendered), to_key_id=to_key_id)
        if key_id != rendered.key_id or wrapped != bytes(rendered.wrapped_key):
            RenderedReport.objects.filter(pk=rendered.pk).update(key_id=key_id, wrapped_key=wrapped)
            changed += 1
    counts = (RenderedReport.objects.filter(status=RenderedReport.Status.READY).values("key_id")
              .annotate(n=Count("pk")).order_by("key_id"))
    return changed, list(counts)


def report_pdf_read(*, user, version: ReportVersion, ip=None) -> bytes | None:
    """The decrypted PDF of a version whose PDF is ready, read whole so that a failed integrity check never sends
    half a file; None when that check fails (logged and audited, for the web page and the API alike)."""
    try:
        return b"".join(storage.read_all_verified(storage.blob_of(version.pdf)))
    except (storage.IntegrityError, ImproperlyConfigured) as exc:
        logger.error("report pdf unreadable", extra={"version": str(version.pk), "error": str(exc)})
        audit_log(actor=user, action="report.pdf_integrity_error", kind=AuditEvent.Kind.EXECUTE, obj=version,
                  case=version.case, ip=ip, summary=exc.__class__.__name__)
        return None
