"""Request-wide policies: the UI language and the security headers."""

from django.conf import settings
from django.utils import translation


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
