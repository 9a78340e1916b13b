"""``GET /poll`` against real gateway processes and a real Redis: long-poll, resume, drain."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import httpx

from publisher import AsyncPublisher
from shared.settings import Settings
from tests.helpers import GatewayProcess, redis_numsub

SHORT_HISTORY = json.dumps([{"pattern": "short.*", "history_size": 3}])


async def poll(
    client: httpx.AsyncClient, gateway: GatewayProcess, *channels: str, **params: Any
) -> dict[str, Any]:
    query = [("channel", c) for c in channels] + [(k, str(v)) for k, v in params.items()]
    response = await client.get(gateway.url + "/poll", params=query)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    return response.json()  # type: ignore[no-any-return]


def messages(body: dict[str, Any]) -> list[tuple[str, int]]:
    return [(f["channel"], f["data"]["n"]) for f in body["frames"] if f["type"] == "message"]


def subscribed(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["channel"]: f for f in body["frames"] if f["type"] == "subscribed"}


async def test_first_poll_answers_at_once_with_every_channels_position(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    async with AsyncPublisher(redis_server.url) as pub, httpx.AsyncClient(timeout=30) as client:
        a = await pub.publish("tasks.a", {"n": 1})
        started = time.monotonic()
        body = await poll(client, gw, "tasks.a", "tasks.b", wait=20)
    assert time.monotonic() - started < 5
    subs = subscribed(body)
    assert subs["tasks.a"]["offset"] == 1 and subs["tasks.b"]["offset"] == 0
    assert body["since"] == f"{a.epoch}:1,{subs['tasks.b']['epoch']}:0"
    assert body["gateway"] == json.loads(gw.get("/gateway")[1])["gateway"]
    assert body["close"] is None


async def test_poll_waits_for_the_next_message_then_answers(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    async with AsyncPublisher(redis_server.url) as pub, httpx.AsyncClient(timeout=30) as client:
        since = (await poll(client, gw, "tasks.w"))["since"]
        pending = asyncio.ensure_future(poll(client, gw, "tasks.w", since=since, wait=20))
        await asyncio.sleep(0.5)
        assert not pending.done()  # nothing new: the poll waits
        position = await pub.publish("tasks.w", {"n": 1})
        started = time.monotonic()
        body = await asyncio.wait_for(pending, 10)
    assert time.monotonic() - started < 5
    assert messages(body) == [("tasks.w", 1)]
    assert body["since"] == f"{position.epoch}:1"


async def test_quiet_poll_returns_empty_after_its_wait(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    async with httpx.AsyncClient(timeout=30) as client:
        since = (await poll(client, gw, "tasks.q"))["since"]
        started = time.monotonic()
        body = await poll(client, gw, "tasks.q", since=since, wait=0.5)
    assert 0.4 < time.monotonic() - started < 5
    assert messages(body) == []
    assert body["since"] == since
    assert subscribed(body)["tasks.q"]["recovered"] is True


async def test_messages_between_polls_come_with_the_next_poll_on_any_gateway(
    redis_server, gateways
):
    a = GatewayProcess.start(gateways, redis_server.url)
    b = GatewayProcess.start(gateways, redis_server.url)
    async with AsyncPublisher(redis_server.url) as pub, httpx.AsyncClient(timeout=30) as client:
        since = (await poll(client, a, "tasks.g1", "tasks.g2"))["since"]
        for n in range(1, 6):
            await pub.publish("tasks.g1" if n % 2 else "tasks.g2", {"n": n})
        body = await poll(client, b, "tasks.g1", "tasks.g2", since=since)
        again = await poll(client, a, "tasks.g1", "tasks.g2", since=body["since"], wait=0.3)
    g1, g2 = [("tasks.g1", n) for n in (1, 3, 5)], [("tasks.g2", n) for n in (2, 4)]
    assert messages(body) == g1 + g2  # each channel's subscribed, then its replay
    assert all(s["recovered"] for s in subscribed(body).values())
    assert messages(again) == []  # no duplicate
    # Every poll leaves: nothing stays subscribed in Redis between polls.
    assert redis_numsub(redis_server, "tasks.g1") == 0


async def test_poll_says_recovered_false_when_history_no_longer_reaches_back(
    redis_server, gateways
):
    gw = GatewayProcess.start(gateways, redis_server.url, namespaces=SHORT_HISTORY)
    settings = Settings.load({"redis_url": redis_server.url, "namespaces": SHORT_HISTORY})
    async with AsyncPublisher(settings=settings) as pub, httpx.AsyncClient(timeout=30) as client:
        since = (await poll(client, gw, "short.p"))["since"]
        for n in range(1, 9):
            last = await pub.publish("short.p", {"n": n})
        body = await poll(client, gw, "short.p", since=since)
    sub = subscribed(body)["short.p"]
    assert sub["recovered"] is False and sub["offset"] == 8
    assert body["since"] == f"{last.epoch}:8"


async def test_poll_has_the_websockets_limits_and_errors(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url, max_subscriptions=2)
    async with httpx.AsyncClient(timeout=30) as client:
        body = await poll(client, gw, "tasks.1", "bad name!", "tasks.2", "tasks.3")
        codes = [(f.get("channel"), f["code"]) for f in body["frames"] if f["type"] == "error"]
        assert codes == [("bad name!", "invalid_channel"), ("tasks.3", "too_many_subscriptions")]
        for query, reason in [
            ("", "at least one channel"),
            ("?channel=a&since=nope", "not <epoch>:<offset>"),
            ("?channel=a&wait=soon", "wait must be a number"),
        ]:
            response = await client.get(gw.url + "/poll" + query)
            assert response.status_code == 400 and reason in response.text


async def test_long_poll_in_progress_is_told_to_go_elsewhere_on_drain(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url, drain_seconds=0.2)
    async with httpx.AsyncClient(timeout=30) as client:
        since = (await poll(client, gw, "tasks.d"))["since"]
        pending = asyncio.ensure_future(poll(client, gw, "tasks.d", since=since, wait=20))
        await asyncio.sleep(0.5)
        gw.signal(signal.SIGTERM)
        body = await asyncio.wait_for(pending, 10)
    assert body["close"]["code"] == 1012
    assert body["since"] == since
    assert gw.wait_exit(15) == 0
