"""Schema-driven fuzzing of the HTTP API: schemathesis makes requests for every operation
of ``/api/openapi.json`` (bodies, path and query parameters, valid by the document and
not), sends them to a production gateway on real Redis, and no answer may be a 5xx.

Bounded: schemathesis's coverage cases (boundaries and wrong types of each parameter and
field) and a dozen generated examples per operation, some 2,800 requests in all,
derandomized so that a run is repeatable. Every route under ``/api`` is an operation of
the document (tests/test_api_document.py), so every route is fuzzed. The gateway writes
under its own key prefix, so what the fuzzer revokes or creates touches no other test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from gateway.api_schema import openapi_document
from tests.helpers import GatewayProcess
from tests.security.conftest import API_KEY, start_gateway

schema = schemathesis.openapi.from_dict(openapi_document())


@pytest.fixture(scope="module")
def fuzzed(keys, redis_url, package_gateways) -> GatewayProcess:
    return start_gateway(package_gateways, redis_url, keys, key_prefix="fuzz")


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    """One keep-alive HTTP client for every request, as an API client would hold: a new
    TCP connection per request cost a third of the fuzzing time."""
    with requests.Session() as session:
        yield session


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_5xx(case, fuzzed, http):  # type: ignore[no-untyped-def]
    response = case.call(
        base_url=fuzzed.url,
        session=http,
        headers={"Authorization": "Bearer " + API_KEY},
        timeout=10,
    )
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    )


def test_the_document_states_the_naming_rules():
    """A schema-driven client's valid names are names the API takes."""
    document = openapi_document()
    components = document["components"]["schemas"]
    channel = components["PublishRequest"]["properties"]["channel"]
    assert (channel["pattern"], channel["maxLength"]) == ("^[A-Za-z0-9_.:@-]{1,128}$", 128)
    assert components["Create"]["properties"]["project"]["maxLength"] == 32
    parameters = document["paths"]["/api/tasks/{project}/{task_id}"]["get"]["parameters"]
    rules = {p["name"]: p["schema"] for p in parameters}
    assert rules["project"]["pattern"] == "^[A-Za-z0-9_-]{1,32}$"
    assert rules["task_id"]["pattern"] == "^[A-Za-z0-9_-]{1,64}$"


@pytest.mark.parametrize(
    ("path", "method", "accepted"),
    [
        ("/api/publish", "POST", {200, 413}),
        ("/api/tasks/{project}", "GET", {200}),
        ("/api/tasks/{project}/{task_id}", "GET", {200, 404}),
        ("/api/metrics/{host}", "POST", {200}),
    ],
)
def test_valid_examples_are_taken(fuzzed, http, path, method, accepted):
    """Examples valid by the document (channel, project and task id rules included) are
    served, not refused as malformed."""
    operation = schema[path][method]

    @given(case=operation.as_strategy(GenerationMode.POSITIVE))
    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    def check(case):  # type: ignore[no-untyped-def]
        response = case.call(
            base_url=fuzzed.url,
            session=http,
            headers={"Authorization": "Bearer " + API_KEY},
            timeout=10,
        )
        if response.status_code == 400 and "cursor" in (case.query or {}):
            # A cursor is opaque: one no page gave is refused, and clearly.
            assert response.json()["error"]["code"] == "invalid_cursor"
            return
        if response.status_code == 422 and "as both gauge and counter" in response.text:
            return  # one metric sent as both kinds in a batch: a rule JSON Schema cannot state
        assert response.status_code in accepted, (
            f"{case.formatted_path} {case.query} {case.body!r:.200} -> {response.text[:300]}"
        )

    check()
