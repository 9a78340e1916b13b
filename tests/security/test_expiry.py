"""Credentials over a connection's life: expiry (4003), refresh, and the deadline for
anonymous connections that read nothing (4501). The package's gateway checks them every
0.25 s (its heartbeat), with no clock leeway and a 1 s authentication deadline."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import jwt

from publisher import AsyncPublisher
from tests.helpers import open_ws, recv_json, subscribe
from tests.security.streams import open_sse
from tests.security.test_tokens import assert_alive, closed_with


async def authenticated_ws(url: str, token: str):  # type: ignore[no-untyped-def]
    ws = await open_ws(url)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    frame = await recv_json(ws)
    assert frame["type"] == "authenticated", frame
    return ws


async def test_refresh_keeps_a_connection_past_its_first_tokens_expiry(gateway, keys, redis_url):
    first = keys.token(ttl=2)
    expires = jwt.decode(first, options={"verify_signature": False})["exp"]
    kept = await authenticated_ws(gateway.ws_url, first)
    dropped = await authenticated_ws(gateway.ws_url, first)
    for ws in (kept, dropped):
        await subscribe(ws, "tasks.projA.expiry")

    await kept.send(json.dumps({"type": "refresh", "token": keys.token(ttl=60)}))
    refreshed = await recv_json(kept)
    assert refreshed["type"] == "authenticated" and refreshed["expires"] > expires + 30

    code, _ = await closed_with(dropped, timeout=10)
    assert code == 4003  # fetch a new token, reconnect
    assert time.time() > expires
    async with AsyncPublisher(redis_url) as publisher:
        await publisher.publish("tasks.projA.expiry", {"after": "expiry"})
    frame = await recv_json(kept)
    assert frame["type"] == "message" and frame["data"] == {"after": "expiry"}
    await assert_alive(kept)
    await kept.close()


async def test_an_sse_stream_ends_with_4003_when_its_token_expires(gateway, keys):
    headers = {"authorization": "Bearer " + keys.token(ttl=2)}
    async with (
        httpx.AsyncClient(timeout=10, headers=headers) as client,
        open_sse(client, gateway.url, "tasks.projA.sse") as stream,
    ):
        subscribed, close = await stream.frames(2)
        assert subscribed["type"] == "subscribed"
        assert (close["type"], close["code"]) == ("close", 4003)


async def test_an_anonymous_connection_that_reads_nothing_is_closed_with_4501(gateway):
    idle = await open_ws(gateway.ws_url)
    reader = await open_ws(gateway.ws_url)
    await subscribe(reader, "public.news")  # anonymous, but reading a public channel
    started = time.monotonic()
    code, _ = await closed_with(idle, timeout=10)
    assert code == 4501
    assert time.monotonic() - started < 5
    await asyncio.sleep(0.5)
    await assert_alive(reader)
    await reader.close()
