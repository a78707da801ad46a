from datetime import timedelta

from allauth.account import app_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context
from allauth.mfa.models import Authenticator
from django.utils import timezone


class AccountAdapter(DefaultAccountAdapter):
    """Accounts are created by administrators for registered professionals: no self sign-up."""

    def is_open_for_signup(self, request):
        return False

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        # The first enrolment comes straight after the password login that forced it, and the recovery
        # codes are shown right after it: asking for the password again there adds nothing. Later changes
        # to the second factor still ask.
        user = getattr(getattr(context, "request", None), "user", None)
        if app == "allauth.mfa" and user is not None and user.is_authenticated and _enrolling(user):
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


def _enrolling(user) -> bool:
    recent = timezone.now() - timedelta(seconds=app_settings.REAUTHENTICATION_TIMEOUT)
    authenticators = Authenticator.objects.filter(user=user)
    return not authenticators.exists() or not authenticators.filter(created_at__lt=recent).exists()
