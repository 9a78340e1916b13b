"""A pub/sub link that silently stops delivering is caught by the end-to-end probe."""

from __future__ import annotations

import asyncio

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.tcpproxy import FreezingProxy


async def test_probe_catches_a_silently_dead_link_and_reconnects(redis_server, gateways):
    proxy = await FreezingProxy(redis_server.port).start()
    gw = await asyncio.to_thread(
        GatewayProcess.start, gateways, proxy.url, probe_interval=0.3, probe_timeout=1.5
    )
    ws = await open_ws(gw.ws_url)
    await subscribe(ws, "probe.test")
    assert proxy.freeze_open_connections() >= 1  # the pub/sub link, silently dead now

    def said_dead() -> bool:
        return "silently dead" in gw.log_tail(300)

    await wait_until(said_dead, 20, "the watchdog to notice")
    await wait_until(lambda: gw.metric("relaycast_broker_reconnects_total") >= 1, 10)
    await asyncio.to_thread(gw.wait_for, gw.ready, 20, "ready again")
    async with AsyncPublisher(redis_server.url) as publisher:
        await publisher.publish("probe.test", {"after": "recovery"})
    frame = await recv_json(ws, timeout=15)
    assert frame["type"] == "message" and frame["data"] == {"after": "recovery"}, frame
    await ws.close()
    await proxy.close()


async def test_a_backlog_refilled_after_an_outage_is_paced_not_cut_off(
    redis_server, gateways, report_figure
):
    """After the link comes back, the gap is refilled from history; a subscriber whose
    outbox cannot take it at once catches up at its own pace instead of getting 4001."""
    proxy = await FreezingProxy(redis_server.port).start()
    gw = await asyncio.to_thread(
        GatewayProcess.start,
        gateways,
        proxy.url,
        probe_interval=0.3,
        probe_timeout=1.5,
        outbox_messages=64,
    )
    ws = await open_ws(gw.ws_url)
    await subscribe(ws, "backlog.test")
    proxy.freeze_open_connections()
    async with AsyncPublisher(redis_server.url) as publisher:  # straight to Redis
        for n in range(1, 601):
            await publisher.publish("backlog.test", {"n": n})
    got = []
    while len(got) < 600:
        frame = await recv_json(ws, timeout=30)
        assert frame["type"] == "message", frame
        got.append(frame["data"]["n"])
    assert got == list(range(1, 601))
    assert gw.metric("relaycast_slow_client_disconnects_total") == 0
    report_figure("outage backlog: 600 messages refilled into a 64-frame outbox, paced, in order")
    await ws.close()
    await proxy.close()
