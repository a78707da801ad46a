from teleexpertise.cases import workflow
from teleexpertise.reports.models import PatientAccessLink, ReportVersion


def report_versions(case):
    """All versions of a case's report, newest first; drafts are filtered out by the caller's role."""
    return (ReportVersion.objects.filter(case=case)
            .select_related("author__profession", "author__specialty", "rendered").order_by("-number"))


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
