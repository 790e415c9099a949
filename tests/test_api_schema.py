"""schemathesis against the API's OpenAPI schema, on the live server: no 5xx, and every answer's status,
content type and body as documented."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api import SETTINGS, api_fixture, flow_store_fixture  # noqa: F401 (fixtures)

from api.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
schema = schemathesis.openapi.from_dict(create_app(SETTINGS).openapi())  # the app opens nothing until asked


@schema.exclude(path="/v1/predict").parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_read_keeps_to_the_schema(case, api):
    case.call_and_validate(base_url=str(api.base_url), checks=CHECKS)
