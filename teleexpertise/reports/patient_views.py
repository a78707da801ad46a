"""The patient's pages: no account, a personal link, the birth date as second factor, nothing shown before it.

The verified state lives in the session, for that link only (keyed by the token's hash) and for
PATIENT_LINK_SESSION_MINUTES. Every response is kept out of caches, other sites' referrers and search engines;
the token is masked in the logs (core.logging.RedactPatientLinks).
"""

import functools
import time

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse, HttpResponseServerError
from django.shortcuts import redirect, render
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from teleexpertise.audit.services import client_ip
from teleexpertise.documents import storage
from teleexpertise.reports import patient_access
from teleexpertise.reports.forms import BirthDateForm

SESSION_KEY = "patient_links"
_STATUS = {"unknown": 404, "expired": 410, "revoked": 410, "locked": 403}


def patient_page(view):
    """No cache, no referrer to other sites, no indexing; refused early to an address with too many failures."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        if patient_access.ip_refused(client_ip(request)):
            response = render(request, "reports/patient/unavailable.html", {"reason": "throttled"}, status=429)
        else:
            try:
                response = view(request, *args, **kwargs)
            except patient_access.PatientLinkUnavailable as exc:
                response = render(request, "reports/patient/unavailable.html", {"reason": exc.reason},
                                  status=_STATUS[exc.reason])
        response["Cache-Control"] = "no-store"
        # same-origin, not no-referrer: the URL (and its token) still never leaves for another site, while a
        # no-referrer page makes the browser send "Origin: null" with the birth-date form, which CSRF refuses.
        response["Referrer-Policy"] = "same-origin"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapper


def _verified(request, token: str) -> bool:
    until = request.session.get(SESSION_KEY, {}).get(patient_access.hash_token(token))
    return until is not None and until > time.time()


def _remember_verified(request, token: str) -> None:
    request.session.cycle_key()  # a new session id once the second factor is given
    now = time.time()
    entries = {key: until for key, until in request.session.get(SESSION_KEY, {}).items() if until > now}
    entries[patient_access.hash_token(token)] = now + settings.PATIENT_LINK_SESSION_MINUTES * 60
    request.session[SESSION_KEY] = entries


def _forget_verified(request, token: str) -> None:
    entries = dict(request.session.get(SESSION_KEY, {}))
    if entries.pop(patient_access.hash_token(token), None) is not None:
        request.session[SESSION_KEY] = entries


@patient_page
@require_http_methods(["GET", "POST"])
def patient_link(request, token):
    ip = client_ip(request)
    if request.method == "POST":
        form = BirthDateForm(request.POST)
        if form.is_valid():
            try:
                patient_access.patient_link_verify_birth_date(token=token, birth_date=form.cleaned_data["birth_date"],
                                                              ip=ip)
            except patient_access.WrongBirthDate as exc:
                form.add_error(None, _wrong_date_message(exc.remaining))
            else:
                _remember_verified(request, token)
                return redirect(request.path)
            return render(request, "reports/patient/birth_date.html", {"form": form}, status=400)
        patient_access.patient_link_open(token=token, verified=False, ip=ip)  # still a usable link?
        return render(request, "reports/patient/birth_date.html", {"form": form}, status=400)
    link, version = patient_access.patient_link_open(token=token, verified=_verified(request, token), ip=ip)
    if version is None:
        return render(request, "reports/patient/birth_date.html", {"form": BirthDateForm()})
    return render(request, "reports/patient/report.html", {
        "link": link, "version": version, "case": version.case, "token": token,
        "minutes": settings.PATIENT_LINK_SESSION_MINUTES})


def _wrong_date_message(remaining: int) -> str:
    if remaining == 1:
        return _("Cette date de naissance ne correspond pas. Attention : il vous reste un seul essai.")
    return _("Cette date de naissance ne correspond pas. Il vous reste %(n)s essais.") % {"n": remaining}


@patient_page
@require_GET
def patient_link_pdf(request, token):
    if not _verified(request, token):
        return redirect("patient:link", token=token)
    try:
        version, body = patient_access.patient_link_pdf(token=token, ip=client_ip(request))
    except (storage.IntegrityError, ImproperlyConfigured):
        return HttpResponseServerError(_("Le PDF n'a pas pu être relu. Réessayez plus tard ou demandez-le à votre "
                                         "médecin."), content_type="text/plain; charset=utf-8")
    if body is None:
        messages.info(request, _("Le PDF est en préparation : réessayez dans quelques minutes."))
        return redirect("patient:link", token=token)
    response = HttpResponse(body, content_type="application/pdf")
    response["Content-Disposition"] = content_disposition_header(
        True, f"compte-rendu-{version.case.reference}-v{version.number}.pdf")
    return response


@patient_page
@require_POST
def patient_link_end(request, token):
    """The patient closes the access on this device (a shared computer); the link itself stays valid."""
    _forget_verified(request, token)
    messages.info(request, _("Consultation terminée. Vous pouvez fermer cette page."))
    return redirect("patient:link", token=token)
