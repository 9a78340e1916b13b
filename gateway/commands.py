"""What a :class:`~gateway.session.Session` works within and asks for: its limits, and
the commands its ``receive`` returns for the hub to carry out."""

from __future__ import annotations

from dataclasses import dataclass

from shared.protocol import Position

__all__ = ["Command", "Limits", "RevokeCommand", "SubscribeCommand", "UnsubscribeCommand"]


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection bounds (from settings)."""

    max_subscriptions: int = 100
    outbox_messages: int = 1024
    outbox_bytes: int = 4 * 1024 * 1024
    frame_rate: float = 0.0
    """Inbound frames per second on average (0: no limit); ``frame_burst`` at once."""
    frame_burst: int = 1


@dataclass(frozen=True, slots=True)
class SubscribeCommand:
    channel: str
    since: Position | None
    max_rate: float | None = None
    """Messages per second this subscriber asked for at most (None: all of them)."""


@dataclass(frozen=True, slots=True)
class UnsubscribeCommand:
    channel: str


@dataclass(frozen=True, slots=True)
class RevokeCommand:
    """Leave these channels: a refreshed token no longer covers them."""

    channels: tuple[str, ...]


Command = SubscribeCommand | UnsubscribeCommand | RevokeCommand
