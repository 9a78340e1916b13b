"""One client connection's protocol state, with no I/O: the Client of the hub.

A transport feeds :meth:`Session.receive` with inbound frames and runs the
:class:`Command` it returns against the hub; the hub feeds :meth:`Session.deliver` with
encoded frames. The transport drains :meth:`Session.take` and writes what it gets,
and closes the socket with :attr:`Session.close_code` once that is set. Nothing here
awaits, sleeps, reads a clock or touches a socket.

Every outbox is bounded by frames and bytes. When a frame would not fit, a
latest-value channel drops its older queued frames (conflation), and any other channel
closes the session with 4001 (slow consumer): the client reconnects and resumes from
history, so nothing is lost and the gateway's memory stays bounded.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from gateway import observe
from gateway.frames import OutFrame, control
from shared.channels import is_valid_channel
from shared.protocol import (
    CloseCode,
    Error,
    ErrorCode,
    Ping,
    Pong,
    Position,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    decode_client,
)

__all__ = ["Limits", "Session", "SubscribeCommand", "UnsubscribeCommand"]

_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection bounds (from settings)."""

    max_subscriptions: int = 100
    outbox_messages: int = 1024
    outbox_bytes: int = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class SubscribeCommand:
    channel: str
    since: Position | None


@dataclass(frozen=True, slots=True)
class UnsubscribeCommand:
    channel: str


Command = SubscribeCommand | UnsubscribeCommand


class _Sub:
    """One subscription: the last offset delivered, and live frames held during replay."""

    __slots__ = ("offset", "pending")

    def __init__(self) -> None:
        self.offset = -1
        self.pending: list[OutFrame] | None = []


class Session:
    """Protocol state of one connection."""

    def __init__(self, limits: Limits, on_ready: Callable[[], None] = lambda: None) -> None:
        self.id = next(_ids)
        self.limits = limits
        self.subs: dict[str, _Sub] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_seen = 0.0
        """When the client last sent anything (the transport's clock; read by the heartbeat)."""
        self._outbox: deque[OutFrame] = deque()
        self._outbox_bytes = 0
        self._on_ready = on_ready

    # --- inbound -----------------------------------------------------------------------

    def receive(self, data: str | bytes) -> Command | None:
        """Handle one inbound frame; return what the hub must do, if anything.

        Answers pings, and queues an :class:`~shared.protocol.Error` frame for anything
        that is not a valid request; the connection stays open either way.
        """
        if self.close_code is not None:
            return None
        try:
            frame = decode_client(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            observe.ERRORS.labels(ErrorCode.BAD_FRAME).inc()
            self.send_error(ErrorCode.BAD_FRAME, f"unreadable frame: {exc}")
            return None
        match frame:
            case Ping(id=ping_id):
                self.send(control(Pong(id=ping_id)))
            case Pong():
                pass
            case Subscribe(channel=channel, since=since):
                return self._subscribe(channel, since)
            case Unsubscribe(channel=channel):
                if self.subs.pop(channel, None) is None:
                    self.send_error(ErrorCode.NOT_SUBSCRIBED, "not subscribed", channel)
                    return None
                self.send(control(Unsubscribed(channel=channel)))
                return UnsubscribeCommand(channel)
        return None

    def _subscribe(self, channel: str, since: Position | None) -> Command | None:
        if not is_valid_channel(channel):
            self.send_error(
                ErrorCode.INVALID_CHANNEL,
                "channel names are 1-128 of A-Z a-z 0-9 _ - . : @",
                channel[:140],
            )
            return None
        if channel in self.subs:
            self.send_error(ErrorCode.ALREADY_SUBSCRIBED, "already subscribed", channel)
            return None
        if len(self.subs) >= self.limits.max_subscriptions:
            self.send_error(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.limits.max_subscriptions} subscriptions per connection",
                channel,
            )
            return None
        self.subs[channel] = _Sub()
        return SubscribeCommand(channel, since)

    # --- from the hub ------------------------------------------------------------------

    def deliver(self, frame: OutFrame) -> None:
        """A live message for a subscribed channel (the fan-out hot path)."""
        sub = self.subs.get(frame.channel)
        if sub is None:
            return
        if sub.pending is not None:
            sub.pending.append(frame)
            if len(sub.pending) > self.limits.outbox_messages:
                self.close(CloseCode.SLOW_CONSUMER, "too far behind during replay")
            return
        if frame.offset <= sub.offset:
            return
        sub.offset = frame.offset
        self._enqueue(frame)

    def activate(
        self, channel: str, subscribed: Subscribed, replay: list[OutFrame], offset: int
    ) -> None:
        """Finish a subscribe: the ``subscribed`` frame, the replay, then held live frames.

        ``offset`` is the last offset the client has after the replay; held live frames
        at or below it are duplicates and are dropped.
        """
        sub = self.subs.get(channel)
        if sub is None or sub.pending is None:
            return
        held, sub.pending = sub.pending, None
        sub.offset = offset
        self.send(control(subscribed))
        for frame in replay:
            sub.offset = max(sub.offset, frame.offset)
            self._enqueue(frame)
        for frame in held:
            self.deliver(frame)

    def restart(self, channel: str, notice: OutFrame, offset: int) -> None:
        """The channel's stream broke (``notice`` is a ``subscribed`` frame with
        ``recovered: false``): messages continue above ``offset``."""
        sub = self.subs.get(channel)
        if sub is None:
            return
        if sub.pending is not None:
            # A resume of this channel is being served from the old stream: start over.
            self.close(CloseCode.TRY_AGAIN_LATER, "channel history lost during resume")
            return
        sub.offset = offset
        self.send(notice)

    def fail_subscribe(self, channel: str, code: ErrorCode, message: str) -> None:
        """A subscribe could not be served: forget it and tell the client."""
        self.subs.pop(channel, None)
        self.send_error(code, message, channel)

    def send_error(self, code: ErrorCode, message: str, channel: str | None = None) -> None:
        self.send(control(Error(code=code, message=message, channel=channel)))

    def send(self, frame: OutFrame) -> None:
        """Queue a control frame (never conflated or dropped, still bounded)."""
        self._enqueue(frame)

    def _enqueue(self, frame: OutFrame) -> None:
        if self.close_code is not None:
            return
        size = len(frame.json)
        outbox = self._outbox
        limits = self.limits
        full = len(outbox) >= limits.outbox_messages
        if (full or self._outbox_bytes + size > limits.outbox_bytes) and not (
            frame.latest and self._conflate(frame.channel)
        ):
            observe.SLOW_DISCONNECTS.inc()
            self.close(CloseCode.SLOW_CONSUMER, "outbox full: client reads too slowly")
            return
        outbox = self._outbox  # conflation may have replaced it
        outbox.append(frame)
        self._outbox_bytes += size
        if len(outbox) == 1:
            self._on_ready()

    def _conflate(self, channel: str | None) -> bool:
        """Drop queued frames of a latest-value channel; True if that made room."""
        kept = deque(f for f in self._outbox if f.channel != channel)
        dropped = len(self._outbox) - len(kept)
        if not dropped:
            return False
        observe.OUTBOX_DROPS.labels("conflated").inc(dropped)
        self._outbox = kept
        self._outbox_bytes = sum(len(f.json) for f in kept)
        return len(kept) < self.limits.outbox_messages

    # --- to the transport --------------------------------------------------------------

    def take(self) -> list[OutFrame]:
        """Everything queued, oldest first; the outbox is empty afterwards."""
        if not self._outbox:
            return []
        frames = list(self._outbox)
        self._outbox.clear()
        self._outbox_bytes = 0
        return frames

    @property
    def queued(self) -> int:
        return len(self._outbox)

    def close(self, code: int, reason: str = "") -> None:
        """Ask the transport to close with ``code``; queued frames are discarded."""
        if self.close_code is not None:
            return
        self.close_code = code
        self.close_reason = reason
        self._outbox.clear()
        self._outbox_bytes = 0
        self._on_ready()
