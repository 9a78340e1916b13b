"""Redis goes away and comes back: clients stay, readiness tells, delivery resumes."""

from __future__ import annotations

import asyncio
import contextlib

from publisher import AsyncPublisher
from shared.broker import BrokerUnavailable
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until


async def test_redis_restart_keeps_clients_and_resumes_delivery(redis_server, gateways):
    gw = GatewayProcess.start(gateways, redis_server.url, probe_interval=0.5, probe_timeout=2)
    clients = await asyncio.gather(*(open_ws(gw.ws_url) for _ in range(20)))
    for ws in clients:
        await subscribe(ws, "loss.test")
    async with AsyncPublisher(redis_server.url) as publisher:
        await publisher.publish("loss.test", {"n": "before"})
    for ws in clients:
        assert (await recv_json(ws))["data"] == {"n": "before"}

    redis_server.kill()
    await wait_until(lambda: gw.get("/readyz")[0] == 503, 15, "readiness 503")
    async with AsyncPublisher(redis_server.url) as publisher:
        with contextlib.suppress(BrokerUnavailable):
            await publisher.publish("loss.test", {"n": "lost"})
    redis_server.start()
    await wait_until(lambda: gw.get("/readyz")[0] == 200, 20, "readiness 200")

    async with AsyncPublisher(redis_server.url) as publisher:
        for n in range(3):
            await publisher.publish("loss.test", {"n": n})
    for ws in clients:
        # Redis kept nothing on disk, so the channel's stream restarted: every client is
        # told so (recovered: false, a new epoch) on its open connection, then gets the rest.
        notice = await recv_json(ws)
        assert notice["type"] == "subscribed" and notice["recovered"] is False, notice
        got = [(await recv_json(ws))["data"]["n"] for _ in range(3)]
        assert got == [0, 1, 2]
    assert gw.metric("relaycast_broker_reconnects_total") >= 1
    assert "redis pub/sub link lost" in gw.log_tail(200)
    await asyncio.gather(*(ws.close() for ws in clients))
