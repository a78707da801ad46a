"""The tokens this server process has recently checked, so that a call does not read its token again.

Looking a token up joins six tables (the token, its user, the professional and their profession, specialty and
organisation, or the client and its organisation); building that query cost about a fifth of a short API call.
A token found valid is kept here, pickled, for at most `API_TOKEN_CACHE_SECONDS`, and trusted only while the
*credentials epoch* — one value in the shared cache — is the one read when it was kept. Every change that can
withdraw or alter a caller (a token or client revoked, a user deactivated, a professional edited, anything
deleted) sets a new epoch once its transaction commits: every process then reads its tokens again on their next
call. A change made without model signals (a queryset `update()`) calls `credentials_changed()` itself, or is
caught by the time limit.

Each call unpickles its own copy: request threads never share a model instance.
"""

import pickle
import threading
import time
import uuid

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from teleexpertise.core.cache import redis_key, shared_redis

EPOCH_KEY = "api:credentials-epoch"
_MAX_ENTRIES = 10_000  # a bound on memory: past it, the oldest half is dropped

_lock = threading.Lock()
_entries: dict[str, tuple[str, float, bytes]] = {}  # token hash -> (epoch, kept at, pickled token)


def current_epoch() -> str:
    """The shared epoch; a new one is set when none is there (first start, or evicted from the cache)."""
    client = shared_redis()
    if client is not None:  # read on every call: straight to Redis
        key = redis_key(EPOCH_KEY)
        epoch = client.get(key)
        if epoch is None:
            client.set(key, uuid.uuid4().hex, nx=True)
            epoch = client.get(key)
        return epoch.decode("latin-1")  # opaque: only compared
    epoch = cache.get(EPOCH_KEY)
    if epoch is None:
        cache.add(EPOCH_KEY, uuid.uuid4().hex, None)
        epoch = cache.get(EPOCH_KEY)
    return epoch


def _new_epoch() -> None:
    client = shared_redis()
    if client is not None:
        client.set(redis_key(EPOCH_KEY), uuid.uuid4().hex)
    else:
        cache.set(EPOCH_KEY, uuid.uuid4().hex, None)


def get(token_hash: str, epoch: str):
    """A fresh copy of the token kept under this hash, if it was kept under this epoch and recently enough."""
    entry = _entries.get(token_hash)
    if entry is None or entry[0] != epoch or time.monotonic() - entry[1] > settings.API_TOKEN_CACHE_SECONDS:
        return None
    return pickle.loads(entry[2])  # noqa: S301 - bytes this process pickled itself


def keep(token_hash: str, epoch: str, token) -> None:
    blob = pickle.dumps(token, protocol=pickle.HIGHEST_PROTOCOL)
    with _lock:
        if len(_entries) >= _MAX_ENTRIES:
            for stale in sorted(_entries, key=lambda key: _entries[key][1])[:_MAX_ENTRIES // 2]:
                del _entries[stale]
        _entries[token_hash] = (epoch, time.monotonic(), blob)


def forget_all() -> None:
    """This process's entries only (tests); other processes follow the epoch."""
    with _lock:
        _entries.clear()


def credentials_changed() -> None:
    """A new epoch now, for the calls on this transaction's connection that see the change already, and again
    once it commits: a call in between, on another connection, could read the token as it was before the change
    and keep it under the first new epoch."""
    _new_epoch()
    transaction.on_commit(_new_epoch)


def on_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    """post_save / post_delete receiver (connected in ApiConfig.ready). A new token, client, user or organisation
    cannot be in any process's entries; a new professional can (an existing user's). A login, which saves the
    user's last_login only, changes nothing a token carries."""
    from teleexpertise.directory.models import Professional

    if created and sender is not Professional:
        return
    if update_fields and set(update_fields) <= {"last_login"}:
        return
    credentials_changed()
