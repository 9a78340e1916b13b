"""A resuming client that stalls on purpose, built on the bare socket client.

The SDK's client reads in the background and cannot be made to stall at the socket. This
one stops reading for a while with a tiny receive buffer, so the gateway's outbox fills
and it is cut off as slow (4001); then it reads on, reconnects to the next gateway and
resumes from the last offset it has, as any client would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from typing import Any

from tests.rawws import CLOSE, PING, PONG, TEXT, RawWebSocket

__all__ = ["StallingClient"]


class StallingClient:
    def __init__(self, ports: list[int], channels: list[str], stall: float) -> None:
        self.ports = ports
        self.channels = channels
        self.stall = stall
        self.positions: dict[str, dict[str, Any]] = {}
        self.received: dict[str, list[int]] = defaultdict(list)
        self.duplicates = 0
        self.not_recovered = 0
        self.connects = 0
        self.close_codes: list[int] = []
        self.trace: list[tuple[object, ...]] = []

    async def run(self, stop: asyncio.Event, calm: asyncio.Event) -> None:
        """Connect, read and stall, again and again until ``stop``; no stall starts, and
        one under way ends, once ``calm`` is set (nothing more is published)."""
        while not stop.is_set():
            port = self.ports[self.connects % len(self.ports)]
            self.connects += 1
            try:
                ws = await RawWebSocket.connect(port, rcvbuf=4096)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.2)
                continue
            try:
                await self._session(ws, stop, calm)
            except (OSError, TimeoutError, asyncio.IncompleteReadError):
                self.close_codes.append(1006)
            finally:
                await ws.close()

    async def _session(self, ws: RawWebSocket, stop: asyncio.Event, calm: asyncio.Event) -> None:
        for channel in self.channels:
            request: dict[str, Any] = {"type": "subscribe", "channel": channel}
            if channel in self.positions:
                request["since"] = self.positions[channel]
            await ws.send_text(json.dumps(request))
        loop = asyncio.get_running_loop()
        stalled_once = False
        read_until = loop.time() + 2.0
        while True:
            if not stalled_once and self.stall and loop.time() > read_until and not calm.is_set():
                stalled_once = True
                with contextlib.suppress(TimeoutError):  # stop reading: the outbox fills
                    await asyncio.wait_for(calm.wait(), self.stall)
            try:
                opcode, payload = await ws.read_frame(timeout=1.0)
            except TimeoutError:
                if stop.is_set():
                    return
                continue
            if opcode == CLOSE:
                self.close_codes.append(int.from_bytes(payload[:2], "big") if payload else 1006)
                return
            if opcode == PING:
                ws.send_frame(PONG, payload)
            elif opcode == TEXT:
                self._handle(ws, json.loads(payload))

    def _handle(self, ws: RawWebSocket, frame: dict[str, Any]) -> None:
        kind = frame["type"]
        if kind == "ping":
            ws.send_frame(TEXT, b'{"type":"pong"}')
        elif kind == "subscribed":
            self.trace.append(
                (
                    "sub",
                    self.connects,
                    frame["channel"],
                    frame["offset"],
                    frame.get("recovered"),
                    frame.get("replayed"),
                )
            )
            if frame.get("recovered") is False:
                self.not_recovered += 1
            self.positions[frame["channel"]] = {"offset": frame["offset"], "epoch": frame["epoch"]}
        elif kind == "message":
            position = self.positions[frame["channel"]]
            if frame["offset"] <= position["offset"]:
                self.duplicates += 1
                return
            if frame["offset"] != position["offset"] + 1:
                self.trace.append(
                    ("jump", self.connects, frame["channel"], position["offset"], frame["offset"])
                )
            position["offset"] = frame["offset"]
            self.received[frame["channel"]].append(frame["data"]["n"])
