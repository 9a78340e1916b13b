"""What the Python client hands out: messages (decoded JSON, raw bytes, typed events of
the built-in channels) and changes of its connection state.

A message on a built-in channel decodes into the msgspec Struct its publisher sends:
``message.event`` picks the Struct by the channel's name (first matching pattern of
:data:`BUILT_IN_EVENTS`); ``message.decode(T)`` decodes into any Struct you name. Each
Struct has one decoder, built on first use and reused.
"""

from __future__ import annotations

import fnmatch
from types import UnionType
from typing import Any, TypeVar

import msgspec

from shared.state.alerts import ALERTS_CHANNEL, AlertEvent, AlertsState
from shared.state.alerts import STATE_CHANNEL as ALERTS_STATE_CHANNEL
from shared.state.hosts import FLEET_CHANNEL
from shared.state.metrics import FleetSnapshot, HostSnapshot, SourceSnapshot
from shared.state.notifications import NotificationEvent
from shared.state.tasks import TaskEvent, TaskState

__all__ = [
    "BUILT_IN_EVENTS",
    "Connected",
    "Disconnected",
    "EventType",
    "Message",
    "Reconnecting",
    "StateChange",
    "event_type",
    "register_event",
]

T = TypeVar("T")

EventType = type[msgspec.Struct] | UnionType
"""A Struct, or a union of Structs tagged by a field (``NotificationEvent``)."""

BUILT_IN_EVENTS: list[tuple[str, EventType]] = [
    ("tasks.*@state", TaskState),
    ("tasks.*", TaskEvent),  # a project's and one task's events; workflows' too (workflow.*)
    (ALERTS_STATE_CHANNEL, AlertsState),
    (ALERTS_CHANNEL, AlertEvent),
    ("notifications.*", NotificationEvent),
    ("metrics.host.*", HostSnapshot),  # unless a host publishes a mapping of its own
    (FLEET_CHANNEL, FleetSnapshot),
    ("metrics.source.*", SourceSnapshot),
]
"""Channel pattern (shell-style, the whole name) → the Struct published there. The first
match wins; :func:`register_event` puts new entries in front."""

_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


def register_event(pattern: str, struct: EventType) -> None:
    """Decode messages of channels matching ``pattern`` into ``struct`` (``message.event``),
    before the built-in entries: e.g. ``register_event("orders.*", Order)``, or a Struct of
    your own for a host that publishes its own metrics on ``metrics.host.<host>``."""
    BUILT_IN_EVENTS.insert(0, (pattern, struct))


def event_type(channel: str) -> EventType | None:
    """The Struct (or tagged union) published on ``channel``, or None for a channel of
    your own."""
    for pattern, struct in BUILT_IN_EVENTS:
        if fnmatch.fnmatchcase(channel, pattern):
            return struct
    return None


def _decode(raw: bytes, struct: Any) -> Any:
    decoder = _decoders.get(struct)
    if decoder is None:
        decoder = _decoders[struct] = msgspec.json.Decoder(struct)
    return decoder.decode(raw)


class Message:
    """One published message as the client hands it out: ``data`` is the decoded JSON
    value, ``raw`` the JSON bytes exactly as published, ``event`` the typed Struct of a
    built-in channel. Each is decoded on first use, so a subscriber that only forwards
    ``raw`` never pays for a decode."""

    __slots__ = ("_data", "_event", "channel", "offset", "raw")

    _unset: Any = object()

    def __init__(self, channel: str, offset: int, raw: bytes) -> None:
        self.channel = channel
        self.offset = offset
        self.raw = raw
        self._data: Any = Message._unset
        self._event: Any = Message._unset

    @property
    def data(self) -> Any:
        if self._data is Message._unset:
            self._data = msgspec.json.decode(self.raw)
        return self._data

    @property
    def event(self) -> msgspec.Struct | None:
        """The message as the Struct of its channel (a :class:`TaskEvent` on ``tasks.*``,
        an :class:`AlertEvent` on ``alerts``, a ``NotificationCreated`` on
        ``notifications.<user>``...), None on a channel with no registered Struct.

        Raises:
            msgspec.ValidationError: the message does not have that Struct's shape.
        """
        if self._event is Message._unset:
            struct = event_type(self.channel)
            self._event = None if struct is None else _decode(self.raw, struct)
        event: msgspec.Struct | None = self._event
        return event

    def decode(self, struct: type[T]) -> T:
        """The message decoded into ``struct`` (any type msgspec decodes JSON into).

        Raises:
            msgspec.ValidationError: the message does not have that shape.
        """
        value: T = _decode(self.raw, struct)
        return value

    def __repr__(self) -> str:
        return f"Message(channel={self.channel!r}, offset={self.offset}, data={self.data!r})"


class Connected(msgspec.Struct, frozen=True):
    """A connection is open and the client's subscriptions were sent on it."""

    url: str


class Disconnected(msgspec.Struct, frozen=True, kw_only=True):
    """An open connection ended (``code`` 1006: dropped without a close frame).
    ``will_reconnect`` is false when the client stops: closed by you, a terminal close
    code, or reconnecting turned off."""

    url: str
    code: int
    reason: str
    will_reconnect: bool


class Reconnecting(msgspec.Struct, frozen=True, kw_only=True):
    """The client waits ``delay`` seconds, then makes connection attempt ``attempt``
    (1 for the first after a loss or a failed first connect); ``cause`` says how the
    previous attempt or connection ended."""

    attempt: int
    delay: float
    cause: str = ""


StateChange = Connected | Disconnected | Reconnecting
"""What ``on_state`` callbacks receive."""
