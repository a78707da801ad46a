"""`manage.py seed_demo`: a complete, valid demo data set, loaded once and never twice."""

from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from teleexpertise.accounts.models import User
from teleexpertise.audit.models import AuditEvent
from teleexpertise.cases.models import Case, ClosingSurvey, FollowUp
from teleexpertise.core import demo
from teleexpertise.core.management.commands import seed_demo
from teleexpertise.directory.identifiers import validate_adeli, validate_finess, validate_rpps
from teleexpertise.directory.models import Network, NetworkMembership, Organisation, Professional
from teleexpertise.messaging.models import Message, Notification
from teleexpertise.patients.identity import normalise_nir
from teleexpertise.patients.models import Patient
from teleexpertise.reports.models import ReportVersion

S = Case.State
COUNTED = (User, Professional, Organisation, Network, NetworkMembership, Patient, Case, AuditEvent, Message,
           Notification, ReportVersion)


def _counts() -> dict:
    return {model.__name__: model.objects.count() for model in COUNTED}


def _seed() -> str:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    return out.getvalue()


def test_seed_demo_twice(db):
    """One seeding (a few seconds) serves every check below; the second run must change nothing."""
    output = _seed()
    counts = _counts()
    again = _seed()
    assert _counts() == counts
    assert "rien n'a été modifié" in again
    for text in (output, again):
        assert "http://127.0.0.1:" in text and demo.ADMIN_EMAIL in text and demo.PASSWORD in text
        assert "DEMO_MODE" in text
    _check_directory()
    _check_patients_have_valid_ins()
    _check_cases_cover_the_whole_workflow()
    _check_history_is_spread_over_the_past()
    _check_prescriptions_for_pharmacists_are_justified()
    _check_seed_002_case()
    _check_documents_are_readable()
    _check_closing_surveys_and_follow_ups()


def _check_closing_surveys_and_follow_ups():
    closed = Case.objects.filter(state=S.CLOSED)
    assert ClosingSurvey.objects.filter(case__in=closed).count() == closed.count()
    assert set(ClosingSurvey.objects.values_list("usefulness", flat=True)) >= {"yes", "partly"}
    asked = FollowUp.objects.select_related("case")
    assert asked.filter(answered_at=None).exists() and asked.exclude(answered_at=None).exists()
    delay = timedelta(days=settings.FOLLOW_UP_DELAY_DAYS)
    for follow_up in asked:
        assert follow_up.requested_at == follow_up.case.closed_at + delay
        assert follow_up.answered_at is None or follow_up.requested_at < follow_up.answered_at < timezone.now()
    due = closed.filter(closed_at__lte=timezone.now() - delay)
    assert set(asked.values_list("case_id", flat=True)) == set(due.values_list("pk", flat=True))


def _check_documents_are_readable():
    from teleexpertise.documents import storage
    from teleexpertise.documents.models import Document
    from teleexpertise.documents.services import blob_of

    categories = set(Document.objects.values_list("category", flat=True))
    assert {"photo", "pdf", "dicom"} <= categories
    for document in Document.objects.all():
        assert sum(len(chunk) for chunk in storage.read_all_verified(blob_of(document))) == document.size


def _check_directory():
    assert Professional.objects.count() >= 12
    assert Network.objects.count() == 2
    for network in Network.objects.all():
        roles = list(network.memberships.values_list("role", flat=True))
        assert roles.count(NetworkMembership.Role.DISPATCHER) == 1 and roles.count(NetworkMembership.Role.MEMBER) >= 2
    for pro in Professional.objects.select_related("user"):
        if pro.rpps:
            validate_rpps(pro.rpps)
        else:
            validate_adeli(pro.adeli)
        assert pro.user.is_demo and pro.user.email.endswith("@demo.teleexpertise.fr")
        assert pro.mssante_email.endswith(".mssante.fr")
    for finess in Organisation.objects.exclude(finess=None).values_list("finess", flat=True):
        validate_finess(finess)
    assert Professional.objects.filter(profession_id="60", advanced_practice=True, adeli__isnull=False).exists()
    admin = User.objects.get(email=demo.ADMIN_EMAIL)
    assert admin.is_staff and admin.is_superuser and admin.is_demo
    assert admin.check_password(demo.PASSWORD)


def _check_patients_have_valid_ins():
    nirs = list(Patient.objects.values_list("ins_nir", flat=True))
    assert len(nirs) >= 25
    for nir in nirs:
        assert normalise_nir(nir) == nir
    assert any(nir[5:7] in ("2A", "2B") for nir in nirs)
    assert Patient.objects.filter(treating_doctor__isnull=False).count() > len(nirs) // 2


def _check_cases_cover_the_whole_workflow():
    assert Case.objects.count() >= 45
    assert set(Case.objects.values_list("state", flat=True)) == set(S.values)
    assert set(Case.objects.values_list("priority", flat=True)) == set(Case.Priority.values)
    assert Case.objects.filter(state=S.SUBMITTED, expert=None, network__isnull=False).exists()
    assert Case.objects.filter(state=S.SUBMITTED, expert__isnull=False).exists()
    assert Case.objects.filter(state=S.ACCEPTED, due_at__lt=timezone.now()).exists()
    assert Case.objects.filter(state=S.ACCEPTED, due_at__gt=timezone.now()).exists()
    requesters = set(Case.objects.values_list("requester__profession_id", flat=True))
    assert {"10", "21", "50", "60", "70"} <= requesters


def _check_history_is_spread_over_the_past():
    now = timezone.now()
    for model, fields in seed_demo._STAMPED:
        for name in fields:
            assert not model.objects.filter(**{f"{name}__gt": now}).exists(), (model.__name__, name)
    assert AuditEvent.objects.filter(at__lt=now - timedelta(days=45)).exists()
    assert Notification.objects.filter(read_at=None).exists() and Notification.objects.exclude(read_at=None).exists()
    for case in Case.objects.exclude(state=S.DRAFT):
        times = list(AuditEvent.objects.filter(case_id=case.pk).order_by("id").values_list("at", flat=True))
        assert times == sorted(times), case.question


def _check_prescriptions_for_pharmacists_are_justified():
    reports = ReportVersion.objects.filter(status=ReportVersion.Status.SIGNED, case__requester__profession_id="21")
    assert reports.exclude(treatments="").exists()
    assert not reports.exclude(treatments="").filter(prescription_justification="").exists()


def _check_seed_002_case():
    case = Case.objects.get(requester__specialty_id="SM41", expert__specialty_id="SM21",
                            question__icontains="leucocytose")
    assert case.state == S.ANSWERED
    assert case.report_versions.filter(status=ReportVersion.Status.SIGNED).exists()


def test_failure_leaves_nothing(db, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(seed_demo.DemoSeeder, "_step_close", broken)
    with pytest.raises(RuntimeError):
        _seed()
    assert not User.objects.exists() and not Case.objects.exists() and not AuditEvent.objects.exists()
