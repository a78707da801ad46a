"""The main journey in headless Chromium, entirely through the UI, each person in their own browser.

The requester (a GP) signs in and enrols the TOTP second factor, mistypes the NIR key once (French error, nothing
typed is lost), sends a request to the Dermatologie network and signs out. The dermatologist signs in with a
code from their authenticator, claims the case from the shared queue and asks for more information; the
requester signs in again and answers; the expert accepts with a deadline, writes and signs the report; the
requester closes the case, whose history lists every step. The case page is finally checked at phone width.
"""

import re

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret

from teleexpertise.cases.models import Case
from tests.factories import PASSWORD, Cast, nir

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS_PHONE = "test-artifacts/case-phone.png"
CASE_URL = re.compile(r"/cases/[0-9a-f-]{36}/$")
QUESTION = "Lésion pigmentée du dos, asymétrique, qui a grossi en trois mois : faut-il une exérèse ?"
CONTEXT = "Antécédent familial de mélanome. Pas de traitement en cours."
INFO_REQUEST = "Pouvez-vous joindre une photo dermoscopique et la taille exacte de la lésion ?"
INFO_ANSWER = "Lésion de 7 mm, bords irréguliers ; photo dermoscopique faite ce jour, jointe au dossier."
REPORT_ANSWER = "Aspect compatible avec un naevus atypique ; pas de signe de mélanome invasif."
REPORT_CONCLUSION = "Exérèse à visée diagnostique conseillée, sans urgence."
HISTORY = [  # audit action (data-action) and the label the timeline shows for it
    ("case.create", "Brouillon de demande créé"),
    ("case.submit", "Demande envoyée"),
    ("case.claim", "Prise en charge depuis la file partagée"),
    ("case.request_information", "Compléments demandés"),
    ("case.provide_information", "Compléments fournis"),
    ("case.accept", "Acceptée, délai de réponse fixé"),
    ("report.sign", "Compte-rendu signé"),
    ("case.answer", "Répondue"),
    ("case.close", "Clôturée"),
]


# --- Small steps, as a person does them ----------------------------------------------------------------

def sign_in_with_password(page, email):
    page.goto("/accounts/login/")
    expect(page.get_by_role("heading", name="Connexion", level=1)).to_be_visible()
    page.get_by_label(re.compile(r"courriel|e-mail", re.IGNORECASE)).fill(email)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()


def sign_in(page, email, secret, totp):
    """Password, then the code of the authenticator app at allauth's second step."""
    sign_in_with_password(page, email)
    page.wait_for_url("**/accounts/2fa/authenticate/")
    expect(page.get_by_role("heading", name="Authentification à deux facteurs")).to_be_visible()
    page.get_by_label("Code").fill(totp.code(secret))
    page.get_by_role("button", name="Connexion").click()
    page.wait_for_url(re.compile(r"/cases/(\?.*)?$"))
    expect(page.get_by_role("heading", name="Boîte de réception", level=1)).to_be_visible()


def enrol_totp(page, totp) -> str:
    """The first sign-in: the mandatory second factor sends the user to enrol; the secret is read on the page."""
    # Straight to enrolment: the password just typed is not asked again (AccountAdapter.is_reauthentication_required).
    page.wait_for_url("**/accounts/2fa/totp/activate/")
    expect(page.get_by_role("heading", name=re.compile("Activer"), level=1)).to_be_visible()
    secret = page.get_by_label("Secret d'authentification").input_value()
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    page.get_by_label("Code de l'authentificateur").fill(totp.code(secret, consume=False))
    page.get_by_role("button", name="Activer").click()
    page.wait_for_url("**/accounts/2fa/recovery-codes/")
    expect(page.get_by_role("heading", name="Codes de récupération", level=1)).to_be_visible()
    return secret


def sign_out(page):
    page.get_by_role("button", name="Se déconnecter").click()
    page.wait_for_url("**/accounts/login/")
    expect(page.get_by_role("heading", name="Connexion", level=1)).to_be_visible()


def open_case_from_inbox(page, tab, reference):
    page.get_by_role("navigation", name="Boîtes").get_by_role("link", name=tab).click()
    page.wait_for_url(re.compile(r"/cases/\?box="))
    expect(page.get_by_role("row", name=re.compile(reference))).to_be_visible()
    page.get_by_role("link", name=reference, exact=True).click()
    page.wait_for_url(CASE_URL)
    expect(page.get_by_role("heading", name=re.compile(f"Demande {reference}"), level=1)).to_be_visible()


def expect_state(page, label):
    expect(page.locator("#case-title .state")).to_have_text(label)


def expect_flash(page, text):
    expect(page.get_by_role("status")).to_contain_text(text)


def take_action(page, link_label, *, fill=None):
    """From the case page: the action's link, its small form, « Confirmer : … », back on the case page."""
    case_url = page.url
    page.get_by_role("link", name=link_label, exact=True).click()
    expect(page.get_by_role("heading", name=link_label, level=1)).to_be_visible()
    if fill is not None:
        fill(page)
    page.get_by_role("button", name=f"Confirmer : {link_label}").click()
    page.wait_for_url(case_url)


def answer_closing_survey(page):
    page.get_by_role("group", name=re.compile("vous a-t-il été utile")).get_by_label("Oui").check()
    page.get_by_label("Consultation en présentiel").check()


def thread_items(page):
    return page.get_by_role("region", name="Échanges").get_by_role("listitem")


def fill_request(page, *, ins, question):
    page.get_by_label("Matricule INS").fill(ins)
    page.get_by_label("Nom de naissance").fill("DURAND")
    page.get_by_label("Prénoms de naissance").fill("Marie Claire")
    page.get_by_label("Date de naissance").fill("1984-05-12")
    page.get_by_role("radio", name="Féminin", exact=True).check()
    page.get_by_label("Code INSEE du lieu de naissance").fill("75123")
    page.get_by_label("Statut de l'identité").select_option(label="Identité validée")
    page.get_by_role("radio", name="Recueilli", exact=True).check()
    page.get_by_label("J'ai expliqué l'intérêt de la téléexpertise").check()
    page.get_by_label("J'ai expliqué son déroulement").check()
    page.get_by_label("J'ai rappelé le droit de refuser").check()
    page.get_by_role("radio", name="Un réseau (file partagée)").check()
    network = page.get_by_label("Réseau", exact=True)
    network.select_option(label=network.locator("option", has_text="Dermatologie").inner_text().strip())
    page.get_by_label("Question posée à l'expert").fill(question)
    page.get_by_label("Contexte clinique").fill(CONTEXT)


def wrong_key(value: str) -> str:
    key = int(value[-2:])
    return f"{value[:-2]}{key % 97 + 1:02d}"


# --- The journey ---------------------------------------------------------------------------------------

def test_request_answered_and_closed_through_the_ui(new_page, totp):
    cast = Cast()
    expert_secret = generate_totp_secret()
    TOTP.activate(cast.expert.user, expert_secret)  # the expert enrolled earlier, on another day
    requester = new_page("requester")
    expert = new_page("expert")

    # The requester's first sign-in: password, then the mandatory enrolment of the authenticator app.
    sign_in_with_password(requester, cast.requester.user.email)
    requester_secret = enrol_totp(requester, totp)
    assert Authenticator.objects.filter(user=cast.requester.user, type=Authenticator.Type.TOTP).exists()

    # A new request; a mistyped NIR key is refused in French and nothing typed is lost.
    requester.get_by_role("link", name="Nouvelle demande").click()
    requester.wait_for_url("**/cases/new/")
    expect(requester.get_by_role("heading", name="Nouvelle demande de téléexpertise", level=1)).to_be_visible()
    good_nir = nir(sex="2")
    bad_nir = wrong_key(good_nir)
    fill_request(requester, ins=bad_nir, question=QUESTION)
    requester.get_by_role("button", name="Envoyer la demande").click()
    alert = requester.get_by_role("alert")
    expect(alert).to_contain_text("Rien n'a été enregistré")
    expect(alert).to_contain_text("La clé du matricule INS (NIR) ne correspond pas : vérifiez chaque chiffre.")
    expect(requester.locator("#id_ins_nir_error")).to_contain_text("La clé du matricule INS (NIR) ne correspond pas")
    expect(requester.get_by_label("Question posée à l'expert")).to_have_value(QUESTION)
    expect(requester.get_by_label("Contexte clinique")).to_have_value(CONTEXT)
    expect(requester.get_by_label("Matricule INS")).to_have_value(bad_nir)
    expect(requester.get_by_label("Nom de naissance")).to_have_value("DURAND")
    expect(requester.get_by_role("radio", name="Recueilli", exact=True)).to_be_checked()
    expect(requester.get_by_label("J'ai rappelé le droit de refuser")).to_be_checked()
    expect(requester.get_by_label("Réseau", exact=True).locator("option:checked")).to_contain_text("Dermatologie")
    assert not Case.objects.exists()

    requester.get_by_label("Matricule INS").fill(good_nir)
    requester.get_by_role("button", name="Envoyer la demande").click()
    requester.wait_for_url(CASE_URL)
    case_url = requester.url
    case = Case.objects.get()
    reference = case.reference
    expect_flash(requester, "Demande envoyée à Dermatologie")
    expect(requester.get_by_role("heading", name=re.compile(f"Demande {reference}"), level=1)).to_be_visible()
    expect_state(requester, "Envoyée")
    expect(requester.locator(".question")).to_have_text(QUESTION)
    expect(requester.locator("dl.facts")).to_contain_text("DURAND Marie")
    expect(requester.locator("dl.facts")).to_contain_text("Recueilli (Le patient)")
    sign_out(requester)

    # The dermatologist: sign-in with the second factor, the shared queue, claim, ask for more information.
    sign_in(expert, cast.expert.user.email, expert_secret, totp)
    open_case_from_inbox(expert, "File partagée", reference)
    expect_state(expert, "Envoyée")
    take_action(expert, "Prendre en charge")
    expect_flash(expert, f"Vous avez pris en charge la demande — {reference}")
    expect_state(expert, "Prise en charge")
    expect(expert.locator("dl.facts")).to_contain_text("Dr Anne DERMATO")
    take_action(expert, "Demander des compléments",
                fill=lambda p: p.get_by_label("Compléments attendus").fill(INFO_REQUEST))
    expect_flash(expert, "Demande de compléments envoyée au requérant")
    expect_state(expert, "Compléments demandés")
    expect(thread_items(expert).filter(has_text=INFO_REQUEST)).to_contain_text("Demande de compléments")

    # The requester signs in again (code from the app this time), reads the request and answers it.
    sign_in(requester, cast.requester.user.email, requester_secret, totp)
    open_case_from_inbox(requester, "Mes demandes", reference)
    assert requester.url == case_url
    expect_state(requester, "Compléments demandés")
    expect(thread_items(requester).filter(has_text=INFO_REQUEST)).to_have_count(1)
    take_action(requester, "Répondre à la demande de compléments",
                fill=lambda p: p.get_by_label("Votre réponse à l'expert").fill(INFO_ANSWER))
    expect_flash(requester, "Compléments envoyés à l'expert")
    expect_state(requester, "Prise en charge")
    expect(thread_items(requester).filter(has_text=INFO_ANSWER)).to_contain_text("Réponse aux compléments")

    # The expert sees the answer, accepts with a deadline, writes and signs the report.
    expert.reload()
    expect_state(expert, "Prise en charge")
    expect(thread_items(expert).filter(has_text=INFO_ANSWER)).to_have_count(1)

    def deadline(p):
        p.get_by_label("Délai de réponse").select_option(label="3 jours")
        p.get_by_label("Le patient sera informé de ce délai").check()

    take_action(expert, "Accepter (fixer le délai de réponse)", fill=deadline)
    expect_flash(expert, "Demande acceptée")
    expect_state(expert, "Acceptée")
    expect(expert.locator("dl.facts")).to_contain_text("patient informé du délai")
    expert.get_by_role("link", name="Rédiger et signer le compte-rendu").click()
    expect(expert.get_by_role("heading", name="Compte-rendu de téléexpertise", level=1)).to_be_visible()
    expert.get_by_label("Réponse à la question posée").fill(REPORT_ANSWER)
    expert.get_by_label("Conclusion", exact=True).fill(REPORT_CONCLUSION)
    expert.get_by_label("Je signe ce compte-rendu").check()
    expert.get_by_role("button", name="Signer le compte-rendu").click()
    expert.wait_for_url(case_url)
    expect_flash(expert, "Compte-rendu signé (version 1).")
    expect_state(expert, "Répondue")
    report = expert.get_by_role("region", name="Compte-rendu de téléexpertise")
    expect(report.get_by_role("heading", level=3)).to_have_text(
        re.compile(r"Version 1 — signée le .+ par Dr Anne DERMATO"))

    # The requester reads the signed report and closes the case.
    requester.reload()
    expect_state(requester, "Répondue")
    report = requester.get_by_role("region", name="Compte-rendu de téléexpertise")
    expect(report.get_by_role("article")).to_have_count(1)
    expect(report.get_by_role("heading", level=3)).to_have_text(
        re.compile(r"Version 1 — signée le .+ par Dr Anne DERMATO"))
    expect(report).to_contain_text(REPORT_ANSWER)
    expect(report).to_contain_text(REPORT_CONCLUSION)
    take_action(requester, "Clôturer (compte-rendu reçu)", fill=answer_closing_survey)
    expect_flash(requester, f"Demande clôturée — {reference}")
    expect_state(requester, "Clôturée")
    expect(requester.get_by_role("link", name="Clôturer (compte-rendu reçu)")).to_have_count(0)

    # The history lists every step, in order, with readable labels and who did it.
    history = requester.get_by_role("region", name="Historique", exact=True).get_by_role("list").first
    items = history.get_by_role("listitem")
    expect(items.last).to_contain_text("Questionnaire de clôture")
    expect(items.nth(-2)).to_contain_text("Clôturée par le requérant")
    rows = items.evaluate_all(
        "items => items.map(li => [li.querySelector('[data-action]')?.dataset.action || '', li.innerText])")
    steps = {action: text for action, text in rows if action in dict(HISTORY)}
    assert [action for action, _ in rows if action in steps] == [action for action, _ in HISTORY], rows
    for action, label in HISTORY:
        assert label in steps[action], (action, steps[action])
    assert "Anne Dermato" in steps["case.claim"] and "Paul Généraliste" in steps["case.close"], rows

    # At phone width the case page fits: no horizontal scrolling.
    phone = requester.context.new_page()
    phone.set_viewport_size({"width": 360, "height": 740})
    phone.goto(case_url)
    expect_state(phone, "Clôturée")
    phone.screenshot(path=_artifact(ARTIFACTS_PHONE), full_page=True)
    scroll_width = phone.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= 364, f"the case page scrolls sideways at 360 px: scrollWidth = {scroll_width}"


def _artifact(relative: str) -> str:
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / relative
    path.parent.mkdir(exist_ok=True)
    return str(path)
