"""The REST API's OpenAPI schema fuzzed with schemathesis: whatever a client sends that the schema
allows or nearly allows, the answer is never a server error (5xx other than 503, "busy"), and
every answer conforms to the schema it documents."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from s2s.admission import Gate
from s2s.catalog import ModelCatalog
from s2s.checkpoint import save_model
from s2s.rest import create_app
from s2s.service import Service
from tests.conftest import random_model


@pytest.fixture(scope="module")
def api_schema(tokenizer, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("models")
    model = random_model(tokenizer.vocab_size, scale=3.0)
    for name in ("en-fr", "de-en"):
        save_model(folder / name, model, tokenizer)
    service = Service(ModelCatalog(Path(folder), default="en-fr"), gate=Gate(max_wait=0.05))
    return schemathesis.openapi.from_asgi("/v1/openapi.json", create_app(service))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_server_error_and_every_answer_fits_the_schema(case) -> None:
    response = case.call()
    assert response.status_code < 500 or response.status_code == 503, (case.path, case.body, response.text[:500])
    if response.status_code == 200:
        case.validate_response(response)
