from teleexpertise.reports.models import ReportVersion


def report_versions(case):
    """All versions of a case's report, newest first; drafts are filtered out by the caller's role."""
    return (ReportVersion.objects.filter(case=case)
            .select_related("author__profession", "author__specialty", "rendered", "dmp_export").order_by("-number"))
