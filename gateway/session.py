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

Access control is the transport's :class:`~gateway.auth.Guard`'s: the session asks it to
verify ``auth``/``refresh`` tokens and to allow each subscribe, and spends a token bucket
of inbound frames (4029 when empty) with the clock readings the transport passes in.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable

import msgspec

from gateway import observe
from gateway.auth import DENIED, Grant, Guard, take_token
from gateway.commands import (
    Command,
    Limits,
    RevokeCommand,
    SubscribeCommand,
    UnsubscribeCommand,
)
from gateway.frames import OutFrame, control
from gateway.limits import TokenBucket
from gateway.logsafe import printable
from shared.channels import is_valid_channel
from shared.protocol import (
    Auth,
    CloseCode,
    Error,
    ErrorCode,
    Ping,
    Pong,
    Position,
    Refresh,
    Subscribe,
    Unsubscribe,
    Unsubscribed,
    decode_client,
)

__all__ = ["Session"]

_ids = itertools.count(1)
log = logging.getLogger("relaycast.session")

LOGGED_ERRORS = 5
"""Error frames logged per connection; the rest are only counted in /metrics."""


class _Sub:
    """One subscription: the last offset handed to the client, and live frames held while
    the subscription catches up from history (``pending`` is None once it is live)."""

    __slots__ = ("offset", "overflowed", "pending", "target")

    def __init__(self) -> None:
        self.offset = -1
        self.target = 0  # the replay must reach this offset before going live
        self.pending: list[OutFrame] | None = []
        self.overflowed = False


class Session:
    """Protocol state of one connection."""

    # Slots: no per-session __dict__ (smaller, and the fan-out reads attributes directly).
    __slots__ = (
        "_bucket",
        "_drain_waiters",
        "_errors",
        "_on_ready",
        "_outbox",
        "_outbox_bytes",
        "close_code",
        "close_reason",
        "grant",
        "guard",
        "id",
        "last_seen",
        "limits",
        "opened",
        "subs",
    )

    def __init__(
        self,
        limits: Limits,
        on_ready: Callable[[], None] = lambda: None,
        guard: Guard | None = None,
        grant: Grant | None = None,
    ) -> None:
        self.id = next(_ids)
        self.limits = limits
        self.subs: dict[str, _Sub] = {}
        self.close_code: int | None = None
        self.close_reason = ""
        self.last_seen = 0.0
        """When the client last sent anything (the transport's clock; read by the heartbeat)."""
        self.opened = 0.0
        """When the connection opened (the transport's clock; for the authentication deadline)."""
        self.guard = guard
        """The access policy; None leaves every channel open (tools and unit tests)."""
        self.grant = grant
        """What the connection's token allows; None while it is anonymous."""
        self._bucket = (
            TokenBucket(limits.frame_rate, limits.frame_burst) if limits.frame_rate > 0 else None
        )
        self._outbox: list[OutFrame] = []  # appended, then taken whole: a list suffices
        self._outbox_bytes = 0
        self._on_ready = on_ready
        self._drain_waiters: list[Callable[[], None]] = []
        self._errors = 0

    # --- inbound -----------------------------------------------------------------------

    def receive(
        self, data: str | bytes | bytearray | memoryview, now: float | None = None
    ) -> Command | None:
        """Handle one inbound frame; return what the hub must do, if anything.

        Answers pings, and queues an :class:`~shared.protocol.Error` frame for anything
        that is not a valid request; the connection stays open either way. ``now`` is the
        transport's clock when the frame arrived, for the frame-rate limit (None: a frame
        the gateway made itself, not counted).
        """
        if self.close_code is not None or (now is not None and not self.spend(now)):
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
            case Auth(token=token) | Refresh(token=token):
                return self.authenticate(token)
        return None

    def spend(self, now: float) -> bool:
        """Count one inbound frame (any frame, fragments and control frames too) against
        the frame rate; False, and the session closes with 4029, when over it. Frames
        that arrive after the session closed are not counted (nor refused twice)."""
        if self.close_code is not None:
            return False
        if self._bucket is None or self._bucket.take(now):
            return True
        observe.LIMIT_HITS.labels("frame_rate").inc()
        self.close(CloseCode.RATE_LIMITED, "too many frames; slow down")
        return False

    def authenticate(self, token: str) -> Command | None:
        """Take ``token``'s grant (:func:`gateway.auth.take_token`: a refused token closes
        the session); leave the channels it no longer covers."""
        revoked = take_token(self, token)
        return RevokeCommand(revoked) if revoked else None

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
        denied = self.guard.check(self.grant, channel) if self.guard is not None else None
        if denied is not None:
            self.send_error(denied, DENIED[denied], channel)
            return None
        if len(self.subs) >= self.limits.max_subscriptions:
            observe.LIMIT_HITS.labels("subscriptions").inc()
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
        sub = self.subs.get(frame.channel)  # type: ignore[arg-type]
        if sub is None:
            return
        pending = sub.pending
        if pending is not None:
            if len(pending) >= self.limits.outbox_messages:
                # Too much arrives while catching up: forget it, history has it too.
                pending.clear()
                sub.overflowed = True
            pending.append(frame)
            return
        if frame.offset <= sub.offset:
            return
        sub.offset = frame.offset
        self._enqueue(frame)

    # --- catching up: subscribed, replay in paced batches, then live -------------------

    def hold(self, channel: str, frames: list[OutFrame]) -> bool:
        """Take a backlog the hub refills from history, or hold the channel if the outbox
        has no room for it: True means the caller must start a paced catch-up, which then
        replays ``frames`` (and what follows) as the client reads."""
        sub = self.subs.get(channel)
        if sub is None or sub.pending is not None or not frames or self.close_code is not None:
            for frame in frames:
                self.deliver(frame)
            return False
        if frames[0].latest or self._fits(sum(len(f.json) for f in frames), 1, len(frames)):
            for frame in frames:
                self.deliver(frame)
            return False
        sub.pending, sub.overflowed, sub.target = [], False, frames[-1].offset
        return True

    def start(self, channel: str, subscribed: OutFrame, offset: int, target: int) -> bool:
        """Send the ``subscribed`` frame; replayed frames follow from ``offset + 1``.

        ``target`` is the channel's offset when this subscriber was registered: every
        later message reaches the hold, so the replay must reach ``target`` at least.
        Returns False when the subscription is gone (unsubscribed or closed meanwhile).
        """
        sub = self.subs.get(channel)
        if sub is None or sub.pending is None or self.close_code is not None:
            return False
        sub.offset, sub.target = offset, target
        self.send(subscribed)
        return True

    def feed(self, channel: str, frames: list[OutFrame]) -> int:
        """Queue replayed frames (in order, above the last offset) while they fit in half
        the outbox; returns how many were queued. The rest are read again later."""
        sub = self.subs.get(channel)
        if sub is None:
            return 0
        fed = 0
        for frame in frames:
            if frame.offset <= sub.offset:
                continue
            if not self._fits(len(frame.json), 2):
                break
            sub.offset = frame.offset
            self._enqueue(frame)
            fed += 1
        return fed

    def skip(self, channel: str, offset: int) -> None:
        """Move on to ``offset`` without replaying what lies before (latest-value channels)."""
        sub = self.subs.get(channel)
        if sub is not None:
            sub.offset = max(sub.offset, offset)
            sub.target = min(sub.target, sub.offset)

    def go_live(self, channel: str) -> bool:
        """Switch to live delivery if the held frames join up with what was replayed.

        False means history must be read further first (held frames start beyond the
        last replayed offset, or some were forgotten).
        """
        sub = self.subs.get(channel)
        if sub is None or sub.pending is None:
            return True
        held = sub.pending
        if sub.offset < sub.target or (sub.overflowed and not held):
            return False
        if held and held[0].offset > sub.offset + 1:
            return False
        if held and not self._fits(sum(len(f.json) for f in held), 1, len(held)):
            return False  # replay on from history until the client has read enough
        sub.pending, sub.overflowed = None, False
        for frame in held:
            self.deliver(frame)
        return True

    def position(self, channel: str) -> int | None:
        """The last offset handed to the client for ``channel`` (None: not subscribed)."""
        sub = self.subs.get(channel)
        return None if sub is None or self.close_code is not None else sub.offset

    def room(self) -> int:
        """About how many frames a replay may queue now (half the outbox is kept for live
        traffic); 0 means wait until the client reads."""
        limits = self.limits
        by_count = limits.outbox_messages // 2 - len(self._outbox)
        return max(0, by_count) if self._outbox_bytes < limits.outbox_bytes // 2 else 0

    def _fits(self, size: int, share: int, count: int = 1) -> bool:
        """Whether ``count`` frames of ``size`` bytes fit in 1/``share`` of the outbox."""
        limits = self.limits
        return (
            len(self._outbox) + count <= limits.outbox_messages // share
            and self._outbox_bytes + size <= limits.outbox_bytes // share
        )

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transport next empties the outbox (or on close)."""
        self._drain_waiters.append(callback)

    def _drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, []
        for callback in waiters:
            callback()

    def restart(self, channel: str, notice: OutFrame, offset: int) -> None:
        """The channel's stream broke (``notice`` is a ``subscribed`` frame with
        ``recovered: false``): messages continue above ``offset``."""
        sub = self.subs.get(channel)
        if sub is None:
            return
        if sub.pending is not None:
            # This channel is catching up from the old stream: start over.
            self.close(CloseCode.TRY_AGAIN_LATER, "channel history lost during resume")
            return
        sub.offset = offset
        self.send(notice)

    def fail_subscribe(self, channel: str, code: ErrorCode, message: str) -> None:
        """A subscribe could not be served: forget it and tell the client."""
        self.subs.pop(channel, None)
        self.send_error(code, message, channel)

    def send_error(self, code: ErrorCode, message: str, channel: str | None = None) -> None:
        self._errors += 1
        if self._errors <= LOGGED_ERRORS:  # a flood of bad frames is not a flood of lines
            more = "; later ones not logged" if self._errors == LOGGED_ERRORS else ""
            log.info("connection %d: %s: %s%s", self.id, code, printable(message[:200]), more)
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
        kept = [f for f in self._outbox if f.channel != channel]
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
        frames = self._outbox
        if not frames:
            return []
        self._outbox = []
        self._outbox_bytes = 0
        if self._drain_waiters:
            self._drained()
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
        self._drained()
        self._on_ready()
