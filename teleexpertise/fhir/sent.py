"""Resources as the facade sends them: the JSON the platform builds, checked against its R4B model before it goes
out. A resource that does not validate is never sent; what is sent is the checked dict itself.

Why not the model's own JSON: fhir_core's serializer walks every element a type declares, set or not, at every
level, and cost twice the building and checking together (about 8 ms for a page of 20 Tasks). The dict is pruned
first as that serializer would prune it (no null, no empty list or object), so the checked form is the sent one.
"""

import json

from django.utils.functional import Promise

_EMPTY = (None, [], {})


def checked(model, data: dict) -> dict:
    """`data` without its empty values, once `model` (an R4B resource class) accepts it; raises pydantic's
    ValidationError otherwise, as building the model did."""
    data = _pruned(data)
    model.model_validate(data)
    return data


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
