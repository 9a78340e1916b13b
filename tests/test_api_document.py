"""The OpenAPI document describes exactly the API the gateway mounts: every route and method
under ``/api`` is an operation of the document, and every operation is a mounted route.
A route added without its description (or a description left after its route went) fails
here, not in a client that trusted the document."""

from __future__ import annotations

import pytest
from starlette.routing import Match, Route

from gateway.api import ACTIONS
from gateway.api_schema import openapi_document
from gateway.app import create_app
from shared.settings import Settings

# Path parameters the document spells out one path each (POST /api/tasks/P/T/start, ...).
_ENUMERATED = {"action": tuple(ACTIONS)}


def _mounted() -> set[tuple[str, str]]:
    app = create_app(Settings.load({"redis_url": "memory://", "mode": "development"}))
    found: set[tuple[str, str]] = set()
    for route in app.routes:
        if not (isinstance(route, Route) and route.path.startswith("/api")):
            continue
        paths = [route.path]
        for name, values in _ENUMERATED.items():
            marker = "{" + name + "}"
            if marker in route.path:
                paths = [p.replace(marker, v) for p in paths for v in values]
        for method in (route.methods or set()) - {"HEAD"}:
            found.update((path, method) for path in paths)
    return found


def _documented() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, operations in openapi_document()["paths"].items()
        for method in operations
    }


def test_every_api_route_is_documented() -> None:
    missing = sorted(_mounted() - _documented())
    assert not missing, f"routes under /api missing from the OpenAPI document: {missing}"


def test_every_documented_operation_is_served() -> None:
    app = create_app(Settings.load({"redis_url": "memory://", "mode": "development"}))
    unserved = []
    for path, method in sorted(_documented()):
        scope = {"type": "http", "path": path, "method": method}
        if not any(r.matches(scope)[0] is Match.FULL for r in app.routes):
            unserved.append((path, method))
    assert not unserved, f"documented but not served: {unserved}"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/metrics/{host}", "POST"),
        ("/api/history/{source}/{metric}", "GET"),
        ("/api/alerts/silence", "POST"),
        ("/api/events/{channel}", "GET"),
    ],
)
def test_the_metrics_and_alerts_operations_state_their_names(path: str, method: str) -> None:
    """Sources, metrics, entities and channels carry the pattern and lengths the API
    checks, so a schema-driven client's valid names are names the API takes."""
    document = openapi_document()
    operation = document["paths"][path][method.lower()]
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            assert {"pattern", "minLength", "maxLength"} <= parameter["schema"].keys()
    sample = document["components"]["schemas"]["Sample"]["properties"]
    assert sample["metric"]["pattern"] == "^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
    assert sample["entity"]["maxLength"] == 64
