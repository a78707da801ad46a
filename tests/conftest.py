import os

import pytest
from django.test import Client

from tests.factories import Cast


@pytest.fixture
def cast(db):
    return Cast()


@pytest.fixture
def client_for(cast):
    """A logged-in client for a member of the cast (demo accounts skip TOTP only in demo mode; see settings)."""

    def make(who):
        client = Client()
        user = who if hasattr(who, "email") and not hasattr(who, "profession") else who.user
        client.force_login(user)
        session = client.session
        session["mfa_enrolled"] = True  # the second factor is tested in test_accounts.py
        session.save()
        return client

    return make


@pytest.fixture
def local_documents(tmp_path, settings):
    """Documents and PDFs stored on the local disk, in this test's own directory."""
    settings.DOCUMENT_STORAGE = "local"
    settings.DOCUMENT_ROOT = str(tmp_path / "documents")


API_SCOPES = ["cases:read", "cases:write", "reports:write"]


@pytest.fixture
def api_for(cast):
    """A client sending a personal token of this member of the cast (with these scopes), for /api/ and /fhir/."""
    from teleexpertise.api.services import personal_token_create

    def make(who, scopes=API_SCOPES):
        user = who if hasattr(who, "email") and not hasattr(who, "profession") else who.user
        _token, secret = personal_token_create(user=user, name="Logiciel de test", scopes=scopes)
        return Client(HTTP_AUTHORIZATION=f"Bearer {secret}")

    return make


@pytest.fixture
def fhir_for(api_for):
    return api_for


@pytest.fixture(autouse=True)
def _french_by_default():
    """Each test starts in French, as the platform does: a request in English must not leak its language into
    the next test's service calls (Django keeps the active language per thread)."""
    from django.utils import translation

    with translation.override("fr"):
        yield


def use_redis_cache(settings) -> None:
    """Redis as in production for the default cache, emptied; the test is skipped (saying why) without Redis."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/13")}}
    from django.core.cache import caches

    try:
        caches["default"].clear()
    except Exception as exc:  # noqa: BLE001 - no Redis on this machine: say so rather than fail obscurely
        pytest.skip(f"Redis not reachable: {exc}")
