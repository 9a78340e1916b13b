"""``/ws`` served by a plain uvicorn, without ``relaycast gateway``'s protocol class.

Run as ``uvicorn --factory gateway.app:from_environment``, uvicorn answers WebSocket
upgrades with its own implementation and the app's Starlette route
(:mod:`gateway.transports.asgi_ws`) speaks the protocol: the same subscribe, messages
in order, error frames and close codes, against a real Redis.
"""

from __future__ import annotations

import asyncio
import sys

import pytest
from websockets.exceptions import ConnectionClosed

from publisher import AsyncPublisher
from tests.helpers import GatewayProcess, open_ws, recv_json, redis_numsub, subscribe, wait_until

MESSAGES = 100


class PlainUvicorn(GatewayProcess):
    """The gateway app under uvicorn's command line, with uvicorn's WebSocket protocol."""

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "uvicorn", "--factory", "gateway.app:from_environment",
            "--host", "127.0.0.1", "--port", str(self.port), "--ws", "auto",
        ]  # fmt: skip


async def test_plain_uvicorn_serves_the_websocket_protocol_through_starlette(
    redis_server, gateways
):
    gateway = PlainUvicorn.start(gateways, redis_server.url)
    clients = [await open_ws(gateway.ws_url) for _ in range(3)]
    for ws in clients:
        started = await subscribe(ws, "fallback.test")
        assert started["offset"] == 0
    assert redis_numsub(redis_server, "fallback.test") == 1

    async with AsyncPublisher(redis_server.url) as publisher:
        for n in range(1, MESSAGES + 1):
            await publisher.publish("fallback.test", {"n": n})
    for ws in clients:
        got = [await recv_json(ws) for _ in range(MESSAGES)]
        assert [(f["type"], f["offset"], f["data"]["n"]) for f in got] == [
            ("message", n, n) for n in range(1, MESSAGES + 1)
        ]

    # Bad input gets an error frame and the connection stays usable.
    ws = clients[0]
    await ws.send("{not json")
    error = await recv_json(ws)
    assert (error["type"], error["code"]) == ("error", "bad_frame")
    await ws.send('{"type":"ping","id":7}')
    assert await recv_json(ws) == {"type": "pong", "id": 7}
    await ws.send('{"type":"unsubscribe","channel":"fallback.test"}')
    assert (await recv_json(ws))["type"] == "unsubscribed"

    for ws in clients:
        await ws.close()
    await wait_until(lambda: redis_numsub(redis_server, "fallback.test") == 0, 10)
    await wait_until(lambda: gateway.metric("relaycast_connections") == 0, 10)


async def test_plain_uvicorn_closes_an_oversized_frame_with_1009(redis_server, gateways):
    gateway = PlainUvicorn.start(gateways, redis_server.url, max_frame_bytes=1024)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "fallback.big")
    await ws.send('{"type":"ping","pad":"' + "x" * 2000 + '"}')
    with pytest.raises(ConnectionClosed) as closed:
        async with asyncio.timeout(10):
            while True:
                await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    await wait_until(lambda: redis_numsub(redis_server, "fallback.big") == 0, 10)
