"""The HTTP API: publish and drive tasks behind the key; read metrics, alerts and tasks."""

from __future__ import annotations

from typing import Any

import httpx

from publisher.metrics import MetricsPublisher
from shared.settings import Settings
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe

KEY = "k3y-for-tests-only"
AUTH = {"Authorization": f"Bearer {KEY}"}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


async def test_with_a_key_set_every_endpoint_needs_it(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url, api_key=KEY)
    calls = [
        ("POST", "/api/publish", {"channel": "a", "data": 1}),
        ("POST", "/api/tasks", {"project": "p"}),
        ("POST", "/api/tasks/p/t/progress", {"percent": 1}),
        ("GET", "/api/tasks/p", None),
        ("GET", "/api/tasks/p/t", None),
        ("GET", "/api/metrics", None),
        ("GET", "/api/alerts", None),
        ("POST", "/api/alerts/x/resolve", {}),
    ]
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {KEY}"}):
            for method, path, body in calls:
                response = await http.request(method, path, json=body, headers=headers)
                assert response.status_code == 401, (method, path, headers)
                assert error_of(response)["code"] == "unauthorized"
                assert response.headers["www-authenticate"] == "Bearer"
        response = await http.get("/api/openapi.json")  # the description is public
        assert response.status_code == 200
        document = response.json()
        assert document["openapi"].startswith("3.")
        assert "/api/tasks/{project}/{task_id}/progress" in document["paths"]
        assert "Progress" in document["components"]["schemas"]

        ws = await open_ws(gateway.ws_url)
        await subscribe(ws, "orders.eu")
        published = await http.post(
            "/api/publish", json={"channel": "orders.eu", "data": {"id": 7}}, headers=AUTH
        )
        assert published.status_code == 200, published.text
        assert published.json()["offset"] == 1 and published.json()["channel"] == "orders.eu"
        frame = await recv_json(ws)
        assert frame["data"] == {"id": 7} and frame["offset"] == 1
        await ws.close()

        for body, status, code in [
            ({"channel": "bad channel!", "data": 1}, 422, "invalid_channel"),
            ({"channel": "orders.eu"}, 422, "invalid_body"),
            ({"channel": "orders.eu", "data": 1, "extra": 2}, 422, "invalid_body"),
            ({"channel": "orders.eu", "data": "x" * (1024 * 1024 + 1)}, 413, "too_large"),
        ]:
            response = await http.post("/api/publish", json=body, headers=AUTH)
            assert (response.status_code, error_of(response)["code"]) == (status, code)
        response = await http.post("/api/publish", content=b"{nope", headers=AUTH)
        assert (response.status_code, error_of(response)["code"]) == (400, "not_json")
    assert KEY not in gateway.log_tail(500), "the key must never be logged"


async def test_a_task_driven_over_http_publishes_every_change(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    log = gateway.log_tail(500)
    assert log.count("RELAYCAST_API_KEY is empty") == 1  # an open API is announced, once
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "tasks.shop")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        created = await http.post(
            "/api/tasks",
            json={"project": "shop", "id": "reindex-1", "name": "Reindex", "total_steps": 2},
        )
        assert created.status_code == 201, created.text
        assert created.json()["status"] == "queued"
        for action, body in [
            ("start", None),
            ("progress", {"step": 1, "step_name": "products"}),
            ("log", {"message": "products done", "level": "info"}),
            ("progress", {"percent": 80, "message": "orders"}),
            ("complete", {"result": {"documents": 1200}}),
        ]:
            response = await http.post(f"/api/tasks/shop/reindex-1/{action}", json=body)
            assert response.status_code == 200, (action, response.text)
        state = (await http.get("/api/tasks/shop/reindex-1")).json()
        assert state["status"] == "completed" and state["result"] == {"documents": 1200}
        listed = (await http.get("/api/tasks/shop")).json()
        assert [t["id"] for t in listed["tasks"]] == ["reindex-1"]

        types = [(await recv_json(ws))["data"]["type"] for _ in range(6)]
        assert types == [
            "task.queued",
            "task.started",
            "task.progress",
            "task.log",
            "task.progress",
            "task.completed",
        ]

        workflow = await http.post(
            "/api/tasks",
            json={"project": "shop", "id": "release", "phases": [{"name": "a"}, {"name": "b"}]},
        )
        assert workflow.json()["kind"] == "workflow"
        await http.post("/api/tasks/shop/release/start")
        await http.post("/api/tasks/shop/release/start", json={"phase": "a"})
        phase = await http.post(
            "/api/tasks/shop/release/progress", json={"percent": 50, "phase": "a"}
        )
        assert phase.json()["percent"] == 25

        for method, path, body, status, code in [
            ("POST", "/api/tasks", {"project": "shop", "id": "reindex-1"}, 409, "task_exists"),
            ("POST", "/api/tasks", {"project": "sh op"}, 422, "invalid_task"),
            ("POST", "/api/tasks", {"id": "x"}, 422, "invalid_body"),
            (
                "POST",
                "/api/tasks/shop/reindex-1/progress",
                {"percent": 5},
                409,
                "invalid_transition",
            ),
            (
                "POST",
                "/api/tasks/shop/release/progress",
                {"percent": 150, "phase": "a"},
                422,
                "invalid_task",
            ),
            ("POST", "/api/tasks/shop/release/progress", {"percent": "half"}, 422, "invalid_body"),
            ("POST", "/api/tasks/shop/nope/start", None, 404, "unknown_task"),
            ("POST", "/api/tasks/shop/release/explode", None, 404, "not_found"),
            ("GET", "/api/tasks/shop/nope", None, 404, "unknown_task"),
            ("GET", "/api/tasks/shop?limit=0", None, 422, "invalid_query"),
        ]:
            response = await http.request(method, path, json=body)
            assert (response.status_code, error_of(response)["code"]) == (status, code), path
            assert error_of(response)["message"]
    await ws.close()


async def test_metrics_and_alerts_are_readable(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    settings = Settings.load({"redis_url": redis_server.url})
    metrics = MetricsPublisher(settings, host="api-host")
    await metrics.publish(await metrics.sample(5.0))
    await metrics.close()
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        fleet = (await http.get("/api/metrics")).json()
        assert list(fleet["hosts"]) == ["api-host"]
        one = (await http.get("/api/metrics/api-host")).json()
        assert one["host"] == "api-host" and one["cpu"]["count"] >= 1
        missing = await http.get("/api/metrics/elsewhere")
        assert (missing.status_code, error_of(missing)["code"]) == (404, "unknown_host")

        alerts = (await http.get("/api/alerts")).json()
        assert alerts["active"] == [] and alerts["recent"] == []
        resolve = await http.post("/api/alerts/cpu_high@x:1/resolve", json={})
        assert (resolve.status_code, error_of(resolve)["code"]) == (404, "unknown_alert")


async def test_without_redis_the_state_endpoints_say_so(gateways):
    gateway = GatewayProcess.start(gateways, "memory://")
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        response = await http.post("/api/tasks", json={"project": "p"})
        assert (response.status_code, error_of(response)["code"]) == (503, "unavailable")
        assert "needs Redis" in error_of(response)["message"]
        published = await http.post("/api/publish", json={"channel": "c", "data": [1]})
        assert published.status_code == 200 and published.json()["offset"] == 1
