"""Heartbeats, the reference-counted broker subscription, and the drain on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time

import pytest
from websockets.exceptions import ConnectionClosed

from tests.helpers import GatewayProcess, open_ws, recv_json, redis_numsub, subscribe, wait_until
from tests.rawws import RawWebSocket


async def test_server_pings_and_closes_a_silent_client_with_4000(redis_server, gateways):
    gw = GatewayProcess.start(
        gateways, redis_server.url, heartbeat_interval=0.2, heartbeat_timeout=1.0
    )
    silent = await open_ws(gw.ws_url)
    polite = await open_ws(gw.ws_url)

    async def answer_pings() -> None:
        async for raw in polite:
            if json.loads(raw)["type"] == "ping":
                await polite.send('{"type":"pong"}')

    answering = asyncio.create_task(answer_pings())
    frames = []
    try:
        async with asyncio.timeout(10):
            async for raw in silent:
                frames.append(json.loads(raw))
    except ConnectionClosed:
        pass
    assert silent.close_code == 4000
    assert {"type": "ping"} in frames
    await asyncio.sleep(1.5)  # past the timeout: the one that answers is still open
    assert not answering.done()
    await polite.close()
    answering.cancel()


async def test_client_ping_is_answered_with_pong(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url)
    ws = await open_ws(gw.ws_url)
    await ws.send('{"type":"ping","id":41}')
    assert await recv_json(ws) == {"type": "pong", "id": 41}
    await ws.close()


async def test_subscribe_unsubscribe_burst_keeps_exactly_one_broker_subscription(
    redis_server, gateways
):
    gw = GatewayProcess.start(gateways, redis_server.url)
    # The answers are never read: an unbounded queue keeps the socket read, so that a
    # client's close handshake completes instead of waiting out its close timeout.
    clients = await asyncio.gather(*(open_ws(gw.ws_url, max_queue=None) for _ in range(60)))
    rng = random.Random(7)

    async def churn(ws) -> None:
        for _ in range(20):
            await ws.send('{"type":"subscribe","channel":"burst.one"}')
            if rng.random() < 0.5:
                await asyncio.sleep(0)
            await ws.send('{"type":"unsubscribe","channel":"burst.one"}')

    await asyncio.gather(*(churn(ws) for ws in clients))
    # Everyone ends subscribed except these, which leave at the end.
    await asyncio.gather(*(ws.send('{"type":"subscribe","channel":"burst.one"}') for ws in clients))
    await wait_until(lambda: gw.metric("relaycast_subscriptions") == len(clients), 20)
    assert redis_numsub(redis_server, "burst.one") == 1
    await asyncio.gather(
        *(ws.send('{"type":"unsubscribe","channel":"burst.one"}') for ws in clients[:-1])
    )
    await wait_until(lambda: gw.metric("relaycast_subscriptions") == 1, 20)
    assert redis_numsub(redis_server, "burst.one") == 1
    await clients[-1].close()
    await wait_until(lambda: redis_numsub(redis_server, "burst.one") == 0, 20, "unsubscribe")
    assert gw.metric("relaycast_channels") == 0
    await asyncio.gather(*(ws.close() for ws in clients[:-1]))


async def test_sigterm_drains_clients_with_1012_then_exits(redis_server, gateways, report_figure):
    drain = 2.0
    gw = GatewayProcess.start(gateways, redis_server.url, drain_seconds=drain)
    clients = await asyncio.gather(*(open_ws(gw.ws_url) for _ in range(40)))
    for ws in clients:
        await subscribe(ws, "drain.test")
    closed_at: list[float] = []

    async def wait_close(ws) -> None:
        try:
            async for _ in ws:
                pass
        except ConnectionClosed:
            pass
        closed_at.append(time.monotonic())

    waiters = [asyncio.create_task(wait_close(ws)) for ws in clients]
    start = time.monotonic()
    gw.signal(signal.SIGTERM)
    await wait_until(lambda: gw.get("/readyz")[0] == 503, 5, "readiness 503")
    assert gw.get("/healthz")[0] == 200  # alive while draining: no liveness kill
    with pytest.raises(ConnectionRefusedError, match="503"):
        await RawWebSocket.connect(gw.port)  # no new connections while draining
    code = await asyncio.to_thread(gw.wait_exit, drain + 10)
    elapsed = time.monotonic() - start
    await asyncio.gather(*waiters)
    assert code == 0
    assert {ws.close_code for ws in clients} == {1012}
    spread = max(closed_at) - min(closed_at)
    report_figure(
        f"drain: 40 clients closed with 1012 over {spread:.2f}s of a {drain}s window;"
        f" exit {elapsed:.2f}s after SIGTERM"
    )
    assert spread > drain / 4, "closes were not spread over the drain window"
    assert elapsed < drain + 8
