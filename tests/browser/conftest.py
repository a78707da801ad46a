"""Headless Chromium against pytest-django's live server: the browser, one context per person, TOTP codes.

Run with `pytest -m browser` (scripts/run_tests.sh does, with CHROMIUM_PATH); every test collected here carries
the `browser` marker, so `pytest -m "not browser"` leaves them out. Chromium is the system one: no browser is
downloaded. When it is missing the tests are skipped.
"""

import os
import re
import threading
import time
from pathlib import Path

import pytest

CHROMIUM_PATH = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
TIMEOUT_MS = 15_000


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(config, items):
    """Everything under tests/browser is a browser test, even if a future test forgets the marker."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session", autouse=True)
def _one_request_at_a_time_on_a_shared_connection():
    """On in-memory SQLite the live server's request threads share the test's one connection: two requests at
    once (a page polling while another acts) then fail with "cannot open savepoint - SQL statements in progress"
    and the page stops following. Requests are then served one at a time; pages only poll (no long request), so
    nothing waits on another. A database with a connection per thread runs them free."""
    from django.contrib.staticfiles import handlers
    from django.db import connection

    if not (connection.vendor == "sqlite" and connection.is_in_memory_db()):
        yield
        return
    original, lock = handlers.StaticFilesHandler, threading.Lock()

    class OneAtATime(original):  # what pytest-django's live server wraps the site in
        def __call__(self, environ, start_response):
            with lock:
                return super().__call__(environ, start_response)

    handlers.StaticFilesHandler = OneAtATime
    yield
    handlers.StaticFilesHandler = original


@pytest.fixture(scope="session")
def browser():
    if not (os.path.isfile(CHROMIUM_PATH) and os.access(CHROMIUM_PATH, os.X_OK)):
        pytest.skip(f"Chromium not found at {CHROMIUM_PATH} (Debian package: chromium; or set CHROMIUM_PATH)")
    sync_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop running in this thread; the test's own ORM calls (fixtures,
    # assertions on the database) would otherwise be refused by Django as "async unsafe".
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    playwright = sync_api.sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        sync_api.expect.set_options(timeout=TIMEOUT_MS)
        yield chromium
        chromium.close()
    finally:
        playwright.stop()
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser, live_server, transactional_db, request):
    """new_page(name): a page in a fresh browser context (one per person), French locale, Paris time.

    On failure every page is saved to test-artifacts/failure-<test>-<name>.png (and .html) for diagnosis.
    """
    opened = []

    def make(name: str, **context_options):
        context = browser.new_context(locale="fr-FR", timezone_id="Europe/Paris", base_url=live_server.url,
                                      **context_options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        page = context.new_page()
        opened.append((name, context, page))
        return page

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for name, context, page in opened:
        if failed and not page.is_closed():
            ARTIFACTS.mkdir(exist_ok=True)
            stem = ARTIFACTS / f"failure-{re.sub(r'[^A-Za-z0-9_-]', '_', request.node.name)}-{name}"
            try:
                page.screenshot(path=f"{stem}.png", full_page=True)
                Path(f"{stem}.html").write_text(page.content(), encoding="utf-8")
            except Exception:  # noqa: S110 - best effort: never hide the real failure
                pass
        context.close()


class TotpCodes:
    """RFC 6238 codes (HMAC-SHA1, 30 s, 6 digits: allauth's settings), as the user's authenticator app shows them.

    allauth refuses a code already used in its 30-second window (replay protection) and accepts no drift
    (MFA_TOTP_TOLERANCE = 0): a code is never handed out twice, nor in the last second of its window.
    """

    MARGIN_SECONDS = 1.5

    def __init__(self):
        self.used = set()

    def code(self, secret: str, *, consume: bool = True) -> str:
        """The code the app shows now. consume=False for enrolment, where allauth checks a code without using it
        up (ActivateTOTPForm calls validate_totp_code), so the same code may still sign in afterwards."""
        from allauth.mfa import app_settings
        from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value

        period = app_settings.TOTP_PERIOD
        while True:
            now = time.time()
            counter = int(now) // period
            remaining = period - now % period
            if remaining > self.MARGIN_SECONDS and (secret, counter) not in self.used:
                break
            time.sleep(remaining + 0.05)  # waits for the next window: a new code, as an app would show it
        if consume:
            self.used.add((secret, counter))
        return format_hotp_value(hotp_value(secret, counter))


@pytest.fixture
def totp():
    return TotpCodes()
