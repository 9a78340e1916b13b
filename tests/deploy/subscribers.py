"""A crowd of SDK clients on one channel, and how their reconnects spread in time.

Each subscriber is the Python SDK's :class:`~gateway.client.Client`, as a user runs it:
it reconnects with jittered backoff and resumes from its last offset. The crowd
records what the application sees: every message's number in arrival order, and the
time of every ``subscribed`` (the first connect, then one per reconnect) and of every
lost connection, with its close code.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time

from gateway.client import Client, ConnectionState, Disconnected, Message, StateChange, Subscribed

__all__ = ["Crowd", "spread"]


class _Subscriber:
    def __init__(self, url: str, channel: str) -> None:
        self.client = Client(
            url, [channel], backoff_base=0.1, backoff_cap=2.0, on_state=self._on_state
        )
        self.numbers: list[int] = []
        self.subscribed_at: list[float] = []
        self.disconnects: list[tuple[float, int]] = []  # (when, close code) of each loss
        self.lost = 0  # subscribed frames saying history could not cover a gap
        self.task: asyncio.Task[None] | None = None

    def _on_state(self, change: StateChange) -> None:
        if isinstance(change, Disconnected):
            self.disconnects.append((time.monotonic(), change.code))

    def resubscribes_after(self, when: float) -> list[float]:
        """When it subscribed again after ``when`` and before its next loss."""
        later = [t for t, _ in self.disconnects if t > when]
        until = min(later, default=float("inf"))
        return [t for t in self.subscribed_at if when < t < until]

    async def run(self) -> None:
        async for event in self.client:
            if isinstance(event, Message):
                self.numbers.append(event.data["n"])
            elif isinstance(event, Subscribed):
                self.subscribed_at.append(time.monotonic())
                if event.recovered is False:
                    self.lost += 1


class Crowd:
    """``size`` clients of ``url`` subscribed to ``channel``."""

    def __init__(self, url: str, channel: str, size: int) -> None:
        self.subscribers = [_Subscriber(url, channel) for _ in range(size)]

    async def start(self, timeout: float = 30.0) -> None:
        """Connect everyone and wait until each has its first ``subscribed``."""
        for sub in self.subscribers:
            await sub.client.start()
            sub.task = asyncio.create_task(sub.run())
        await self.wait(lambda s: bool(s.subscribed_at), timeout, "every client subscribed")

    async def wait(self, predicate: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not all(predicate(s) for s in self.subscribers):  # type: ignore[operator]
            if time.monotonic() > deadline:
                done = sum(1 for s in self.subscribers if predicate(s))  # type: ignore[operator]
                raise AssertionError(f"timed out waiting for {what}: {done}/{len(self)}")
            await asyncio.sleep(0.1)

    def closed_between(
        self, start: float, end: float, code: int
    ) -> list[tuple[_Subscriber, float]]:
        """Each client that lost its connection with ``code`` within [start, end), with when."""
        return [
            (sub, t)
            for sub in self.subscribers
            for t, c in sub.disconnects
            if c == code and start <= t < end
        ]

    def connected(self) -> int:
        return sum(1 for s in self.subscribers if s.client.state is ConnectionState.CONNECTED)

    def __len__(self) -> int:
        return len(self.subscribers)

    async def close(self) -> None:
        for sub in self.subscribers:
            await sub.client.close()
            if sub.task is not None:
                sub.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sub.task


def spread(times: list[float], start: float, window: float, bins: int = 10) -> dict[str, float]:
    """How ``times`` (after ``start``) spread: first, last, p10-p90 span, and the largest
    share that fell into any one slice of ``window / bins`` seconds (slices continue past
    the window for late ones)."""
    if not times:
        return {"count": 0, "first": 0.0, "last": 0.0, "p10_p90": 0.0, "max_bin_share": 0.0}
    rel = [max(0.0, t - start) for t in times]
    deciles = statistics.quantiles(rel, n=10) if len(rel) > 1 else [rel[0]] * 9
    width = window / bins
    counts: dict[int, int] = {}
    for r in rel:
        counts[int(r / width)] = counts.get(int(r / width), 0) + 1
    return {
        "count": len(rel),
        "first": min(rel),
        "last": max(rel),
        "p10_p90": deciles[-1] - deciles[0],
        "max_bin_share": max(counts.values()) / len(rel),
    }
