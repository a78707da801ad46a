"""The second factor is mandatory: a signed-in user without TOTP is sent to enrol before anything else.

allauth has no setting that forces MFA for everyone, hence this middleware. Demo accounts are exempt
only while DEMO_MODE is on.
"""

from allauth.mfa.models import Authenticator
from django.conf import settings
from django.shortcuts import redirect
from django.urls import reverse

# /p/: the patient's report link, which has its own second factor (the birth date) and no account.
_OPEN_PREFIXES = ("/accounts/", "/static/", "/healthz", "/i18n/", "/p/")


def needs_second_factor(user) -> bool:
    if settings.DEMO_MODE and user.is_demo:
        return False
    return not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()


class RequireSecondFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = request.user
        if user.is_authenticated and not request.path.startswith(_OPEN_PREFIXES):
            if request.session.get("mfa_enrolled") is not True:
                if needs_second_factor(user):
                    return redirect(reverse("mfa_activate_totp"))
                request.session["mfa_enrolled"] = True  # checked once a session, not on every request
        return self.get_response(request)
