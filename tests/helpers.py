"""Helpers shared by the integration tests: a WebSocket client, Redis and waiting.

Gateway processes are :mod:`tests.gatewayproc` (re-exported here, as the tests import them).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import redis
from websockets.asyncio.client import ClientConnection, connect

from shared.localredis import LocalRedis, free_port
from tests.gatewayproc import ROOT, GatewayProcess

__all__ = [
    "ROOT",
    "GatewayProcess",
    "free_port",
    "open_ws",
    "recv_json",
    "redis_numsub",
    "subscribe",
    "wait_until",
]


async def open_ws(url: str, **kwargs: Any) -> ClientConnection:
    """A plain WebSocket client (the ``websockets`` library), no reconnects."""
    kwargs.setdefault("ping_interval", None)
    kwargs.setdefault("max_size", None)
    kwargs.setdefault("open_timeout", 10)
    return await connect(url, **kwargs)


async def recv_json(ws: ClientConnection, timeout: float = 10.0) -> dict[str, Any]:
    """The next frame that is not a server ping, as a dict."""
    while True:
        async with asyncio.timeout(timeout):
            raw = await ws.recv()
        frame = json.loads(raw)
        if frame.get("type") != "ping":
            return frame  # type: ignore[no-any-return]


async def subscribe(
    ws: ClientConnection, channel: str, since: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Subscribe and return the ``subscribed`` frame (fails on anything else)."""
    request: dict[str, Any] = {"type": "subscribe", "channel": channel}
    if since is not None:
        request["since"] = since
    await ws.send(json.dumps(request))
    frame = await recv_json(ws)
    assert frame["type"] == "subscribed", frame
    return frame


def redis_numsub(server: LocalRedis, channel: str, prefix: str = "rc") -> int:
    """How many pub/sub connections Redis has subscribed to ``channel`` (PUBSUB NUMSUB)."""
    with redis.Redis.from_url(server.url) as client:
        reply = client.pubsub_numsub(f"{prefix}:{{{channel}}}")
    return int(reply[0][1])


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
    """Poll ``predicate`` until true; fail after ``timeout`` seconds (a hang guard)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        await asyncio.sleep(0.05)
