"""An in-process broker: one gateway process, no Redis. Same contract as the Redis broker."""

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

__all__ = ["MemoryBroker"]


class _Stream:
    __slots__ = ("epoch", "expires", "items", "offset")

    def __init__(self) -> None:
        self.epoch = new_epoch()
        self.offset = 0
        self.items: deque[Publication] = deque()
        self.expires = float("inf")


class MemoryBroker:
    """Pub/sub and history inside one process; positions survive until the process exits."""

    def __init__(self) -> None:
        self._handler: BrokerEventHandler | None = None
        self._subscribed: set[str] = set()
        self._streams: dict[str, _Stream] = {}
        self._provisional: deque[tuple[float, str]] = deque()

    @property
    def up(self) -> bool:
        return self._handler is not None

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler

    async def close(self) -> None:
        self._handler = None
        self._subscribed.clear()

    async def subscribe(self, channel: str) -> None:
        self._subscribed.add(channel)

    async def unsubscribe(self, channel: str) -> None:
        self._subscribed.discard(channel)

    def _stream(self, channel: str) -> _Stream:
        stream = self._streams.get(channel)
        if stream is None:
            stream = self._streams[channel] = _Stream()
        elif stream.expires < _time.monotonic():
            stream.items.clear()
        return stream

    def _position(self, channel: str) -> _Stream:
        """The channel's stream for a read. A channel never published gets a provisional
        one that is forgotten after PROVISIONAL_POSITION_TTL unless a publish comes, as in
        Redis: reads must not make the process grow."""
        now = _time.monotonic()
        while self._provisional and self._provisional[0][0] < now:
            _, name = self._provisional.popleft()
            stale = self._streams.get(name)
            if stale is not None and stale.offset == 0:
                del self._streams[name]
        if channel not in self._streams:
            self._provisional.append((now + PROVISIONAL_POSITION_TTL, channel))
        return self._stream(channel)

    async def publish(
        self, channel: str, data: bytes | str, options: ChannelOptions, time: float
    ) -> Position:
        stream = self._stream(channel)
        stream.offset += 1
        text = data.decode() if isinstance(data, bytes) else data
        publication = Publication(stream.offset, stream.epoch, text, time)
        if options.history_size:
            stream.items.append(publication)
            while len(stream.items) > options.history_size:
                stream.items.popleft()
            stream.expires = _time.monotonic() + options.history_ttl
        if self._handler is not None and channel in self._subscribed:
            self._handler.on_publication(channel, publication)
        return Position(stream.offset, stream.epoch)

    async def history(
        self,
        channel: str,
        options: ChannelOptions,
        *,
        since: int | None = None,
        limit: int = 0,
    ) -> History:
        check_since(since)
        stream = self._position(channel)
        items: list[Publication] = []
        if limit > 0:
            if since is None:
                items = list(stream.items)[-limit:]
            else:
                items = [p for p in stream.items if p.offset > since][:limit]
        return History(Position(stream.offset, stream.epoch), items)

    async def renew_epoch(self, channel: str, options: ChannelOptions, stale: str) -> Position:
        stream = self._stream(channel)
        if stream.epoch == stale:
            stream.epoch = new_epoch()
        return Position(stream.offset, stream.epoch)


_: type[Broker] = MemoryBroker
