"""The patient's link in headless Chromium: from the expert's signature to the patient reading the report.

The expert signs the report through the UI; the requester gives the patient access by e-mail from the case page;
the patient follows the link from the message in a browser of their own, mistypes their birth date once, then
reads the report in plain French and downloads its PDF. The page is checked at phone width.
"""

import re
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.core import mail

from teleexpertise.audit.models import AuditEvent
from teleexpertise.reports.models import PatientAccessLink
from tests.browser.test_journey import expect_flash, expect_state, sign_in
from tests.factories import Cast

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PATIENT_EMAIL = "marie.durand@example.fr"
ANSWER = "Aspect compatible avec un naevus atypique ; pas de signe de mélanome invasif."
CONCLUSION = "Exérèse à visée diagnostique conseillée, sans urgence."


def test_the_patient_opens_the_signed_report_from_the_link(new_page, totp, settings, live_server, tmp_path):
    settings.SITE_URL = live_server.url  # the link in the message leads to this server
    settings.DOCUMENT_ROOT = str(tmp_path / "documents")
    cast = Cast()
    case = cast.case_in("accepted")
    secrets = {who: generate_totp_secret() for who in ("expert", "requester")}
    TOTP.activate(cast.expert.user, secrets["expert"])
    TOTP.activate(cast.requester.user, secrets["requester"])
    case_url = case.get_absolute_url()

    # The expert writes and signs the report.
    expert = new_page("expert")
    sign_in(expert, cast.expert.user.email, secrets["expert"], totp)
    expert.goto(case_url)
    expert.get_by_role("link", name="Rédiger et signer le compte-rendu").click()
    expert.get_by_label("Réponse à la question posée").fill(ANSWER)
    expert.get_by_label("Conclusion", exact=True).fill(CONCLUSION)
    expert.get_by_label("Je signe ce compte-rendu").check()
    expert.get_by_role("button", name="Signer le compte-rendu").click()
    expert.wait_for_url(f"**{case_url}")
    expect_flash(expert, "Compte-rendu signé (version 1).")
    expect(expert.get_by_role("region", name="Accès du patient au compte-rendu")).to_have_count(0)

    # The requester gives the patient access by e-mail.
    requester = new_page("requester")
    sign_in(requester, cast.requester.user.email, secrets["requester"], totp)
    requester.goto(case_url)
    expect_state(requester, "Répondue")
    panel = requester.get_by_role("region", name="Accès du patient au compte-rendu")
    panel.get_by_role("radio", name="Courriel").check()
    panel.get_by_label("Adresse électronique ou numéro de mobile du patient").fill(PATIENT_EMAIL)
    panel.get_by_role("button", name="Envoyer le lien au patient").click()
    requester.wait_for_url(f"**{case_url}#patient-access-title")
    expect_flash(requester, f"Lien d'accès au compte-rendu envoyé au patient (Courriel : {PATIENT_EMAIL}).")
    row = panel.get_by_role("row", name=re.compile(PATIENT_EMAIL))
    expect(row).to_contain_text("Actif jusqu'au")
    expect(row.get_by_role("button", name=f"Révoquer le lien envoyé à {PATIENT_EMAIL}")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "patient-access-panel.png"))

    # The patient follows the link of the message in their own browser.
    [message] = [m for m in mail.outbox if m.to == [PATIENT_EMAIL]]
    link_url = re.search(r"https?://\S+/p/[A-Za-z0-9_-]+", message.body).group(0)
    assert link_url.startswith(live_server.url)
    patient = new_page("patient")
    response = patient.goto(link_url)
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "same-origin"
    expect(patient.get_by_role("heading", name="Votre compte-rendu de téléexpertise", level=1)).to_be_visible()
    expect(patient.locator("main")).not_to_contain_text("DURAND")
    birth_date = patient.get_by_role("group", name="Votre date de naissance")
    _type_birth_date(birth_date, "13", "05", "1984")
    patient.get_by_role("button", name="Accéder à mon compte-rendu").click()
    expect(patient.get_by_role("alert")).to_have_text(
        "Cette date de naissance ne correspond pas. Il vous reste 4 essais.")
    expect(patient.locator("main")).not_to_contain_text(ANSWER)
    patient.screenshot(path=str(ARTIFACTS / "patient-birth-date.png"), full_page=True)

    _type_birth_date(patient.get_by_role("group", name="Votre date de naissance"), "12", "05", "1984")
    patient.get_by_role("button", name="Accéder à mon compte-rendu").click()
    answer = patient.get_by_role("region", name="La réponse du spécialiste")
    expect(answer).to_contain_text(ANSWER)
    expect(patient.get_by_role("region", name="Conclusion")).to_contain_text(CONCLUSION)
    expect(patient.locator("dl.facts")).to_contain_text("DURAND Marie")
    expect(patient.locator("dl.facts")).to_contain_text("Dr Anne DERMATO")
    expect(patient.get_by_role("region", name="Et ensuite ?")).to_contain_text(
        "Votre médecin s'occupe de la suite avec vous.")
    pdf_link = patient.get_by_role("link", name="Télécharger le compte-rendu (PDF)")
    expect(pdf_link).to_be_visible()
    with patient.expect_download() as download_info:
        pdf_link.click()
    download = download_info.value
    assert download.suggested_filename == f"compte-rendu-{case.reference}-v1.pdf"
    assert Path(download.path()).read_bytes().startswith(b"%PDF")

    # At phone width the report fits without sideways scrolling.
    patient.set_viewport_size({"width": 360, "height": 740})
    patient.screenshot(path=str(ARTIFACTS / "patient-report-phone.png"), full_page=True)
    assert patient.evaluate("document.documentElement.scrollWidth") <= 364

    # Every step is in the audit trail, under the link.
    link = PatientAccessLink.objects.get()
    actions = list(AuditEvent.objects.filter(case_id=case.pk, action__startswith="patient_link.")
                   .order_by("at", "id").values_list("action", flat=True))
    assert actions == ["patient_link.create", "patient_link.open", "patient_link.verify_failed",
                       "patient_link.verify", "patient_link.report_view", "patient_link.pdf_download"], actions
    assert link.failed_attempts == 1 and link.last_access_at is not None


def _type_birth_date(group, day, month, year):
    group.get_by_label("Jour").fill(day)
    group.get_by_label("Mois").fill(month)
    group.get_by_label("Année").fill(year)
