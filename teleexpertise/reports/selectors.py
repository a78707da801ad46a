from django.db.models import Prefetch

from teleexpertise.reports.models import ReportDelivery, ReportVersion


def report_versions(case):
    """All versions of a case's report, newest first, with their PDF and deliveries (two queries in all);
    drafts are filtered out by the caller's role."""
    deliveries = ReportDelivery.objects.select_related("recipient").order_by("created_at", "address")
    return (ReportVersion.objects.filter(case=case)
            .select_related("author__profession", "author__specialty", "rendered", "dmp_export")
            .prefetch_related(Prefetch("deliveries", queryset=deliveries)).order_by("-number"))


def treating_doctor_unreached(patient) -> str:
    """The treating doctor's name when reports cannot be sent to them (outside the directory, or no address
    known), for the case page to say so; "" otherwise. No query: the account's e-mail is its login."""
    doctor = patient.treating_doctor
    if doctor is None:
        return patient.treating_doctor_name
    return "" if doctor.mssante_email or doctor.user_id else doctor.display_name
