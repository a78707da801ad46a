"""Checked API tokens kept per process (api/token_cache.py): a kept token saves reading the token table, and any
change to a credential refuses the very next call, in this process and in the others (the credentials epoch)."""

import os
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from teleexpertise.api import services, token_cache
from teleexpertise.api.models import ApiClient, ApiToken
from teleexpertise.directory.models import Organisation, Professional
from tests.factories import luhn_number, make_professional, make_user

ALL = ["cases:read", "cases:write", "reports:write"]
TOKEN_TABLE = ApiToken._meta.db_table
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(autouse=True)
def _no_kept_tokens():
    token_cache.forget_all()
    yield
    token_cache.forget_all()


@pytest.fixture(params=["test cache", "redis"], autouse=True)
def epoch_cache(request, settings):
    """The epoch in the settings' cache (the database), and in Redis as in production."""
    if request.param == "redis":
        settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                       "LOCATION": REDIS_URL}}
        from django.core.cache import caches
        try:
            caches["default"].clear()
        except Exception as exc:  # noqa: BLE001 - no Redis on this machine: say so rather than fail obscurely
            pytest.skip(f"Redis not reachable: {exc}")
    return request.param


def _personal(user):
    token, secret = services.personal_token_create(user=user, name="DPI", scopes=ALL)
    return token, Client(HTTP_AUTHORIZATION=f"Bearer {secret}"), secret


def _get(api, **headers):
    """GET /api/cases; its status and whether it read the token table."""
    with CaptureQueriesContext(connection) as ctx:
        status = api.get("/api/cases", **headers).status_code
    return status, any(TOKEN_TABLE in q["sql"] for q in ctx.captured_queries)


def test_the_second_call_does_not_read_the_token_table(cast):
    _token, api, _secret = _personal(cast.requester.user)
    assert _get(api) == (200, True)
    assert _get(api) == (200, False)
    assert _get(api) == (200, False)


def test_a_token_revoked_on_the_page_is_refused_from_the_next_call(cast, client_for):
    token, api, _secret = _personal(cast.requester.user)
    page = client_for(cast.requester)
    assert _get(api)[0] == _get(api)[0] == 200
    assert page.post(f"/api-tokens/{token.pk}/revoke").status_code == 302
    assert _get(api) == (401, True)


def test_a_token_revoked_by_the_service_is_refused_from_the_next_call(cast):
    token, api, _secret = _personal(cast.requester.user)
    assert _get(api)[0] == _get(api)[0] == 200
    services.personal_token_revoke(user=cast.requester.user, token_id=token.pk)
    assert _get(api) == (401, True)


def test_a_deactivated_users_token_is_refused_from_the_next_call(cast):
    _token, api, _secret = _personal(cast.requester.user)
    assert _get(api)[0] == _get(api)[0] == 200
    user = cast.requester.user
    user.is_active = False
    user.save()
    assert _get(api) == (401, True)


def _client_api(cast):
    client, secret = services.api_client_create(organisation=cast.hospital, name="DPI du CHU", scopes=ALL)
    issued = Client().post("/api/oauth/token", {"grant_type": "client_credentials", "client_id": client.client_id,
                                                "client_secret": secret}).json()
    api = Client(HTTP_AUTHORIZATION=f"Bearer {issued['access_token']}", HTTP_X_ON_BEHALF_OF=cast.expert.rpps)
    return client, api


def test_a_revoked_organisation_clients_token_is_refused_from_the_next_call(cast):
    client, api = _client_api(cast)
    assert _get(api)[0] == 200
    assert _get(api) == (200, False)
    services.api_client_revoke(client_id=client.client_id)
    assert _get(api)[0] == 401


def test_revoking_an_already_revoked_client_still_refuses_its_kept_tokens(cast):
    """The client row is then not saved (no signal): the revocation itself must set a new epoch."""
    client, api = _client_api(cast)
    assert _get(api)[0] == _get(api)[0] == 200
    ApiClient.objects.filter(pk=client.pk).update(revoked_at=timezone.now())  # no signal: the kept token still serves
    assert _get(api) == (200, False)
    services.api_client_revoke(client_id=client.client_id)
    assert _get(api) == (401, True)


def test_a_token_kept_by_another_process_is_read_again_once_the_epoch_changes(cast):
    token, api, secret = _personal(cast.requester.user)
    assert _get(api)[0] == 200
    # Another process revokes the token; this process has kept it under the epoch it read.
    token_cache.forget_all()
    kept = ApiToken.objects.select_related("user__professional").get(pk=token.pk)
    token_cache.keep(services.hash_secret(secret), token_cache.current_epoch(), kept)
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())
    assert _get(api) == (200, False)  # trusted: the epoch has not moved
    token_cache.credentials_changed()  # what the other process's revocation does
    assert _get(api) == (401, True)


@pytest.mark.parametrize("epoch_cache", ["redis"], indirect=True)
def test_the_epoch_is_shared_through_redis(cast):
    import redis

    from teleexpertise.core.cache import redis_key

    other_process = redis.Redis.from_url(REDIS_URL)
    _token, api, _secret = _personal(cast.requester.user)
    assert _get(api)[0] == _get(api)[0] == 200
    other_process.set(redis_key(token_cache.EPOCH_KEY), "set-by-another-process")
    assert _get(api) == (200, True)
    assert token_cache.current_epoch() == "set-by-another-process"


def test_with_no_time_to_keep_every_call_reads_the_token(cast, settings):
    settings.API_TOKEN_CACHE_SECONDS = 0
    _token, api, _secret = _personal(cast.requester.user)
    assert [_get(api) for _ in range(3)] == [(200, True)] * 3


def test_a_kept_token_that_expires_is_refused_without_being_read_again(cast):
    token, api, _secret = _personal(cast.requester.user)
    expires_at = timezone.now() + timedelta(seconds=1)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=expires_at)  # no signal: the epoch stays
    assert _get(api) == (200, True)
    time.sleep(max(0.0, (expires_at - timezone.now()).total_seconds()) + 0.05)
    assert _get(api) == (401, False)


def test_every_call_gets_its_own_copy(cast):
    token, _api, secret = _personal(cast.requester.user)
    token = ApiToken.objects.select_related("user").get(pk=token.pk)
    key, epoch = services.hash_secret(secret), token_cache.current_epoch()
    token_cache.keep(key, epoch, token)
    token.scopes.append("kept after")  # the caller's instance is not the kept one
    first, second = token_cache.get(key, epoch), token_cache.get(key, epoch)
    assert first is not second and first.user is not second.user
    first.scopes.append("webhooks:manage")
    first.user.is_active = False
    third = token_cache.get(key, epoch)
    assert third.scopes == second.scopes == ALL and third.user.is_active and third.pk == token.pk


def test_a_token_kept_under_another_epoch_or_another_hash_is_not_given(cast):
    token, _api, secret = _personal(cast.requester.user)
    key, epoch = services.hash_secret(secret), token_cache.current_epoch()
    token_cache.keep(key, epoch, ApiToken.objects.get(pk=token.pk))
    assert token_cache.get(key, epoch).pk == token.pk
    assert token_cache.get(key, epoch + "-other") is None
    assert token_cache.get(services.hash_secret(secret + "x"), epoch) is None


def _made():
    """One saved instance of each model a kept token carries."""
    org = Organisation.objects.create(name="Cabinet", finess=luhn_number("75", 9))
    pro = make_professional("saved@test.fr", organisation=org)
    client, _secret = services.api_client_create(organisation=org, name="Logiciel", scopes=ALL)
    token, _secret = services.personal_token_create(user=pro.user, name="DPI", scopes=ALL)
    return {"token": token, "client": client, "user": make_user("alone@test.fr"), "professional": pro,
            "organisation": org}


@pytest.mark.parametrize("what", ["token", "client", "user", "professional", "organisation"])
def test_saving_or_deleting_a_credential_sets_a_new_epoch(cast, what):
    made = _made()
    before = token_cache.current_epoch()
    made[what].save()
    saved = token_cache.current_epoch()
    assert saved != before
    if what == "organisation":  # protected by its professional and client
        made["client"].delete()
        made["professional"].delete()
        saved = token_cache.current_epoch()
    made[what].delete()
    assert token_cache.current_epoch() != saved


def test_creating_sets_no_new_epoch_but_a_professional_does(cast):
    before = token_cache.current_epoch()
    org = Organisation.objects.create(name="Cabinet", finess=luhn_number("75", 9))
    services.api_client_create(organisation=org, name="Logiciel", scopes=ALL)
    user = make_user("alone@test.fr")
    services.personal_token_create(user=user, name="DPI", scopes=ALL)
    assert token_cache.current_epoch() == before  # none of them can be in a process's entries yet
    Professional.objects.create(user=user, first_name="Noé", last_name="Nouveau", profession_id="10",
                                rpps=luhn_number("10", 11))
    assert token_cache.current_epoch() != before  # an existing user's kept token now lacks their professional


def test_a_login_sets_no_new_epoch(cast):
    user = cast.requester.user
    before = token_cache.current_epoch()
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])  # what django.contrib.auth does at each login
    assert token_cache.current_epoch() == before
    user.save(update_fields=["last_login", "is_active"])
    assert token_cache.current_epoch() != before


def test_a_professional_created_for_a_user_with_a_kept_token_is_seen(cast):
    user = make_user("newcomer@test.fr")
    _token, secret = services.personal_token_create(user=user, name="DPI", scopes=ALL)
    assert services.token_authenticate(secret).actor.professional is None  # kept, with no professional
    professional = Professional.objects.create(user=user, first_name="Noé", last_name="Nouveau", profession_id="10",
                                               rpps=luhn_number("10", 11))
    assert services.token_authenticate(secret).actor.professional == professional
