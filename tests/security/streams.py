"""Clients of the HTTP transports for the security tests: SSE events and polls."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx


class EventStream:
    """An open ``/sse`` response; :meth:`next` returns (event name, data as JSON)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()

    async def next(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        name, data = "message", ""
        async with asyncio.timeout(timeout):
            async for line in self.lines:
                if not line:
                    if data:
                        return name, json.loads(data)
                    name = "message"
                elif line.startswith("event:"):
                    name = line.partition(":")[2].strip()
                elif line.startswith("data:"):
                    data = line.partition(":")[2].strip()
        raise EOFError("stream ended")

    async def frames(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The next ``count`` protocol frames (the ``hello`` event and pings left out)."""
        frames: list[dict[str, Any]] = []
        while len(frames) < count:
            name, data = await self.next(timeout)
            if name == "message" and data.get("type") != "ping":
                frames.append(data)
            elif name == "close":
                frames.append({"type": "close", **data})
        return frames


@asynccontextmanager
async def open_sse(
    client: httpx.AsyncClient, base: str, *channels: str, **params: str
) -> AsyncIterator[EventStream]:
    """Open ``/sse``; the status must be 200 (use :func:`sse_status` to see refusals)."""
    query = [("channel", c) for c in channels] + list(params.items())
    async with client.stream("GET", base + "/sse", params=query) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        yield EventStream(response)


async def sse_status(
    client: httpx.AsyncClient, base: str, *channels: str, headers: dict[str, str] | None = None
) -> int:
    """The status an ``/sse`` request is answered with (the stream is closed at once)."""
    query = [("channel", c) for c in channels]
    async with client.stream("GET", base + "/sse", params=query, headers=headers) as response:
        return response.status_code


async def poll(
    client: httpx.AsyncClient, base: str, *channels: str, **params: str
) -> list[dict[str, Any]]:
    """One ``/poll`` that must succeed; its frames."""
    query = [("channel", c) for c in channels] + list(params.items())
    response = await client.get(base + "/poll", params=query)
    assert response.status_code == 200, response.text
    frames: list[dict[str, Any]] = response.json()["frames"]
    return frames
