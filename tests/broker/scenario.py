"""Steps the topology tests share: clients on gateways, publishing with retry, collecting."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
from websockets.asyncio.client import ClientConnection

from publisher import AsyncPublisher
from shared.broker import BrokerUnavailable
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe

__all__ = [
    "ReadinessWatch",
    "collect",
    "connect_clients",
    "expected",
    "promotion",
    "publish_round",
    "report_failover",
]


@contextlib.asynccontextmanager
async def connect_clients(
    gateways: list[GatewayProcess], per_gateway: int, channels: list[str]
) -> AsyncIterator[list[ClientConnection]]:
    """``per_gateway`` WebSocket clients on each gateway, each subscribed to ``channels``;
    all closed on exit."""
    sockets = await asyncio.gather(
        *(open_ws(g.ws_url) for g in gateways for _ in range(per_gateway))
    )

    async def join(ws: ClientConnection) -> None:
        for channel in channels:
            await subscribe(ws, channel)

    try:
        await asyncio.gather(*(join(ws) for ws in sockets))
        yield sockets
    finally:
        await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


async def publish_round(
    publisher: AsyncPublisher, channels: list[str], numbers: range, deadline: float = 45.0
) -> int:
    """Publish ``{"n": n}`` on every channel for each n, retrying while Redis is away.

    A publish that raised ran nowhere here (the node was down or refused the write), so
    retrying cannot duplicate it. Returns how many attempts failed.
    """
    failures = 0
    give_up = time.monotonic() + deadline
    for n in numbers:
        for channel in channels:
            while True:
                try:
                    await publisher.publish(channel, {"n": n})
                    break
                except BrokerUnavailable:
                    failures += 1
                    if time.monotonic() > give_up:
                        raise
                    await asyncio.sleep(0.1)
    return failures


async def collect(
    ws: ClientConnection, channels: list[str], per_channel: int, timeout: float = 45.0
) -> dict[str, list[tuple[int, int]]]:
    """Read until every channel has ``per_channel`` messages: (offset, n) per channel.

    Anything but a message (a ``subscribed`` notice saying history was lost, an error)
    fails the test.
    """
    got: dict[str, list[tuple[int, int]]] = {c: [] for c in channels}
    deadline = time.monotonic() + timeout
    while any(len(v) < per_channel for v in got.values()):
        frame: dict[str, Any] = await recv_json(ws, timeout=max(0.1, deadline - time.monotonic()))
        assert frame["type"] == "message", frame
        got[frame["channel"]].append((frame["offset"], frame["data"]["n"]))
    return got


def expected(channels: list[str], per_channel: int) -> dict[str, list[tuple[int, int]]]:
    """Every channel's offsets 1..per_channel, each carrying n == offset."""
    return {c: [(n, n) for n in range(1, per_channel + 1)] for c in channels}


class ReadinessWatch:
    """Polls a gateway's /readyz in the background and remembers every status seen."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.statuses: list[int] = []
        self.timeline: list[tuple[float, int]] = []  # (time.monotonic(), status)
        self._task: asyncio.Task[None] | None = None

    async def _poll(self) -> None:
        while True:
            status, _ = await asyncio.to_thread(self.gateway.get, "/readyz")
            self.statuses.append(status)
            self.timeline.append((time.monotonic(), status))
            await asyncio.sleep(0.05)

    def ready_again(self) -> float | None:
        """When the gateway first answered 200 after its first outage (None: not yet)."""
        down = False
        for at, status in self.timeline:
            down = down or status != 200
            if down and status == 200:
                return at
        return None

    def __enter__(self) -> ReadinessWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def promotion(port: int) -> float:
    """When the Redis on ``port`` first says it is a primary (polled every 50 ms)."""
    while True:
        with redis.Redis(port=port, socket_timeout=2) as client:
            if client.info("replication")["role"] == "master":
                return time.monotonic()
        await asyncio.sleep(0.05)


def report_failover(killed: float, promoted: float, watches: list[ReadinessWatch]) -> None:
    """Print how long the failover and each gateway's pause took (``pytest -s`` shows it;
    docs/redis-topologies.md quotes these figures). Nothing is asserted on time."""
    ready = [w.ready_again() for w in watches]
    print(
        f"\nfailover: replica promoted after {promoted - killed:.2f}s;"
        " gateways ready again after "
        + ", ".join(f"{t - killed:.2f}s" for t in ready if t is not None)
    )
