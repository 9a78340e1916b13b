"""Two gateways on one Redis, hundreds of clients over both: every message, once, in order."""

from __future__ import annotations

import asyncio

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, redis_numsub, subscribe, wait_until

CLIENTS = 300
MESSAGES = 200


async def test_every_client_on_two_gateways_gets_every_message_in_order(
    redis_server, gateways, report_figure
):
    a = GatewayProcess.start(gateways, redis_server.url)
    b = GatewayProcess.start(gateways, redis_server.url)
    sockets = await asyncio.gather(*(open_ws((a if i % 2 else b).ws_url) for i in range(CLIENTS)))
    starts = await asyncio.gather(*(subscribe(ws, "fanout.test") for ws in sockets))
    assert {s["offset"] for s in starts} == {0}

    async with AsyncPublisher(redis_server.url) as publisher:
        for n in range(1, MESSAGES + 1):
            await publisher.publish("fanout.test", {"n": n})

    async def collect(ws):
        got = []
        while len(got) < MESSAGES:
            frame = await recv_json(ws, timeout=30)
            assert frame["type"] == "message", frame
            got.append((frame["offset"], frame["data"]["n"]))
        return got

    results = await asyncio.gather(*(collect(ws) for ws in sockets))
    expected = [(n, n) for n in range(1, MESSAGES + 1)]
    for got in results:
        assert got == expected
    # What /metrics reports: every frame written (the subscribed frames too), and the
    # age of the messages written.
    for gateway, held in ((a, CLIENTS // 2), (b, CLIENTS - CLIENTS // 2)):
        assert gateway.metric("relaycast_frames_sent_total") >= held * (MESSAGES + 1)
        assert gateway.metric("relaycast_publish_to_send_seconds_count") > 0
        assert gateway.metric("relaycast_publish_to_send_seconds_sum") < 30 * MESSAGES
    # One broker subscription per gateway, however many clients each holds.
    assert redis_numsub(redis_server, "fanout.test") == 2
    await asyncio.gather(*(ws.close() for ws in sockets))
    await wait_until(lambda: redis_numsub(redis_server, "fanout.test") == 0, 10)
    report_figure(f"fan-out: {CLIENTS} clients on 2 gateways x {MESSAGES} messages, in order")
