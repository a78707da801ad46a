"""Bearer tokens, scopes and the per-token rate limit of the REST API."""

import time

from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext as _
from ninja.security import HttpBearer
from ninja.throttling import BaseThrottle

from teleexpertise.api.errors import ApiError
from teleexpertise.api.services import Caller, client_token_authenticate, token_authenticate
from teleexpertise.core.cache import redis_key, shared_redis


class BearerToken(HttpBearer):
    """`Authorization: Bearer <token>`; the request then carries the token's user, so that every read goes
    through the same user-bound selectors as the web pages."""

    def authenticate(self, request, token):
        caller = token_authenticate(token, on_behalf_of=request.headers.get("X-On-Behalf-Of", ""))
        if caller is None:
            return None
        request.user = caller.user
        return caller


class ClientBearerToken(HttpBearer):
    """For the calls an organisation client makes about itself (its webhooks): no X-On-Behalf-Of, and the
    request's user stays anonymous, since no professional acts."""

    def authenticate(self, request, token):
        return client_token_authenticate(token)


def require(request, scope: str) -> Caller:
    caller: Caller = request.auth
    if scope not in caller.scopes:
        raise ApiError(403, "insufficient_scope",
                       _("Ce jeton n'a pas la portée « %(scope)s » nécessaire à cet appel.") % {"scope": scope})
    return caller


def _parse_rate(rate: str) -> tuple[int, int]:
    """"600/min" -> (600, 60); the unit is its first letter: s, m(inute), h(our), d(ay)."""
    count, _sep, unit = rate.partition("/")
    return int(count), {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit.strip()[:1].lower()]


class _WindowThrottle(BaseThrottle):
    """A fixed-window counter in the shared cache: one add and one increment a call, and no state on the
    instance (django-ninja's SimpleRateThrottle keeps the request history on the shared throttle object,
    which threads of one server process would mix)."""

    setting = ""

    def _limit(self) -> tuple[int, int]:
        return _parse_rate(getattr(settings, self.setting))

    def ident(self, request) -> str:
        raise NotImplementedError

    def allow_request(self, request) -> bool:
        count, seconds = self._limit()
        window = int(time.time()) // seconds
        key = f"api-rate:{self.setting}:{self.ident(request)}:{window}"
        client = shared_redis()
        if client is not None:
            return _redis_count(client, redis_key(key), seconds + 1) <= count
        cache.add(key, 0, seconds + 1)
        try:
            used = cache.incr(key)
        except ValueError:  # the entry expired between add and incr: this call opens the window
            cache.set(key, 1, seconds + 1)
            used = 1
        return used <= count

    def wait(self) -> float:
        _count, seconds = self._limit()
        return seconds - time.time() % seconds


def _redis_count(client, key: str, ttl: int) -> int:
    """INCR and EXPIRE in one round trip (Django's cache.add + cache.incr take three: incr checks EXISTS first)."""
    pipeline = client.pipeline(transaction=False)
    pipeline.incr(key)
    pipeline.expire(key, ttl, nx=True)
    used, _expiry_set = pipeline.execute()
    return used


class TokenRateThrottle(_WindowThrottle):
    """One budget per token."""

    setting = "API_RATE_LIMIT"

    def ident(self, request) -> str:
        return str(request.auth)  # Caller.__str__: the token id


class TokenEndpointThrottle(_WindowThrottle):
    """The OAuth2 token endpoint, per address."""

    setting = "API_TOKEN_RATE_LIMIT"

    def ident(self, request) -> str:
        return request.META.get("REMOTE_ADDR") or "-"
