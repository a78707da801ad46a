"""Resources as the facade sends them: the JSON the platform builds, checked against its R4B model before it goes
out. A resource that does not validate is never sent; what is sent is the checked dict itself.

Why not the model's own JSON: fhir_core's serializer walks every element a type declares, set or not, at every
level, and cost twice the building and checking together (about 8 ms for a page of 20 Tasks). The dict is pruned
first as that serializer would prune it (no null, no empty list or object), so the checked form is the sent one.

Validation is a pure function of the resource's content, and most resources go out many times unchanged (a
client polls its work items; a page of 20 Tasks cost 5 to 8 ms of validation). Each process therefore remembers
a digest of each JSON text it has already validated (`_passed`, bounded): the same text is not validated twice,
and a resource that changes in any way is a new text, validated before it goes out.

A search's resources are also remembered whole (`remembered_all`, bounded): a resource built from its row's values
alone is the same text as long as those values are, so a page polled again is written from the texts it sent.

With Redis, a digest validated by one process is also written there for a week (one key per text, under the
version of fhir.resources that validated it): the server's other processes, and the next ones after a restart,
skip a text one of them already checked. Four web processes otherwise validated each Task four times, and a
search's first pages after a start were mostly validation (bench/api).
"""

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from typing import NamedTuple

from django.utils import timezone, translation
from django.utils.functional import Promise
from fhir.resources import __version__ as FHIR_RESOURCES_VERSION
from redis.exceptions import RedisError

from teleexpertise.core.cache import redis_key, shared_redis

logger = logging.getLogger(__name__)

_EMPTY = (None, [], {})
_PASSED_MAX = 50_000  # 128-bit digests: about 8 MB per process at most
_SHARED_SECONDS = 7 * 24 * 3600  # how long Redis keeps a digest: a week of a resource's polling
_passed: dict[tuple[str, bytes], None] = {}  # (model, BLAKE2b of the JSON text) -> None, oldest first
_passed_lock = threading.Lock()
_TEXTS_MAX = 5_000  # about 3 KB each (the row that keys it, and a Task's text): about 15 MB per process at most
_texts: dict[tuple, "Text"] = {}  # (language, time zone, inputs) -> the checked text, oldest first


class Text(NamedTuple):
    """A checked resource already written as JSON: a search's Bundle takes it as it is."""

    resource_type: str
    id: str
    json: str


def remembered_all(model, items: list[tuple[tuple, Callable[[], dict]]]) -> list[Text]:
    """For each (inputs, build): the checked text of `build()`, a `model` resource built from `inputs` alone
    (hashable values), remembered under them with the active language and time zone, which a resource's displays
    and instants depend on. A search whose rows are the same as before (a client polling its work items) sends the
    same texts without building or checking them again; any change in a row is a new key. Only for builders whose
    every input is in `inputs` (plus the settings, fixed for the process); `build` returns the resource unchecked,
    and those of a page not remembered yet are checked together (`checked_all`)."""
    context = (translation.get_language(), timezone.get_current_timezone_name())
    keys = [(*context, inputs) for inputs, _build in items]
    texts = [_texts.get(key) for key in keys]
    missing = [n for n, text in enumerate(texts) if text is None]
    if missing:
        built = checked_all(model, [items[n][1]() for n in missing])
        with _passed_lock:
            if len(_texts) + len(missing) > _TEXTS_MAX:  # forget the oldest half: dict order is insertion order
                for old in list(_texts)[:_TEXTS_MAX // 2]:
                    del _texts[old]
            for n, (resource, text) in zip(missing, built, strict=True):
                texts[n] = _texts[keys[n]] = Text(resource["resourceType"], resource["id"], text or dumps(resource))
    return texts


def checked(model, data: dict) -> dict:
    """`data` without its empty values, once `model` (an R4B resource class) accepts it; raises pydantic's
    ValidationError otherwise, as building the model did."""
    return checked_all(model, [data])[0][0]


def checked_all(model, datas: list[dict]) -> list[tuple[dict, str | None]]:
    """Each of `datas` without its empty values, with its JSON text (None: it holds a value JSON cannot), once
    `model` accepts it. The texts this process has not seen are looked up in Redis together, in one call, and
    validated here only when no process did."""
    done, unseen = [], {}
    for data in datas:
        data = _pruned(data)
        try:
            text = dumps(data)
        except TypeError:  # a value JSON cannot hold (pydantic may take it): validate, remember nothing
            model.model_validate(data)
            done.append((data, None))
            continue
        key = (model.__name__, _digest(text))
        if key not in _passed:
            unseen.setdefault(key, data)
        done.append((data, text))
    if unseen:
        elsewhere = _passed_elsewhere(list(unseen))
        validated = []
        for key, data in unseen.items():
            if key not in elsewhere:
                model.model_validate(data)
                validated.append(key)
        _share(validated)
        for key in unseen:
            _remember(key)
    return done


def _shared_key(key: tuple[str, bytes]) -> str:
    return redis_key(f"fhir-valid:{FHIR_RESOURCES_VERSION}:{key[0]}:{key[1].hex()}")


def _passed_elsewhere(keys: list[tuple[str, bytes]]) -> set[tuple[str, bytes]]:
    """Those of `keys` another process recorded as validated; none without Redis or when it does not answer (the
    texts are then validated here: an unreachable Redis costs time, never a check)."""
    found = _on_redis(lambda client: client.mget([_shared_key(key) for key in keys]))
    return {key for key, value in zip(keys, found or (), strict=False) if value is not None}


def _share(keys: list[tuple[str, bytes]]) -> None:
    def write(client):
        pipeline = client.pipeline(transaction=False)
        for key in keys:
            pipeline.set(_shared_key(key), b"1", ex=_SHARED_SECONDS)
        pipeline.execute()

    if keys:
        _on_redis(write)


def _on_redis(operation: Callable):
    """`operation(client)` on the shared Redis; None without Redis or when it does not answer."""
    client = shared_redis()
    if client is None:
        return None
    try:
        return operation(client)
    except RedisError as exc:
        logger.warning("validated FHIR texts: Redis unreachable", extra={"error": str(exc)})
        return None


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=16).digest()


def _remember(key: tuple[str, bytes]) -> None:
    with _passed_lock:
        if len(_passed) >= _PASSED_MAX:  # forget the oldest half: dict order is insertion order
            for old in list(_passed)[:_PASSED_MAX // 2]:
                del _passed[old]
        _passed[key] = None


def forget_passed() -> None:
    """Tests: validate and build everything again."""
    with _passed_lock:
        _passed.clear()
        _texts.clear()


def as_sent(resource) -> dict:
    """A resource built as a model elsewhere (the report's Composition and DocumentReference), as a dict."""
    return json.loads(resource.model_dump_json())


def dumps(resource: dict) -> str:
    """Compact UTF-8 JSON. Anything but JSON's own types is an error: a value the checked dict did not hold."""
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))


def _pruned(value):
    if isinstance(value, dict):
        pruned = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in pruned.items() if item not in _EMPTY}
    if isinstance(value, list):
        return [item for item in map(_pruned, value) if item not in _EMPTY]
    if isinstance(value, Promise):  # a lazy translation: the text of the language active now
        return str(value)
    return value
