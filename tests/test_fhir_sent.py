"""`fhir.sent`: what the facade sends is the checked dict, pruned as fhir_core's serializer prunes, and nothing that
does not validate goes out."""

import json
import socket
from datetime import date

import pydantic
import pytest
from django.utils import translation
from django.utils.translation import gettext_lazy
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.task import Task

from teleexpertise.fhir.sent import as_sent, checked, dumps, remembered_all
from tests.conftest import use_redis_cache

TASK = {"resourceType": "Task", "id": "t1", "status": "requested", "intent": "order",
        "for": {"reference": "Patient/p1", "display": "DUPONT Marie"}}


def test_the_checked_dict_is_what_the_model_would_write():
    data = {**TASK, "note": [], "restriction": None, "owner": {}, "statusReason": {"text": "Précisez la dose"},
            "input": [{"type": {"text": "x"}, "valueString": "é", "valueBoolean": None}]}
    sent = checked(Task, data)
    assert sent == json.loads(Task.model_validate(sent).model_dump_json())
    assert "note" not in sent and "restriction" not in sent and "owner" not in sent
    assert json.loads(dumps(sent)) == sent


def test_nested_empties_are_pruned_all_the_way_down():
    sent = checked(Patient, {"resourceType": "Patient", "id": "p1",
                             "name": [{"family": "Martin", "given": [], "prefix": None}, {}],
                             "identifier": [{"system": None, "value": "1", "type": {"coding": []}}]})
    assert sent["name"] == [{"family": "Martin"}]
    assert sent["identifier"] == [{"value": "1"}]


def test_a_resource_that_does_not_validate_is_refused():
    with pytest.raises(pydantic.ValidationError):
        checked(Task, {**TASK, "status": "two  spaces"})  # not a code
    with pytest.raises(pydantic.ValidationError):
        checked(Task, {**TASK, "colour": "red"})  # no such element
    with pytest.raises(pydantic.ValidationError):
        checked(Task, {key: value for key, value in TASK.items() if key != "intent"})  # a required element
    with pytest.raises(pydantic.ValidationError):
        checked(Patient, {"resourceType": "Patient", "birthDate": "31/12/1990"})


def test_false_and_zero_are_values_not_empties():
    sent = checked(Patient, {"resourceType": "Patient", "active": False, "multipleBirthInteger": 0})
    assert sent["active"] is False and sent["multipleBirthInteger"] == 0


def test_lazy_translations_are_written_in_the_active_language():
    with translation.override("en"):
        sent = checked(Task, {**TASK, "businessStatus": {"text": gettext_lazy("Brouillon")}})
    assert sent["businessStatus"]["text"] == "Draft"
    assert isinstance(sent["businessStatus"]["text"], str)


def test_what_json_cannot_hold_is_an_error_not_a_guess():
    sent = checked(Patient, {"resourceType": "Patient", "birthDate": date(1990, 12, 31)})  # pydantic takes a date
    with pytest.raises(TypeError):
        dumps(sent)


def test_a_model_built_elsewhere_is_sent_as_its_own_json():
    model = Patient.model_validate({"resourceType": "Patient", "id": "p1", "gender": "female"})
    assert as_sent(model) == {"resourceType": "Patient", "id": "p1", "gender": "female"}


def test_a_text_validated_once_is_not_validated_again_and_any_change_is(monkeypatch):
    from teleexpertise.fhir import sent

    sent.forget_passed()
    calls = []
    real = Task.model_validate
    monkeypatch.setattr(Task, "model_validate", lambda data: calls.append(data) or real(data))
    first = checked(Task, dict(TASK))
    assert checked(Task, dict(TASK)) == first
    assert len(calls) == 1
    checked(Task, {**TASK, "status": "received"})  # another text: validated
    assert len(calls) == 2
    with pytest.raises(pydantic.ValidationError):  # a bad resource is never remembered as passed
        checked(Task, {**TASK, "status": "two  spaces"})
    with pytest.raises(pydantic.ValidationError):
        checked(Task, {**TASK, "status": "two  spaces"})


def test_the_memory_of_passed_texts_is_bounded(monkeypatch):
    from teleexpertise.fhir import sent

    sent.forget_passed()
    monkeypatch.setattr(sent, "_PASSED_MAX", 10)
    for n in range(25):
        checked(Task, {**TASK, "id": f"t{n}"})
    assert len(sent._passed) <= 10
    assert ("Task", sent._digest(dumps({**TASK, "id": "t24"}))) in sent._passed


@pytest.fixture
def redis_cache(settings):
    """Redis as in production, emptied: the server's processes share what they validated there."""
    use_redis_cache(settings)
    yield
    from django.core.cache import caches

    caches["default"].clear()


def test_a_text_another_process_validated_is_not_validated_again(monkeypatch, redis_cache):
    from teleexpertise.fhir import sent

    sent.forget_passed()
    calls = []
    real = Task.model_validate
    monkeypatch.setattr(Task, "model_validate", lambda data: calls.append(data) or real(data))
    first = checked(Task, dict(TASK))
    sent.forget_passed()  # as in another process, or after a restart
    assert checked(Task, dict(TASK)) == first
    assert len(calls) == 1
    checked(Task, {**TASK, "status": "received"})  # a text nobody validated
    assert len(calls) == 2
    sent.forget_passed()
    with pytest.raises(pydantic.ValidationError):  # a bad text is never shared as passed
        checked(Task, {**TASK, "status": "two  spaces"})
    sent.forget_passed()
    with pytest.raises(pydantic.ValidationError):
        checked(Task, {**TASK, "status": "two  spaces"})


def test_an_unreachable_redis_costs_a_validation_not_the_check(monkeypatch, settings):
    from teleexpertise.fhir import sent

    port = _closed_port()
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    sent.forget_passed()
    calls = []
    real = Task.model_validate
    monkeypatch.setattr(Task, "model_validate", lambda data: calls.append(data) or real(data))
    assert checked(Task, dict(TASK))["status"] == "requested"
    assert len(calls) == 1
    with pytest.raises(pydantic.ValidationError):
        checked(Task, {**TASK, "status": "two  spaces"})


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed when the socket is: nothing listens there


def _remembered(inputs, build):
    return remembered_all(Task, [(inputs, build)])[0]


def test_a_remembered_text_is_built_once_per_inputs_and_language():
    from teleexpertise.fhir import sent

    sent.forget_passed()
    builds = []

    def build(status):
        builds.append(status)
        return {**TASK, "status": status, "note": [{"text": gettext_lazy("Annuler")}], "input": []}

    first = _remembered(("t1", "requested"), lambda: build("requested"))
    assert _remembered(("t1", "requested"), lambda: build("requested")) == first
    assert builds == ["requested"]
    assert (first.resource_type, first.id) == ("Task", "t1")
    assert json.loads(first.json) == checked(Task, build("requested"))  # pruned and checked
    changed = _remembered(("t1", "received"), lambda: build("received"))
    assert json.loads(changed.json)["status"] == "received"
    with translation.override("en"):
        english = _remembered(("t1", "requested"), lambda: build("requested"))
    assert json.loads(english.json)["note"] != json.loads(first.json)["note"]
    with pytest.raises(pydantic.ValidationError):  # what does not validate is neither sent nor remembered
        _remembered(("t1", "bad"), lambda: build("two  spaces"))
    assert ("t1", "bad") not in {key[2] for key in sent._texts}


def test_a_page_is_checked_together_and_only_its_new_texts(monkeypatch):
    from teleexpertise.fhir import sent

    sent.forget_passed()
    calls = []
    real = Task.model_validate
    monkeypatch.setattr(Task, "model_validate", lambda data: calls.append(data["id"]) or real(data))
    page = [((n,), lambda n=n: {**TASK, "id": f"t{n}"}) for n in range(3)]
    texts = remembered_all(Task, page)
    assert [text.id for text in texts] == ["t0", "t1", "t2"] and calls == ["t0", "t1", "t2"]
    assert [text.id for text in remembered_all(Task, [*page, ((3,), lambda: {**TASK, "id": "t3"})])] == [
        "t0", "t1", "t2", "t3"]
    assert calls == ["t0", "t1", "t2", "t3"]


def test_the_memory_of_texts_is_bounded(monkeypatch):
    from teleexpertise.fhir import sent

    sent.forget_passed()
    monkeypatch.setattr(sent, "_TEXTS_MAX", 10)
    for n in range(25):
        _remembered((n,), lambda n=n: {**TASK, "id": f"t{n}"})
    assert len(sent._texts) <= 10
    assert any(key[2] == (24,) for key in sent._texts)


def test_a_page_asks_redis_once_for_what_other_processes_validated(monkeypatch, redis_cache):
    from teleexpertise.fhir import sent

    sent.forget_passed()
    calls, validated = [], []
    real_on_redis, real_validate = sent._on_redis, Task.model_validate
    monkeypatch.setattr(sent, "_on_redis", lambda operation: calls.append(1) or real_on_redis(operation))
    monkeypatch.setattr(Task, "model_validate", lambda data: validated.append(data["id"]) or real_validate(data))
    page = [((n,), lambda n=n: {**TASK, "id": f"t{n}"}) for n in range(5)]
    remembered_all(Task, page)
    assert (len(calls), len(validated)) == (2, 5)  # asked, then shared what it validated
    sent.forget_passed()  # as in another process, or after a restart
    remembered_all(Task, page)
    assert (len(calls), len(validated)) == (3, 5)
