"""A client that stops reading is cut off with 4001; memory stays bounded; others keep up."""

from __future__ import annotations

import asyncio
import json

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.rawws import RawWebSocket

PAD = "x" * 1000
MAX_MESSAGES = 20_000


async def test_a_client_that_never_reads_is_closed_with_4001(redis_server, gateways, report_figure):
    gw = GatewayProcess.start(
        gateways, redis_server.url, outbox_messages=200, outbox_bytes=256 * 1024
    )
    slow = await RawWebSocket.connect(gw.port, rcvbuf=4096)
    await slow.send_text(json.dumps({"type": "subscribe", "channel": "slow.test"}))
    fast = await open_ws(gw.ws_url)
    await subscribe(fast, "slow.test")
    rss_before = gw.rss()

    received: list[int] = []

    async def read_fast() -> None:
        while True:
            frame = await recv_json(fast, timeout=30)
            if frame["type"] == "message":
                received.append(frame["data"]["n"])

    reader = asyncio.create_task(read_fast())
    published = 0
    async with AsyncPublisher(redis_server.url) as publisher:
        while published < MAX_MESSAGES:
            await publisher.publish("slow.test", {"n": published, "pad": PAD})
            published += 1
            if published % 500 == 0 and gw.metric("relaycast_slow_client_disconnects_total") >= 1:
                break
    assert gw.metric("relaycast_slow_client_disconnects_total") == 1, "never cut off"

    code, frames = await slow.read_until_close(timeout=30)
    assert code == 4001
    assert frames < published  # it was cut off, not served everything

    await wait_until(lambda: len(received) >= published, 30, "the fast client's messages")
    reader.cancel()
    assert received == list(range(published)), "the fast client missed or reordered messages"
    growth = gw.rss() - rss_before
    report_figure(
        f"slow client: cut off with 4001 after {frames} of {published} x 1 KB messages;"
        f" gateway RSS +{growth >> 10} KiB; the other client got all"
    )
    assert growth < 64 * 1024 * 1024
    await fast.close()
    await slow.close()
