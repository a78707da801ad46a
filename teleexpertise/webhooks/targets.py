"""Which addresses the platform agrees to POST to: https on a public address, or, where
WEBHOOK_ALLOW_LOCAL_TARGETS is on (development, tests), http and https on 127.0.0.1, localhost or a private network.

Checked when a subscription is saved (the URL as written) and again before every attempt (the address the name
resolves to then, which is the one connected to), so an integrator cannot point the platform at its own network.
"""

import ipaddress
import socket
from urllib.parse import SplitResult, urlsplit

from django.conf import settings
from django.utils.translation import gettext as _

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


class TargetRefused(Exception):
    """An address the platform does not call; the message is for the integrator."""


def _is_public(host: str) -> bool:
    if host in LOCAL_HOSTS or host.endswith(".localhost"):
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True  # a name: its addresses are checked when it is resolved, before each attempt


def url_problem(url: str) -> str | None:
    """Why this URL cannot receive webhooks (a French sentence), or None."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return _("Adresse invalide.")
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return _("Indiquez une adresse complète en https://.")
    if parts.username or parts.password:
        return _("L'adresse ne doit pas contenir d'identifiant ni de mot de passe : la signature authentifie "
                 "les envois.")
    if settings.WEBHOOK_ALLOW_LOCAL_TARGETS:
        if parts.scheme == "http" and host not in LOCAL_HOSTS:
            return _("Seules les adresses 127.0.0.1 et localhost peuvent être en http:// ; les autres doivent "
                     "être en https://.")
        return None
    if parts.scheme != "https":
        return _("L'adresse doit être en https://.")
    if not _is_public(host):
        return _("L'adresse doit être une adresse publique (ni localhost, ni un réseau privé).")
    return None


def split_target(url: str) -> SplitResult:
    problem = url_problem(url)
    if problem:
        raise TargetRefused(problem)
    return urlsplit(url.strip())


def resolve(host: str, port: int) -> str:
    """The address to connect to; every address the name has must be public unless local targets are allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TargetRefused(_("Nom d'hôte introuvable (%(error)s).") % {"error": exc.strerror}) from None
    addresses = [info[4][0] for info in infos]
    if not settings.WEBHOOK_ALLOW_LOCAL_TARGETS and not all(_is_public(address) for address in addresses):
        raise TargetRefused(_("Le nom %(host)s désigne une adresse non publique : envoi refusé.") % {"host": host})
    return addresses[0]
