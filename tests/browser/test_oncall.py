"""Synchronous on-call tele-expertise in headless Chromium: the on-call cardiologist sees the GP's urgent request
appear in their inbox without reloading, acknowledges it, and answers; the GP's open case page follows each step
by itself (polling of the case's live endpoint, static/js/live.js), and both see the video link.
"""

import re
from datetime import timedelta

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from django.utils import timezone

from teleexpertise.cases.models import Case
from teleexpertise.directory.models import Network, NetworkMembership, OnCallShift
from tests.browser.test_journey import CASE_URL, expect_flash, expect_state, fill_request, sign_in, take_action
from tests.factories import Cast, make_professional, nir

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

QUESTION = "Douleur thoracique depuis 40 minutes, ECG joint : sus-décalage en inférieur ?"
ANSWER = "Sus-décalage du segment ST en DII, DIII, aVF : syndrome coronarien aigu probable."
CONCLUSION = "Appel du SAMU (15) maintenant pour une coronarographie en urgence."
VIDEO = "https://visio.example.fr/{case_reference}"


def _cardiology(cast):
    network = Network.objects.create(name="Cardiologie", specialty_id="SM04", organisation=cast.hospital)
    cardiologist = make_professional("cardio@test.fr", specialty="SM04", first="Claire", last="Cardio",
                                     organisation=cast.hospital)
    NetworkMembership.objects.create(network=network, professional=cardiologist)
    NetworkMembership.objects.create(network=network, professional=cast.dispatcher, role="dispatcher")
    start = timezone.localtime() - timedelta(hours=2)  # a slot running now (may cross midnight)
    OnCallShift.objects.create(network=network, weekday=start.weekday(), starts_at=start.time(),
                               ends_at=(start + timedelta(hours=4)).time(), expert=cardiologist)
    return network, cardiologist


def test_urgent_synchronous_request_reaches_the_on_call_cardiologist_live(new_page, totp, settings):
    settings.LIVE_POLL_SECONDS = 1
    settings.VIDEO_URL_TEMPLATE = VIDEO
    cast = Cast()
    network, cardiologist = _cardiology(cast)
    secrets = {"gp": generate_totp_secret(), "cardio": generate_totp_secret()}
    TOTP.activate(cast.requester.user, secrets["gp"])
    TOTP.activate(cardiologist.user, secrets["cardio"])

    # The cardiologist on call has the inbox open; nothing waits yet.
    cardio = new_page("cardiologist")
    sign_in(cardio, cardiologist.user.email, secrets["cardio"], totp)
    cardio.get_by_role("navigation", name="Boîtes").get_by_role("link", name="À traiter").click()
    cardio.wait_for_url(re.compile(r"/cases/\?box=todo"))
    expect(cardio.locator("#inbox-rows")).to_contain_text("Aucune demande.")

    # The GP sends an urgent synchronous request to the cardiology network.
    gp = new_page("gp")
    sign_in(gp, cast.requester.user.email, secrets["gp"], totp)
    gp.get_by_role("link", name="Nouvelle demande").click()
    fill_request(gp, ins=nir(sex="1"), question=QUESTION)
    select = gp.get_by_label("Réseau", exact=True)
    select.select_option(label=select.locator("option", has_text="Cardiologie").inner_text().strip())
    gp.get_by_role("radio", name="Urgente", exact=True).check()
    gp.get_by_role("radio", name="Synchrone (immédiate)", exact=True).check()
    gp.get_by_role("button", name="Envoyer la demande").click()
    gp.wait_for_url(CASE_URL)
    case = Case.objects.get()
    assert (case.expert, case.oncall_stage) == (cardiologist, Case.OncallStage.EXPERT)
    expect_flash(gp, "Demande envoyée à Dr Claire CARDIO")
    expect(gp.locator("dl.facts")).to_contain_text("Accusé de réception attendu de Dr Claire CARDIO")
    expect(gp.get_by_role("link", name="Rejoindre la visioconférence")).to_have_attribute(
        "href", f"https://visio.example.fr/{case.reference}")

    # Without reloading, the cardiologist's inbox shows it, and says an acknowledgement is expected.
    row = cardio.get_by_role("row", name=re.compile(case.reference))
    expect(row).to_be_visible()
    expect(row).to_contain_text("Astreinte : accusé de réception attendu")
    expect(cardio.locator("#live-status")).to_have_text("1 demande synchrone attend votre accusé de réception.")
    row.get_by_role("link", name=case.reference, exact=True).click()
    cardio.wait_for_url(CASE_URL)
    expect(cardio.get_by_role("link", name="Rejoindre la visioconférence")).to_be_visible()
    take_action(cardio, "Accuser réception (astreinte)")
    expect_flash(cardio, "Réception accusée : le requérant est prévenu")
    expect_state(cardio, "Prise en charge")

    # The GP's page follows by itself.
    expect_state(gp, "Prise en charge")
    expect(gp.locator("dl.facts")).to_contain_text("Réception accusée par Dr Claire CARDIO")

    # The cardiologist accepts and answers; the GP sees the signed report appear.
    def deadline(page):
        page.get_by_label("Délai de réponse").select_option(index=0)
        page.get_by_label("Le patient sera informé de ce délai").check()

    take_action(cardio, "Accepter (fixer le délai de réponse)", fill=deadline)
    expect_state(gp, "Acceptée")
    cardio.get_by_role("link", name="Rédiger et signer le compte-rendu").click()
    cardio.get_by_label("Réponse à la question posée").fill(ANSWER)
    cardio.get_by_label("Conclusion", exact=True).fill(CONCLUSION)
    cardio.get_by_label("Je signe ce compte-rendu").check()
    cardio.get_by_role("button", name="Signer le compte-rendu").click()
    cardio.wait_for_url(CASE_URL)
    expect_state(cardio, "Répondue")

    expect_state(gp, "Répondue")
    report = gp.get_by_role("region", name="Compte-rendu de téléexpertise")
    expect(report).to_contain_text(ANSWER)
    expect(report).to_contain_text(CONCLUSION)
    assert gp.evaluate("performance.getEntriesByType('navigation').length") == 1  # never reloaded
    assert gp.evaluate("performance.getEntriesByType('navigation')[0].type") == "navigate"
