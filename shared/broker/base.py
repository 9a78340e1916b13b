"""The broker seam: pub/sub plus bounded history, shared by every gateway and publisher.

A :class:`Broker` never sees clients. Gateways subscribe to channels on it and get
publications back through their :class:`BrokerEventHandler`; publishers call
:meth:`Broker.publish`. Every publish appends to the channel's position (and history,
when the channel keeps any) and announces the message in one atomic step, so the
offset a live message carries always agrees with history.
"""

from __future__ import annotations

import secrets
from typing import Protocol

import msgspec

from shared.channels import ChannelOptions
from shared.protocol import Position, Publication

__all__ = [
    "PROVISIONAL_POSITION_TTL",
    "Broker",
    "BrokerEventHandler",
    "BrokerUnavailable",
    "History",
    "InvalidPosition",
    "check_since",
]


class BrokerUnavailable(ConnectionError):
    """The broker cannot be reached right now; the caller may retry later."""


# A read of a channel that was never published gives it an epoch, so that a subscriber
# and the first publish agree on it; but a read must not leave long-lived state (anyone
# allowed to read a namespace could fill Redis, or a memory broker, with names). So that
# position lasts only this many seconds unless a publish comes; a subscriber still waiting
# after that gets the first message under a new epoch, told ``recovered: false`` at
# offset 0 (it had missed nothing).
PROVISIONAL_POSITION_TTL = 60


class InvalidPosition(ValueError):
    """A position no stream can have (a negative offset). The caller's input was wrong;
    the message is fit to show to whoever sent it."""


def check_since(since: int | None) -> None:
    """Refuse a ``since`` offset no stream has, before it reaches a backend.

    Raises:
        InvalidPosition: ``since`` is negative.
    """
    if since is not None and since < 0:
        raise InvalidPosition(f"offset {since} is negative; offsets start at 0")


class History(msgspec.Struct, frozen=True):
    """A channel's current position, and the publications a history read returned."""

    position: Position
    publications: list[Publication]


def new_epoch() -> str:
    """A fresh epoch token, used when a channel's stream starts (or restarts)."""
    return secrets.token_hex(4)


class BrokerEventHandler(Protocol):
    """What a broker calls back into. Both methods run on the event loop and must not block."""

    def on_publication(self, channel: str, publication: Publication) -> None:
        """A publication arrived on a subscribed channel."""

    def on_broker_state(self, up: bool) -> None:
        """The subscription link went down (False) or came back and resubscribed (True).

        After ``True``, messages published while it was down were not delivered: the
        handler fills that gap from history.
        """


class Broker(Protocol):
    """Pub/sub across processes, positions, and bounded history per channel."""

    @property
    def up(self) -> bool:
        """Whether the subscription link is connected right now."""

    async def start(self, handler: BrokerEventHandler) -> None:
        """Begin delivering publications of subscribed channels to ``handler``."""

    async def close(self) -> None:
        """Stop delivering and release every connection."""

    async def subscribe(self, channel: str) -> None:
        """Subscribe; returns once the broker confirms, so later publishes arrive.

        Raises:
            BrokerUnavailable: the link is down (the channel is still resubscribed on recovery).
        """

    async def unsubscribe(self, channel: str) -> None:
        """Stop delivering ``channel``."""

    async def publish(
        self, channel: str, data: bytes | str, options: ChannelOptions, time: float
    ) -> Position:
        """Publish JSON ``data``; return the position it was given.

        Raises:
            BrokerUnavailable: the broker cannot be reached.
        """

    async def history(
        self, channel: str, options: ChannelOptions, *, since: int | None = None, limit: int = 0
    ) -> History:
        """Read a channel's position and, with ``limit > 0``, some of its history.

        With ``since``, return up to ``limit`` publications with offsets above ``since``,
        oldest first. Without it, return the newest ``limit`` publications, oldest first.
        A channel that was never published gets a position (offset 0, a new epoch) that
        a first publish keeps, but that lasts only a short while otherwise: reading never
        leaves long-lived state.

        Raises:
            InvalidPosition: ``since`` is negative.
            BrokerUnavailable: the broker cannot be reached.
        """

    async def renew_epoch(self, channel: str, options: ChannelOptions, stale: str) -> Position:
        """Start a new epoch if ``stale`` is still the channel's epoch; return the position.

        For a gateway that saw a channel's offset go backwards: the broker lost messages
        it had acknowledged (a failover) and would hand their offsets out again.

        Raises:
            BrokerUnavailable: the broker cannot be reached.
        """
