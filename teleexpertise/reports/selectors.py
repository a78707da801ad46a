import uuid

from django.db.models import Prefetch

from teleexpertise.cases import workflow
from teleexpertise.core.compiled import CompiledQuery
from teleexpertise.reports.models import PatientAccessLink, ReportDelivery, ReportVersion


def report_versions(case):
    """All versions of a case's report, newest first, with their PDF and deliveries (two queries in all);
    drafts are filtered out by the caller's role."""
    deliveries = ReportDelivery.objects.select_related("recipient").order_by("created_at", "address")
    return (ReportVersion.objects.filter(case=case)
            .select_related("author__profession", "author__specialty", "rendered", "dmp_export")
            .prefetch_related(Prefetch("deliveries", queryset=deliveries)).order_by("-number"))


# The same rows, for the API's case answer after every action: compiled once (core/compiled.py).
_report_versions = CompiledQuery(lambda case: report_versions(case), case=uuid.UUID)


def report_versions_list(case) -> list[ReportVersion]:
    return _report_versions.all(case=case.pk)


def treating_doctor_unreached(patient) -> str:
    """The treating doctor's name when reports cannot be sent to them (outside the directory, or no address
    known), for the case page to say so; "" otherwise. No query: the account's e-mail is its login."""
    doctor = patient.treating_doctor
    if doctor is None:
        return patient.treating_doctor_name
    return "" if doctor.mssante_email or doctor.user_id else doctor.display_name


def latest_signed_version(case, *, for_patient: bool = False) -> ReportVersion | None:
    """The version in force: the last signed one (an amendment replaces the previous text)."""
    related = ["rendered"]
    if for_patient:  # the patient page names who answered and who asked
        related += ["author__profession", "author__specialty", "author__organisation", "case__requester",
                    "case__patient"]
    return (ReportVersion.objects.filter(case=case, status=ReportVersion.Status.SIGNED)
            .select_related(*related).order_by("-number").first())


def patient_links_for(case, roles) -> list[PatientAccessLink] | None:
    """The case's patient links, for its requester only (None: the page shows no patient-access panel)."""
    if workflow.REQUESTER not in roles:
        return None
    return list(PatientAccessLink.objects.filter(case=case).select_related("revoked_by").order_by("-created_at"))
