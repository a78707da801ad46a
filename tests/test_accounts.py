"""Login by e-mail and password plus a mandatory TOTP second factor; lockout; idle expiry; reset by e-mail."""

import re

import pytest
from allauth.mfa.totp.internal.auth import (
    TOTP,
    format_hotp_value,
    generate_totp_secret,
    hotp_value,
    yield_hotp_counters_from_time,
)
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD


def _code(secret: str) -> str:
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))


def _login(client, email, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def test_first_login_requires_enrolling_a_second_factor(cast, settings):
    settings.DEMO_MODE = False
    client = Client()
    assert _login(client, "requester@test.fr").status_code == 302
    response = client.get(reverse("cases:inbox"))
    assert response.status_code == 302 and response["Location"] == reverse("mfa_activate_totp")
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    done = client.post(reverse("mfa_activate_totp"), {"code": _code(secret)})
    assert done.status_code == 302
    codes = client.get(reverse("mfa_view_recovery_codes"))
    assert codes.status_code == 200 and len(codes.context["unused_codes"]) >= 8
    assert client.get(reverse("cases:inbox")).status_code == 200


def test_login_with_totp_asks_for_the_code(cast, settings):
    settings.DEMO_MODE = False
    secret = generate_totp_secret()
    TOTP.activate(cast.expert.user, secret)
    client = Client()
    response = _login(client, "expert@test.fr")
    assert response.status_code == 302 and response["Location"] == reverse("mfa_authenticate")
    assert client.get(reverse("cases:inbox")).status_code == 302  # not signed in until the code is given
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.status_code == 200 and wrong.context["form"].errors
    assert client.post(reverse("mfa_authenticate"), {"code": _code(secret)}).status_code == 302
    assert client.get(reverse("cases:inbox")).status_code == 200


def test_demo_accounts_skip_the_second_factor_only_in_demo_mode(cast, settings):
    for demo_mode, expected in ((True, 200), (False, 302)):
        settings.DEMO_MODE = demo_mode
        client = Client()
        _login(client, "requester@test.fr")
        assert client.get(reverse("cases:inbox")).status_code == expected


def test_non_demo_account_needs_the_second_factor_even_in_demo_mode(cast, settings):
    settings.DEMO_MODE = True
    cast.requester.user.is_demo = False
    cast.requester.user.save(update_fields=["is_demo"])
    client = Client()
    _login(client, "requester@test.fr")
    assert client.get(reverse("cases:inbox"))["Location"] == reverse("mfa_activate_totp")


def test_repeated_failures_lock_the_account_with_a_clear_message(cast, settings):
    from django.core.cache import cache

    cache.clear()
    client = Client()
    for _ in range(settings.LOGIN_FAILURES_ALLOWED):
        assert _login(client, "expert@test.fr", "wrong password").status_code == 200
    locked = _login(client, "expert@test.fr")  # even the right password is refused now
    assert locked.status_code in (200, 429)
    assert "Trop de tentatives" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    cache.clear()


def test_sessions_expire_after_thirty_idle_minutes(cast, client_for, settings):
    assert settings.SESSION_COOKIE_AGE == 30 * 60 and settings.SESSION_SAVE_EVERY_REQUEST
    client = client_for(cast.requester.user)
    client.get(reverse("cases:inbox"))
    assert 29 * 60 < client.session.get_expiry_age() <= 30 * 60


def test_password_reset_by_email(cast):
    client = Client()
    response = client.post(reverse("account_reset_password"), {"email": "requester@test.fr"})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "requester@test.fr" in mail.outbox[0].to
    link = re.search(r"https?://\S+/accounts/password/reset/key/\S+", mail.outbox[0].body).group(0)
    path = link.split("testserver", 1)[-1]
    form = client.get(path, follow=True)
    assert form.status_code == 200
    new = "un nouveau mot de passe solide 2026"
    done = client.post(form.redirect_chain[-1][0] if form.redirect_chain else path,
                       {"password1": new, "password2": new})
    assert done.status_code == 302
    cast.requester.user.refresh_from_db()
    assert cast.requester.user.check_password(new)


def test_admin_login_goes_through_the_platform_login(cast):
    response = Client().get("/admin/login/")
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_no_self_signup(cast):
    response = Client().post(reverse("account_signup"), {"email": "new@test.fr", "password1": PASSWORD,
                                                         "password2": PASSWORD})
    assert response.status_code in (200, 302, 403)
    from teleexpertise.accounts.models import User

    assert not User.objects.filter(email="new@test.fr").exists()


@pytest.mark.parametrize("lang,text", [("fr", "Boîte de réception"), ("en", "Inbox")])
def test_ui_is_french_by_default_and_english_on_request(cast, client_for, lang, text):
    client = client_for(cast.requester.user)
    if lang == "en":
        client.post(reverse("set_language"), {"language": "en", "next": "/cases/"})
    page = client.get(reverse("cases:inbox"), HTTP_ACCEPT_LANGUAGE="en-US")
    assert text in page.content.decode()
