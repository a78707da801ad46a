"""Property-based calls generated from the API's own OpenAPI document (schemathesis): no server error, and
every answer matches the document (status codes, content types, bodies)."""

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from teleexpertise.api.api import api
from teleexpertise.api.services import personal_token_create

ALL = ["cases:read", "cases:write", "reports:write"]


@pytest.fixture(autouse=True)
def _sealed(settings, tmp_path):
    settings.API_RATE_LIMIT = "100000/min"
    settings.DOCUMENT_STORAGE = "local"
    settings.DOCUMENT_ROOT = str(tmp_path / "documents")
    # As Django's test client does: a request's end must not close the test's transaction-wrapped connection.
    # (request_started closes it too: on PostgreSQL the next query then finds "the connection is closed".)
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (request_started, request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def requester_token(cast):
    cast.case_in("submitted")  # something to list
    return personal_token_create(user=cast.requester.user, name="schemathesis", scopes=ALL)[1]


# The document the server serves, read from the same object (no request needed to load it); calls go through
# Django's WSGI handler, so middleware, authentication and error handlers all run.
schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
schema.app = WSGIHandler()


@schema.parametrize()
@hypothesis_settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_openapi_document(case, requester_token):
    # positive_data_acceptance is left out: the document describes shapes, while the services also refuse
    # schema-valid input on domain rules (an empty question, an unknown expert id, a case not in the right
    # state), with a 4xx that the document declares.
    case.call_and_validate(headers={"Authorization": f"Bearer {requester_token}"},
                           excluded_checks=[positive_data_acceptance])
