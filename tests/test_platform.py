"""Settings, health check, identifiers: the platform's own ground rules."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from teleexpertise.directory.identifiers import validate_adeli, validate_finess, validate_rpps
from teleexpertise.patients.identity import normalise_nir
from tests.factories import luhn_number, nir


def _import_settings(**env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "DOCUMENT_MASTER_KEYS")}
    return subprocess.run([sys.executable, "-c", "import teleexpertise.settings"], env={**clean, **env},
                          capture_output=True, text=True, timeout=60)


def test_production_refuses_the_development_secret_key():
    result = _import_settings(DEBUG="0", ALLOWED_HOSTS="te.example.fr")
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr


def test_production_refuses_empty_allowed_hosts():
    result = _import_settings(**{**PRODUCTION, "ALLOWED_HOSTS": ""})
    assert result.returncode != 0 and "ALLOWED_HOSTS" in result.stderr


PRODUCTION = {"DEBUG": "0", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "te.example.fr",
              "DOCUMENT_MASTER_KEYS": "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}


def test_production_starts_when_configured():
    assert _import_settings(**PRODUCTION).returncode == 0


def test_a_server_process_imports_the_views_before_its_first_request():
    """The WSGI module loads the URLconf and the views (the FHIR models build their validators then): a worker's
    first request would otherwise pay for it."""
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    show = "import sys, teleexpertise.wsgi; print('teleexpertise.fhir.views' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", show], env={**clean, **PRODUCTION}, capture_output=True,  # noqa: S603
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True"


def test_a_random_page_cost_that_is_not_a_number_is_refused_at_start():
    result = _import_settings(**PRODUCTION, DATABASE_URL="postgres://u@127.0.0.1:5432/x", DB_RANDOM_PAGE_COST="low")
    assert result.returncode != 0 and "DB_RANDOM_PAGE_COST" in result.stderr


@pytest.mark.django_db
def test_the_random_page_cost_reaches_the_platforms_postgresql_connections():
    """Set for the platform's connections only: the server's own setting is left as it is."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    show = ("import django; django.setup(); from django.db import connection; c = connection.cursor(); "
            "c.execute('SHOW random_page_cost'); print(c.fetchone()[0])")
    clean = {k: v for k, v in os.environ.items() if k not in ("DB_RANDOM_PAGE_COST", "DB_PREPARED_STATEMENTS")}

    def shown(**env):
        result = subprocess.run([sys.executable, "-c", show], capture_output=True, text=True, timeout=60,  # noqa: S603
                                env={**clean, "DJANGO_SETTINGS_MODULE": "teleexpertise.settings", "DEBUG": "1",
                                     "DATABASE_URL": url, **env})
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    assert shown(DB_RANDOM_PAGE_COST="1.1") == "1.1"
    assert shown(DB_RANDOM_PAGE_COST="1.1", DB_PREPARED_STATEMENTS="1") == "1.1"
    with connection.cursor() as cursor:
        cursor.execute("SHOW random_page_cost")
        assert shown() == cursor.fetchone()[0]  # unset: the server's


def test_production_refuses_to_start_without_a_document_master_key():
    result = _import_settings(**{**PRODUCTION, "DOCUMENT_MASTER_KEYS": ""})
    assert result.returncode != 0 and "DOCUMENT_MASTER_KEYS" in result.stderr


def test_malformed_boolean_setting_fails_loudly():
    result = _import_settings(DEBUG="maybe")
    assert result.returncode != 0 and "DEBUG must be a boolean" in result.stderr


def test_healthz_reports_database_and_job_queue(client, db):
    response = client.get(reverse("healthz"))
    body = response.json()
    assert response.status_code == 200 and body["status"] == "ok"
    assert body["database"]["status"] == "ok" and body["jobs"]["status"] == "ok"
    assert isinstance(body["jobs"]["pending"], int)


def test_nir_key_and_corsica():
    assert normalise_nir(nir(place="2A004")).startswith("1")
    assert len(normalise_nir(nir(place="2B033"))) == 15
    assert normalise_nir("2 84 05 75 123 456 " + nir(sex="2", yymm="8405", place="75123", order="456")[-2:])
    good = nir()
    bad = good[:-2] + f"{(int(good[-2:]) + 1) % 97:02d}"
    with pytest.raises(ValidationError, match="clé"):
        normalise_nir(bad)
    with pytest.raises(ValidationError, match="15 caractères"):
        normalise_nir("12345")


@pytest.mark.parametrize(("validator", "value"), [(validate_rpps, luhn_number("10", 11)),
                                                  (validate_adeli, luhn_number("75", 9)),
                                                  (validate_finess, luhn_number("75", 9))])
def test_national_identifiers_are_luhn_checked(validator, value):
    validator(value)
    wrong = value[:-1] + str((int(value[-1]) + 1) % 10)
    with pytest.raises(ValidationError):
        validator(wrong)
    with pytest.raises(ValidationError):
        validator(value[:-1])


@pytest.mark.parametrize(("validator", "value"), [(validate_rpps, luhn_number("10", 11)),
                                                  (validate_adeli, luhn_number("75", 9))])
def test_national_identifiers_take_ascii_digits_only(validator, value):
    """Other scripts' digits pass str.isdigit(): they are not an RPPS or ADELI number, whatever the key says."""
    arabic_indic = value.translate({ord(d): chr(0x0660 + int(d)) for d in "0123456789"})
    with pytest.raises(ValidationError, match="chiffres attendus"):
        validator(arabic_indic)


def test_only_doctors_and_midwives_may_be_experts(db):
    from teleexpertise.directory.models import Profession

    experts = set(Profession.objects.filter(may_be_expert=True).values_list("code", flat=True))
    assert experts == {"10", "50"}
    assert Profession.objects.get(code="60").label == "Infirmier"
    assert Profession.objects.count() >= 25


def test_security_headers(cast, client_for):
    response = client_for(cast.requester.user).get(reverse("cases:inbox"))
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]


def test_token_calls_go_past_the_browser_middleware(cast, client_for, api_for):
    """/api/ and /fhir/ carry no session, CSRF or message cookie, and a session cookie does not sign a call in:
    only the token does. The security headers still apply."""
    from django.conf import settings

    browser = client_for(cast.requester.user)
    assert browser.get("/api/cases").status_code == 401  # a signed-in browser without a token
    assert browser.get("/fhir/Task").status_code == 401
    response = api_for(cast.requester).get("/api/cases")
    assert response.status_code == 200
    assert not response.cookies
    assert not hasattr(response.wsgi_request, "session") and not hasattr(response.wsgi_request, "_messages")
    assert response["X-Content-Type-Options"] == "nosniff" and response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"] and "default-src 'self'" in response["Content-Security-Policy"]
    fhir = api_for(cast.requester).post("/fhir/Communication", "{}", content_type="application/fhir+json")
    assert fhir.status_code != 403 and not fhir.cookies  # no CSRF refusal: the token is the credential
    assert settings.SESSION_COOKIE_NAME not in fhir.cookies


def test_browser_pages_keep_sessions_csrf_and_the_second_factor(cast, client_for):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(cast.requester.user)
    session = strict.session
    session["mfa_enrolled"] = True
    session.save()
    assert strict.post(reverse("cases:inbox")).status_code == 403  # no CSRF token: refused
    page = client_for(cast.requester.user).get(reverse("cases:inbox"))
    assert page.status_code == 200 and page.wsgi_request.user == cast.requester.user
    unenrolled = Client()
    unenrolled.force_login(cast.requester.user)  # no TOTP device: sent to enrol, not shown the inbox
    assert unenrolled.get(reverse("cases:inbox")).status_code == 302


def test_the_system_checks_pass(db):
    """What `manage.py serve` and `make run` run first: the admin, for one, looks for the session, user and
    message middleware by class (here wrapped by `core.middleware.browser_only`)."""
    from django.core.management import call_command

    call_command("check", fail_level="WARNING")
