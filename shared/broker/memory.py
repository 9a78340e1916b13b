"""An in-process broker: one process, no Redis. Same contract as the Redis broker.

Every :class:`MemoryBroker` made for ``memory://`` in a process shares that process'
:class:`MemoryBus`: its streams, and the brokers listening to them. So a gateway and
publishers running in the same process (on the same event loop) reach each other as
they would through Redis. ``memory://name`` names a separate bus. Task, alert and
metrics state lives in Redis only (see :mod:`shared.broker.redis_atomic`).
"""

from __future__ import annotations

import time as _time
from collections import deque

from shared.broker.base import (
    PROVISIONAL_POSITION_TTL,
    Broker,
    BrokerEventHandler,
    History,
    check_since,
    new_epoch,
)
from shared.channels import ChannelOptions
from shared.protocol import Position, Publication

__all__ = ["MemoryBroker", "MemoryBus", "process_bus"]


class _Stream:
    __slots__ = ("epoch", "expires", "items", "offset")

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.items: deque[Publication] = deque()
        self.expires = float("inf")


class MemoryBus:
    """Positions and history of channels in this process, and the brokers listening.

    Positions survive until the process exits; a position that only a read created is
    forgotten after :data:`~shared.broker.base.PROVISIONAL_POSITION_TTL`, as in Redis.
    """

    def __init__(self) -> None:
        self.brokers: list[MemoryBroker] = []
        self._streams: dict[str, _Stream] = {}
        self._provisional: deque[tuple[float, str]] = deque()

    def stream(self, channel: str) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream()
        elif stream.expires < _time.monotonic():
            stream.items.clear()
        return stream

    def read(self, channel: str) -> _Stream:
        """The channel's stream for a read; a provisional one if it was never published."""
        now = _time.monotonic()
        while self._provisional and self._provisional[0][0] < now:
            _, name = self._provisional.popleft()
            stale = self._streams.get(name)
            if stale is not None and stale.offset == 0:
                del self._streams[name]
        if channel not in self._streams:
            self._provisional.append((now + PROVISIONAL_POSITION_TTL, channel))
        return self.stream(channel)


_buses: dict[str, MemoryBus] = {}


def process_bus(name: str = "") -> MemoryBus:
    """The bus that every ``memory://name`` broker of this process shares."""
    bus = _buses.get(name)
    if bus is None:
        bus = _buses[name] = MemoryBus()
    return bus


class MemoryBroker:
    """Pub/sub and history on a :class:`MemoryBus` (a private one unless given)."""

    def __init__(self, bus: MemoryBus | None = None) -> None:
        self._bus = bus or MemoryBus()
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()

    @property
    def up(self) -> bool:
        return self._handler is not None

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._bus.brokers.append(self)

    async def close(self) -> None:
        self._handler = None
        self._subscribed.clear()
        if self in self._bus.brokers:
            self._bus.brokers.remove(self)

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    def _deliver(self, channel: str, publication: Publication) -> None:
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_publication(channel, publication)

    async def publish(
        self, channel: str, data: bytes | str, options: ChannelOptions, time: float
    ) -> Position:
        stream = self._bus.stream(channel)
        stream.offset += 1
        text = data.decode() if isinstance(data, bytes) else data
        publication = Publication(stream.offset, stream.epoch, text, time)
        if options.history_size:
            stream.items.append(publication)
            while len(stream.items) > options.history_size:
                stream.items.popleft()
            stream.expires = _time.monotonic() + options.history_ttl
        for broker in self._bus.brokers:
            broker._deliver(channel, publication)
        return Position(stream.offset, stream.epoch)

    async def history(
        self, channel: str, options: ChannelOptions, *, since: int | None = None, limit: int = 0
    ) -> History:
        check_since(since)
        stream = self._bus.read(channel)
        items: list[Publication] = []
        if limit > 0:
            if since is None:
                items = list(stream.items)[-limit:]
            else:
                items = [p for p in stream.items if p.offset > since][:limit]
        return History(Position(stream.offset, stream.epoch), items)

    async def renew_epoch(self, channel: str, options: ChannelOptions, stale: str) -> Position:
        stream = self._bus.stream(channel)
        if stream.epoch == stale:
            stream.epoch = new_epoch()
        return Position(stream.offset, stream.epoch)


_: type[Broker] = MemoryBroker
