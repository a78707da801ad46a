"""How the patient's link reaches them: by e-mail or SMS, through a sender class named in PATIENT_LINK_SENDER.

A real SMS gateway plugs in by subclassing `DefaultSender` and overriding `send_sms` (and `channels` if it adds
or removes one). Senders receive the message with the link in it: they must not log or keep it.
"""

import sys

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string


class SenderUnavailable(Exception):
    """The channel cannot deliver here (e.g. no SMS gateway configured)."""


class DefaultSender:
    """E-mail through Django's mail backend; SMS written to the console in development and demo only."""

    @property
    def channels(self) -> tuple[str, ...]:
        return ("email", "sms") if settings.PATIENT_LINK_SMS_CONSOLE else ("email",)

    def send_email(self, *, to: str, subject: str, body: str) -> None:
        EmailMessage(subject, body, None, [to]).send()

    def send_sms(self, *, to: str, body: str) -> None:
        if not settings.PATIENT_LINK_SMS_CONSOLE:
            raise SenderUnavailable("no SMS gateway configured (PATIENT_LINK_SENDER)")
        # The console stands in for the SMS gateway, like Django's console e-mail backend: a tester follows the
        # link from the terminal of `make run`. Never on in production (PATIENT_LINK_SMS_CONSOLE).
        sys.stdout.write(f"----- SMS to {to} -----\n{body}\n{'-' * 40}\n")
        sys.stdout.flush()


def patient_link_sender():
    return import_string(settings.PATIENT_LINK_SENDER)()
