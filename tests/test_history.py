"""Metric history and metrics of your own: sent over HTTP and the library, kept in tiers,
read back by range, refused clearly when wrong; and the publishers' health endpoint."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import msgspec
import pytest
import redis

from gateway.client import Client, Message
from publisher.service_metrics import ServiceMetrics
from shared.settings import Settings
from shared.state.metrics import SeriesInfo, SourceSnapshot
from shared.state.series import InvalidSample
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.publishers import PublisherProcess


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    return body["error"]  # type: ignore[no-any-return]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_batch_over_http_is_published_and_kept_in_history(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "metrics.source.billing")
    batch = {
        "interval": 5,
        "samples": [
            {"metric": "queue.depth", "value": 412, "unit": "jobs"},
            {"metric": "errors", "value": 10, "kind": "counter", "entity": "acct-1"},
            {"metric": "errors", "value": 5, "kind": "counter", "entity": "acct-1"},
        ],
    }
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        response = await http.post("/api/metrics/billing", json=batch)
        assert response.status_code == 200, response.text
        assert response.json()["series"] == 2
        frame = await recv_json(ws)
        series = {(s["metric"], s["entity"]): s for s in frame["data"]["series"]}
        assert (
            series["queue.depth", ""]["value"] == 412
            and series["queue.depth", ""]["unit"] == "jobs"
        )
        assert series["errors", "acct-1"]["value"] == 3.0  # (10 + 5) over 5 s
        assert series["errors", "acct-1"]["kind"] == "counter"

        batch["samples"] = [{"metric": "queue.depth", "value": 400}]
        assert (await http.post("/api/metrics/billing", json=batch)).status_code == 200
        frame = await recv_json(ws)
        # the source's every series rides along: a new subscriber sees them all
        assert len(frame["data"]["series"]) == 2

        hour = (await http.get("/api/history/billing/queue.depth")).json()
        assert hour["step"] == 0 and [p[1] for p in hour["points"]] == [412, 400]
        day = (await http.get("/api/history/billing/queue.depth?range=1d")).json()
        assert day["step"] == 60
        assert day["points"][-1][1:] == [406, 400, 412] or len(day["points"]) == 2
        month = (await http.get("/api/history/billing/errors?entity=acct-1&range=30d")).json()
        assert month["step"] == 900 and month["points"][0][1] == 3.0
        listed = (await http.get("/api/history/billing")).json()["series"]
        assert {(s["metric"], s["entity"]) for s in listed} == set(series)
        sources = (await http.get("/api/history")).json()["sources"]
        assert {"name": "billing", "kind": "service"} in sources
    await ws.close()


BAD_BATCHES = [
    (b'{"samples": [{"metric": "a", "value": "12"}]}', 422, "invalid_body"),
    (b'{"samples": [{"metric": "a", "value": 1e999}]}', 422, "invalid_body"),
    (b'{"samples": [{"metric": "a", "value": NaN}]}', 400, "not_json"),
    (b'{"samples": [{"metric": "a b", "value": 1}]}', 422, "invalid_sample"),
    (b'{"samples": [{"metric": "a", "value": 1, "entity": "x|y"}]}', 422, "invalid_sample"),
    (b'{"samples": [{"metric": "a", "value": -1, "kind": "counter"}]}', 422, "invalid_sample"),
    (b'{"samples": []}', 422, "invalid_sample"),
    # a rate, or a bucket's sum, would overflow to infinity: stored, it could not be read
    (b'{"samples": [{"metric": "a", "value": 1e301}]}', 422, "invalid_sample"),
    (
        b'{"samples": [{"metric": "a", "value": 1e300, "kind": "counter"}], "interval": 1e-9}',
        422,
        "invalid_sample",
    ),
    (b'{"samples": [{"metric": "a", "value": 1}], "interval": 0}', 422, "invalid_sample"),
    (
        b'{"samples": [{"metric": "n1", "value": 1}, {"metric": "n2", "value": 1}]}',
        422,
        "too_many_series",
    ),
]


async def test_bad_batches_are_refused_and_nothing_stored_is_lost(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url, metrics_series_cap=2)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        good = {"samples": [{"metric": "a", "value": 7}]}
        assert (await http.post("/api/metrics/svc", json=good)).status_code == 200
        for body, status, code in BAD_BATCHES:
            response = await http.post(
                "/api/metrics/svc", content=body, headers={"content-type": "application/json"}
            )
            assert response.status_code == status, (body, response.text)
            assert error_of(response)["code"] == code, body
        kept = (await http.get("/api/history/svc/a")).json()
        assert [p[1] for p in kept["points"]] == [7]
        listed = (await http.get("/api/history/svc")).json()["series"]
        assert [s["metric"] for s in listed] == ["a"]


async def test_bad_queries_get_clear_errors(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url, history_max_points=100)
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as http:
        good = {"samples": [{"metric": "a", "value": 1}]}
        assert (await http.post("/api/metrics/svc", json=good)).status_code == 200
        for path, status, code in [
            ("/api/history/nobody/a", 404, "unknown_series"),
            ("/api/history/nobody", 404, "unknown_series"),
            ("/api/history/svc/b", 404, "unknown_series"),
            ("/api/history/svc/a?range=30d", 422, "range_too_large"),  # 2,881 points > 100
            ("/api/history/svc/a?range=forever", 422, "invalid_query"),
            ("/api/history/svc/a?start=abc", 422, "invalid_query"),
            ("/api/history/svc/a?start=nan", 422, "invalid_query"),
            ("/api/history/svc/a?start=0&end=1e308", 422, "invalid_query"),  # no overflow
            ("/api/history/svc/a?start=-1e308", 422, "invalid_query"),
            ("/api/history/svc/a?start=10&end=5", 422, "invalid_sample"),
            ("/api/history/svc/a?max_points=100000", 422, "invalid_sample"),
        ]:
            response = await http.get(path)
            assert response.status_code == status, (path, response.text)
            assert error_of(response)["code"] == code, path


async def test_the_library_sends_batches_and_refuses_bad_values_at_once(redis_server):
    settings = Settings.load({"redis_url": redis_server.url})
    async with ServiceMetrics(source="worker-1", settings=settings) as metrics:
        with pytest.raises(InvalidSample, match="not finite"):
            metrics.gauge("depth", float("inf"))
        with pytest.raises(InvalidSample, match="not a number"):
            metrics.gauge("depth", "12")  # type: ignore[arg-type]
        metrics.gauge("depth", 3, entity="q1")
        metrics.count("handled", 4)
        assert await metrics.flush() is not None
        assert await metrics.flush() is None  # nothing new
        metrics.gauge("depth", 5, entity="q1")
        await metrics.flush()
        history = await metrics.store.query("worker-1", "depth", entity="q1")
        assert [p[1] for p in history.points] == [3, 5]
        (handled,) = [s for s in await metrics.store.series("worker-1") if s.metric == "handled"]
        assert handled.kind == "counter" and handled.value > 0


async def test_a_sources_channel_carries_snapshots_that_decode_into_their_struct(
    redis_server, gateways
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    settings = Settings.load({"redis_url": redis_server.url})
    async with Client(gateway.ws_url, ["metrics.source.shop"]) as client:
        await wait_until(lambda: len(client.positions) == 1, 10, "the subscription")
        async with ServiceMetrics(source="shop", settings=settings) as metrics:
            metrics.gauge("depth", 3, entity="q1", unit="jobs")
            metrics.count("orders", 6)
            await metrics.flush()
        async with asyncio.timeout(15):
            message = await anext(m async for m in client if isinstance(m, Message))
    snapshot = message.event
    assert isinstance(snapshot, SourceSnapshot) and snapshot.source == "shop"
    assert 0 < snapshot.interval < 60
    assert sorted(snapshot.series, key=lambda s: s.metric) == [
        SeriesInfo(metric="depth", entity="q1", unit="jobs", value=3, time=snapshot.time),
        SeriesInfo(
            metric="orders", kind="counter", value=6 / snapshot.interval, time=snapshot.time
        ),
    ]
    assert msgspec.to_builtins(snapshot) == message.data  # every field published, no other


async def test_host_snapshots_go_into_history_in_the_publishing_step(
    redis_server, gateways, publishers
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    port = free_port()
    PublisherProcess.start(
        publishers,
        "metrics",
        redis_server.url,
        metrics_host="box-h",
        metrics_interval=0.2,
        metrics_idle_interval=0.2,
        health_port=port,
    )
    client = redis.Redis.from_url(redis_server.url)

    def samples() -> int:
        return int(client.zcard("rc:hist:raw:box-h|cpu.percent"))

    await wait_until(lambda: samples() >= 3, 20, "three samples in history")
    offset = int(client.hget("rc:{metrics.host.box-h}:m", "o") or 0)
    assert offset >= samples() - 1  # one publish per stored sample
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(f"{gateway.url}/api/history/box-h/memory.percent")
        assert response.json()["unit"] == "%" and len(response.json()["points"]) >= 3
        live = await http.get(f"http://127.0.0.1:{port}/healthz")
        ready = await http.get(f"http://127.0.0.1:{port}/readyz")
        assert live.status_code == 200 and ready.status_code == 200, (live.text, ready.text)
    client.close()


async def test_health_says_not_ready_while_redis_is_away(redis_server, publishers):
    port = free_port()
    PublisherProcess.start(
        publishers, "alerts", redis_server.url, alerts_interval=0.2, health_port=port
    )
    async with httpx.AsyncClient(timeout=10) as http:

        async def status(path: str) -> int:
            try:
                return (await http.get(f"http://127.0.0.1:{port}{path}")).status_code
            except httpx.HTTPError:
                return 0

        deadline = time.monotonic() + 20
        while await status("/readyz") != 200:
            assert time.monotonic() < deadline, "never ready"
            await asyncio.sleep(0.1)
        redis_server.stop()
        deadline = time.monotonic() + 30
        while await status("/readyz") != 503:
            assert time.monotonic() < deadline, "still ready without redis"
            await asyncio.sleep(0.2)
        assert await status("/healthz") == 200  # the loop still runs: no restart wanted
