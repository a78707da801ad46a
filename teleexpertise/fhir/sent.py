"""Resources as the facade sends them: the JSON the platform builds, checked against its R4B model before it goes
out. A resource that does not validate is never sent; what is sent is the checked dict itself.

Why not the model's own JSON: fhir_core's serializer walks every element a type declares, set or not, at every
level, and cost twice the building and checking together (about 8 ms for a page of 20 Tasks). The dict is pruned
first as that serializer would prune it (no null, no empty list or object), so the checked form is the sent one.

Validation is a pure function of the resource's content, and most resources go out many times unchanged (a
client polls its work items; a page of 20 Tasks cost 5 to 8 ms of validation). Each process therefore remembers
a digest of each JSON text it has already validated (`_passed`, bounded): the same text is not validated twice,
and a resource that changes in any way is a new text, validated before it goes out.

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
_TEXTS_MAX = 20_000  # a Task's text is about 1 KB: about 20 MB per process at most
_texts: dict[tuple, "Text"] = {}  # (language, time zone, inputs) -> the checked text, oldest first


class Text(NamedTuple):
    """A checked resource already written as JSON: a search's Bundle takes it as it is."""

    resource_type: str
    id: str
    json: str


def remembered(inputs: tuple, build: Callable[[], dict]) -> Text:
    """The text of `build()`, a resource built from `inputs` alone (hashable values), remembered under them with the
    active language and time zone, which a resource's displays and instants depend on. A search whose rows are the
    same as before (a client polling its work items) sends the same texts without building or checking them again;
    any change in a row is a new key. Only for builders whose every input is in `inputs` (plus the settings, fixed
    for the process)."""
    key = (translation.get_language(), timezone.get_current_timezone_name(), inputs)
    text = _texts.get(key)
    if text is None:
        resource = build()
        text = Text(resource["resourceType"], resource["id"], dumps(resource))
        with _passed_lock:
            if len(_texts) >= _TEXTS_MAX:
                for old in list(_texts)[:_TEXTS_MAX // 2]:
                    del _texts[old]
            _texts[key] = text
    return text


def checked(model, data: dict) -> dict:
    """`data` without its empty values, once `model` (an R4B resource class) accepts it; raises pydantic's
    ValidationError otherwise, as building the model did."""
    data = _pruned(data)
    try:
        key = (model.__name__, _digest(dumps(data)))
    except TypeError:  # a value JSON cannot hold (pydantic may take it): validate, remember nothing
        model.model_validate(data)
        return data
    if key not in _passed:
        if not _passed_elsewhere(key):
            model.model_validate(data)
            _share(key)
        _remember(key)
    return data


def _shared_key(key: tuple[str, bytes]) -> str:
    return redis_key(f"fhir-valid:{FHIR_RESOURCES_VERSION}:{key[0]}:{key[1].hex()}")


def _passed_elsewhere(key: tuple[str, bytes]) -> bool:
    """Whether another process recorded this text as validated; False without Redis or when it does not answer
    (the text is then validated here: an unreachable Redis costs time, never a check)."""
    return bool(_on_redis(lambda client: client.exists(_shared_key(key))))


def _share(key: tuple[str, bytes]) -> None:
    _on_redis(lambda client: client.set(_shared_key(key), b"1", ex=_SHARED_SECONDS))


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
