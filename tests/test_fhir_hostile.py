"""Hostile and malformed input on the FHIR facade, generated: every search parameter with odd values, and valid
write bodies with elements replaced by values of the wrong type, size or shape. Whatever arrives, the answer is a
4xx OperationOutcome or a success, never a server error (schemathesis does this for /api/, which has an OpenAPI
document; the facade has none). Seeds are fixed: a failure replays."""

import copy
import itertools
import json
import random

import pytest

from tests.documents.hostile import jpeg_bytes
from tests.test_fhir_write import FHIR_JSON, document_resource, service_request
from tests.test_fhir_write import _bundle as transaction_bundle

pytestmark = pytest.mark.usefixtures("local_documents")

ODD_QUERY_VALUES = [
    "", " ", "Practitioner/", "Practitioner/x", "Practitioner/00000000-0000-0000-0000-000000000000", "Patient/\x00",
    "%00", "ge2026-13-45", "ge", "lt9999-12-31", "eq0001-01-01T00:00+14:00", "2026-01-01T25:00",
    "Practitioner/" + "a" * 5000, "requested,", ",", "draft,in-progress,bogus", "\u202e", "1" * 400,
    "Patient/1;DROP TABLE", "https://x/Patient/1", "²", "١٢",
]
SEARCHES = {
    "ServiceRequest": ["patient", "status", "requester", "performer", "_lastUpdated", "_include", "_count"],
    "Task": ["patient", "status", "requester", "owner", "_lastUpdated", "_include", "_offset"],
    "Consent": ["patient", "_lastUpdated"], "QuestionnaireResponse": ["patient", "based-on", "_lastUpdated"],
    "Composition": ["patient", "_lastUpdated"], "DocumentReference": ["patient", "_lastUpdated"],
    "AuditEvent": ["entity", "patient", "date", "_lastUpdated"], "PractitionerRole": ["practitioner"],
}
ODD_ELEMENTS = [None, "", 0, -1, 10**30, 1.5, True, [], {}, "x" * 5000, [[[[[]]]]], "\u202e\x00", "#nope",
                "Patient/zz", {"reference": "#p"}, [{"reference": "#c"}], "2026-99-99", {"coding": [{"code": None}]},
                {"resourceType": ["Patient"]}]


def _server_errors(responses) -> list:
    return [(what, response.status_code, response.content[:200]) for what, response in responses
            if response.status_code >= 500]


def test_odd_search_values_and_ids_are_refused_not_crashed_on(cast, fhir_for):
    cast.case_in("taken")
    client = fhir_for(cast.expert)
    responses = []
    for resource_type, names in SEARCHES.items():
        for name, value in itertools.product(names, ODD_QUERY_VALUES):
            responses.append(((resource_type, name, value[:30]), client.get(f"/fhir/{resource_type}", {name: value})))
        for value in ODD_QUERY_VALUES:
            url = f"/fhir/{resource_type}/{value or 'x'}".replace("\x00", "%00")
            responses.append(((resource_type, "read", value[:30]), client.get(url)))
    assert not _server_errors(responses)
    assert all(r.status_code in (200, 400, 404) for _what, r in responses)


def _paths(node, prefix=()):
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def _mutated(resource: dict, rng: random.Random) -> dict:
    """`resource` with one to three elements replaced by an odd value, or removed."""
    resource = copy.deepcopy(resource)
    paths = [path for path in _paths(resource) if path]
    for _ in range(rng.randint(1, 3)):
        *parents, last = rng.choice(paths)
        node = resource
        try:
            for key in parents:
                node = node[key]
            if isinstance(node, dict) and rng.random() < 0.15:
                del node[last]
            else:
                node[last] = copy.deepcopy(rng.choice(ODD_ELEMENTS))
        except (KeyError, IndexError, TypeError):  # an earlier change moved this path: skip it
            pass
    return resource


def _posted(client, url, base, rng, count):
    for n in range(count):
        body = _mutated(base, rng)
        yield (url, n, json.dumps(body)[:300]), client.post(url, json.dumps(body), content_type=FHIR_JSON)


def test_mutated_creates_get_no_server_error(cast, fhir_for):
    rng = random.Random(11)
    case = cast.case_in("taken")
    client = fhir_for(cast.requester)
    communication = {"resourceType": "Communication", "status": "completed", "payload": [{"contentString": "Bonjour"}],
                     "basedOn": [{"reference": f"ServiceRequest/{case.pk}"}]}
    responses = [
        *_posted(client, "/fhir/ServiceRequest", service_request(cast), rng, 100),
        *_posted(client, "/fhir/DocumentReference", document_resource(f"ServiceRequest/{case.pk}", jpeg_bytes()),
                 rng, 100),
        *_posted(client, "/fhir/Communication", communication, rng, 100),
        *_posted(client, "/fhir/", transaction_bundle(cast, jpeg_bytes()), rng, 100),
    ]
    assert not _server_errors(responses)


def test_mutated_task_updates_get_no_server_error(cast, fhir_for):
    rng = random.Random(5)
    case = cast.case_in("accepted")
    client = fhir_for(cast.expert)
    responses = []
    for n in range(120):
        current = client.get(f"/fhir/Task/{case.pk}")
        body = _mutated(json.loads(current.content), rng)
        responses.append(((n, json.dumps(body)[:300]), client.put(
            f"/fhir/Task/{case.pk}", json.dumps(body), content_type=FHIR_JSON, HTTP_IF_MATCH=current["ETag"])))
    assert not _server_errors(responses)
