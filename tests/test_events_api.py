"""GET /api/events/<channel>: any history channel's events, newest first, page by page,
filtered by type and time; bad queries get clear errors."""

from __future__ import annotations

import httpx

from tests.helpers import GatewayProcess


async def test_the_event_log_pages_back_through_a_channel_and_filters(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        for n in range(1, 8):
            kind = "alert.raised" if n % 2 else "alert.resolved"
            body = {"channel": "alerts", "data": {"type": kind, "n": n}}
            assert (await http.post("/api/publish", json=body)).status_code == 200

        seen: list[int] = []
        before = ""
        while True:
            page = (await http.get(f"/api/events/alerts?limit=3{before}")).json()
            seen += [event["data"]["n"] for event in page["events"]]
            if page["next_before"] is None:
                break
            before = f"&before={page['next_before']}"
        assert seen == [7, 6, 5, 4, 3, 2, 1]  # newest first, each once

        raised = (await http.get("/api/events/alerts?type=alert.raised")).json()
        assert [e["data"]["n"] for e in raised["events"]] == [7, 5, 3, 1]
        assert {e["type"] for e in raised["events"]} == {"alert.raised"}
        later = (await http.get("/api/events/alerts?since=4102444800")).json()  # year 2100
        assert later["events"] == []

        for path, code in [
            ("/api/events/alerts?limit=0", "invalid_query"),
            ("/api/events/alerts?limit=abc", "invalid_query"),
            ("/api/events/alerts?since=nan", "invalid_query"),
            ("/api/events/metrics.host.x", "invalid_channel"),  # latest-value: no log
            ("/api/events/bad%20channel", "invalid_channel"),
        ]:
            response = await http.get(path)
            assert response.status_code == 422, (path, response.text)
            assert response.json()["error"]["code"] == code, path
