"""schemathesis against the API's OpenAPI schema, on the live server: no 5xx, and every answer's status,
content type and body as documented. POST /v1/predict runs with trained (tiny) models."""

from __future__ import annotations

from dataclasses import replace

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from test_api import SETTINGS, api_fixture, client, flow_store_fixture, trained_models_fixture  # noqa: F401

from api.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
schema = schemathesis.openapi.from_dict(create_app(SETTINGS).openapi())  # the app opens nothing until asked
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def predict_api(flow_store, trained_models):
    with client(replace(SETTINGS, store_url=flow_store, models_dir=trained_models)) as http:
        yield http


@schema.exclude(path="/v1/predict").parametrize()
@FUZZ
def test_every_read_keeps_to_the_schema(case, api):
    case.call_and_validate(base_url=str(api.base_url), checks=CHECKS)


@schema.include(path="/v1/predict").parametrize()
@FUZZ
def test_predict_keeps_to_the_schema(case, predict_api):
    case.call_and_validate(base_url=str(predict_api.base_url), checks=CHECKS)
