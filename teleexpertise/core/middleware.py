"""Request-wide policies: the UI language and the security headers; the browser-only middleware that token calls
go past."""

from django.conf import settings
from django.utils import translation
from django.utils.module_loading import import_string

# Called by software with a bearer token: no session, cookie, CSRF token, flash message or TOTP gate applies.
TOKEN_PREFIXES = ("/api/", "/fhir/")


class LanguageMiddleware:
    """French unless the user chose English: the browser's Accept-Language does not switch the UI.

    Software calling the API has no language cookie: there, Accept-Language chooses (French by default).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME)
        if chosen is None and request.path.startswith(("/api/", "/fhir/")) and "HTTP_ACCEPT_LANGUAGE" in request.META:
            chosen = translation.get_language_from_request(request)
        chosen = chosen or settings.LANGUAGE_CODE
        if chosen not in dict(settings.LANGUAGES):
            chosen = settings.LANGUAGE_CODE
        translation.activate(chosen)
        request.LANGUAGE_CODE = chosen
        response = self.get_response(request)
        response.headers.setdefault("Content-Language", chosen)
        return response


# Pages carry no inline script or style; the TOTP enrolment QR code is a data: image.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("Permissions-Policy", "geolocation=(), microphone=(), camera=(self)")
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response.headers.setdefault("Cache-Control", "no-store")  # patient data stays out of shared caches
        return response


class BrowserOnly:
    """A middleware that serves browser pages only, skipped for the REST API and the FHIR facade.

    Sessions, the CSRF check, the session user, flash messages, the TOTP gate and static files have nothing to do
    with a call authenticated by its bearer token (the view sets `request.user` from the token); run for every
    call, they cost a few tenths of a millisecond of a thread read's 3 to 4 (bench/README.md, `api`), and a
    session cookie has no say in who calls. The wrapped middleware keeps its place in MIDDLEWARE and every hook
    Django would call on it, for every other path.
    """

    wrapped = ""  # the dotted path of the middleware, set by `browser_only`
    sync_capable, async_capable = True, False  # WSGI: gunicorn's threads

    def __init__(self, get_response):
        self.get_response = get_response
        self.inner = import_string(self.wrapped)(get_response)
        for hook, skipped in (("process_view", _none), ("process_exception", _none),
                              ("process_template_response", _response)):
            if hasattr(self.inner, hook):
                setattr(self, hook, _unless_token_call(getattr(self.inner, hook), skipped))

    def __call__(self, request):
        if request.path_info.startswith(TOKEN_PREFIXES):
            return self.get_response(request)
        return self.inner(request)


def _none(request, *args):
    return None


def _response(request, response):
    return response


def _unless_token_call(hook, skipped):
    def call(request, *args):
        return (skipped if request.path_info.startswith(TOKEN_PREFIXES) else hook)(request, *args)

    return call


def browser_only(path: str) -> type:
    """A subclass of the wrapped middleware too: Django's checks (the admin's) look for it by class."""
    return type(f"BrowserOnly{path.rsplit('.', 1)[-1]}", (BrowserOnly, import_string(path)), {"wrapped": path})


# Named in settings.MIDDLEWARE (allauth's AccountMiddleware stays plain: allauth checks it is listed by its name).
BrowserStaticFiles = browser_only("whitenoise.middleware.WhiteNoiseMiddleware")
BrowserSession = browser_only("django.contrib.sessions.middleware.SessionMiddleware")
BrowserCsrf = browser_only("django.middleware.csrf.CsrfViewMiddleware")
BrowserUser = browser_only("django.contrib.auth.middleware.AuthenticationMiddleware")
BrowserMessages = browser_only("django.contrib.messages.middleware.MessageMiddleware")
BrowserSecondFactor = browser_only("teleexpertise.accounts.middleware.RequireSecondFactorMiddleware")
