"""schemathesis against the service's own OpenAPI document: no request it can generate gets a 5xx.

Requests carry a valid token of namespace ``default`` so writes get past authentication (and the
namespace field, when generated differently, meets the 403 path). Hypothesis drives each operation
directly (schemathesis' pytest plugin does not support this pytest yet).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from modeltrace import api

OPERATIONS = [
    "GET /api/models",
    "POST /api/models",
    "GET /api/models/{model_id}",
    "GET /api/models/{model_id}/lineage",
    "GET /api/edges/{edge_id}",
    "POST /api/identify",
    "POST /api/license/check",
    "POST /api/royalties/terms",
    "POST /api/royalties/reports",
    "GET /api/royalties/{owner}",
]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, lineage_models: dict[str, Path]) -> tuple:
    db = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'registry.sqlite'}"
    with api.open_registry(db) as registry:
        api.registry_add(lineage_models["base"], registry=registry)
        api.registry_add(lineage_models["child"], registry=registry)
        token = api.token_create("default", registry=registry)
    app = api.create_service(db, private_reads=False)
    return app, token, schemathesis.openapi.from_asgi("/api/openapi.json", app)


def test_every_operation_is_fuzzed(service: tuple) -> None:
    labels = {result.ok().label for result in service[2].get_all_operations()}
    assert labels == set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_errors(service: tuple, label: str) -> None:
    _app, token, schema = service
    method, path = label.split(" ")
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        case.validate_response(response, checks=[not_a_server_error])

    run()
