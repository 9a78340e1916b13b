"""One client connection's protocol state, with no I/O: the Client of the hub.

A transport feeds :meth:`Session.receive` and runs the :class:`Command` it returns
against the hub; the hub feeds :meth:`Session.deliver`. The transport drains
:meth:`Session.take`, and closes the socket with :attr:`Session.close_code` once the
session is :attr:`State.CLOSED`. Nothing here awaits, reads a clock of its own or touches
a socket, nor imports a web framework, a metrics library or JWT: counts go to the
:class:`~gateway.sink.SessionMetrics` it is given, tokens to its
:class:`~gateway.access.Access` policy, and the time a paced subscription needs
(:mod:`gateway.pace`) to the :class:`~gateway.pace.Clock` its transport gives it.

States: ``ANONYMOUS`` -> ``AUTHENTICATED`` (a token was taken; a refresh stays) ->
``CLOSED`` (from either; final), logged at debug level. Feeding or draining a closed
session raises :class:`InvalidState`. ``close`` on a closed session keeps the first code
(several parts of the gateway may close at once), and frames delivered to it are dropped
(the fan-out reaches it until the hub detaches it).

The outbox (:mod:`gateway.outbox`) is bounded: a frame that does not fit conflates a
latest-value channel, or closes the session with 4001 (slow consumer) and the client
resumes from history. Subscriptions catch up before going live (:mod:`gateway.subscription`);
the hub drives that through the methods of :class:`~gateway.catchup.CatchUp`.
"""

from __future__ import annotations

import enum
import itertools
import logging
from collections.abc import Callable

import msgspec

from gateway.access import DENIED, Access, Grant, TokenError
from gateway.bucket import TokenBucket
from gateway.catchup import CatchUp
from gateway.commands import (
    Command,
    Limits,
    RevokeCommand,
    SubscribeCommand,
    UnsubscribeCommand,
)
from gateway.frames import OutFrame, control
from gateway.logsafe import printable
from gateway.outbox import Outbox
from gateway.pace import Clock, Pace
from gateway.sink import NO_METRICS, SessionMetrics
from gateway.subscription import Subscription
from shared.channels import is_valid_channel
from shared.protocol import (
    Auth,
    Authenticated,
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

__all__ = ["InvalidState", "Session", "State"]

_ids = itertools.count(1)
log = logging.getLogger("relaycast.session")

LOGGED_ERRORS = 5
"""Error frames logged per connection; the rest are only counted in /metrics."""


class State(enum.IntEnum):
    """Where a session is in its life."""

    ANONYMOUS = 1
    """Open, without a token: public channels only (in production)."""
    AUTHENTICATED = 2
    """Open, holding a verified token (:attr:`Session.grant`)."""
    CLOSED = 3
    """Closed with :attr:`Session.close_code`; the transport closes the socket."""


class InvalidState(Exception):
    """A session was asked for something its state does not allow (a bug in the caller,
    never the client's doing)."""


class Session(CatchUp):
    """Protocol state of one connection. Every call that feeds or drains it (``receive``,
    ``spend``, ``authenticate``, ``check_credentials``, ``take``) raises
    :class:`InvalidState` once it is closed."""

    # Slots: no per-session __dict__ (smaller, and the fan-out reads attributes directly).
    __slots__ = (
        "_bucket",
        "_errors",
        "clock",
        "close_code",
        "close_reason",
        "grant",
        "guard",
        "id",
        "last_seen",
        "limits",
        "metrics",
        "opened",
        "outbox",
        "state",
        "subs",
    )

    def __init__(
        self,
        limits: Limits,
        on_ready: Callable[[], None] = lambda: None,
        guard: Access | None = None,
        grant: Grant | None = None,
        metrics: SessionMetrics = NO_METRICS,
        clock: Clock | None = None,
    ) -> None:
        self.id = next(_ids)
        self.limits = limits
        self.metrics = metrics
        """Where limits hit and frames dropped are counted (nothing by default)."""
        self.state = State.ANONYMOUS if grant is None else State.AUTHENTICATED
        self.subs: dict[str, Subscription] = {}
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
        self.outbox = Outbox(limits, on_ready, metrics)
        self.clock = clock
        """Time and timers for paced subscriptions (None: ``max_rate`` is refused)."""
        self._bucket = (
            TokenBucket(limits.frame_rate, limits.frame_burst) if limits.frame_rate > 0 else None
        )
        self._errors = 0

    def _become(self, state: State) -> None:
        log.debug("connection %d: %s -> %s", self.id, self.state.name, state.name)
        self.state = state

    def _expect_open(self, call: str) -> None:
        if self.state is State.CLOSED:
            raise InvalidState(f"connection {self.id} is closed ({self.close_code}): no {call}")

    # --- inbound -----------------------------------------------------------------------

    def receive(
        self, data: str | bytes | bytearray | memoryview, now: float | None = None
    ) -> Command | None:
        """Handle one inbound frame; return what the hub must do, if anything.

        Answers pings, and queues an :class:`~shared.protocol.Error` frame for anything
        that is not a valid request; the connection stays open either way. ``now`` is the
        transport's clock when the frame arrived, for the frame-rate limit (None: a frame
        the gateway made itself, not counted). Raises :class:`InvalidState` when closed.
        """
        self._expect_open("receive")
        if now is not None and not self.spend(now):
            return None
        try:
            frame = decode_client(data)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            self.metrics.error_sent(ErrorCode.BAD_FRAME)
            self.send_error(ErrorCode.BAD_FRAME, f"unreadable frame: {exc}")
            return None
        match frame:
            case Ping(id=ping_id):
                self.send(control(Pong(id=ping_id)))
            case Pong():
                pass
            case Subscribe(channel=channel, since=since, max_rate=max_rate):
                return self._subscribe(channel, since, max_rate)
            case Unsubscribe(channel=channel):
                sub = self.subs.pop(channel, None)
                if sub is None:
                    self.send_error(ErrorCode.NOT_SUBSCRIBED, "not subscribed", channel)
                    return None
                if sub.pace is not None:
                    sub.pace.stop()
                self.send(control(Unsubscribed(channel=channel)))
                return UnsubscribeCommand(channel)
            case Auth(token=token) | Refresh(token=token):
                return self.authenticate(token)
        return None

    def spend(self, now: float) -> bool:
        """Count one inbound frame (any frame, fragments and control frames too) against
        the frame rate; False, and the session closes with 4029, when over it.
        """
        self._expect_open("frames")
        if self._bucket is None or self._bucket.take(now):
            return True
        self.metrics.limit_hit("frame_rate")
        self.close(CloseCode.RATE_LIMITED, "too many frames; slow down")
        return False

    def _subscribe(
        self, channel: str, since: Position | None, max_rate: float | None
    ) -> Command | None:
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
            self.metrics.limit_hit("subscriptions")
            self.send_error(
                ErrorCode.TOO_MANY_SUBSCRIPTIONS,
                f"at most {self.limits.max_subscriptions} subscriptions per connection",
                channel,
            )
            return None
        if max_rate is not None and self.clock is None:
            self.send_error(
                ErrorCode.BAD_FRAME, "this endpoint does not pace: no max_rate", channel
            )
            return None
        self.subs[channel] = Subscription(None if max_rate is None else Pace(max_rate))
        return SubscribeCommand(channel, since, max_rate)

    # --- credentials -------------------------------------------------------------------

    def authenticate(self, token: str) -> Command | None:
        """Take ``token`` (an ``auth`` or ``refresh`` frame, or the token of a WebSocket
        handshake) and answer ``authenticated``.

        A refused token closes the session: 4003 when it expired, 4501 otherwise, and 4501
        when it names another user than the session's earlier token. Subscriptions the new
        grant no longer covers end (``unsubscribed``, reason ``permission_denied``); the
        returned command tells the hub to leave them.
        """
        self._expect_open("authenticate")
        guard = self.guard
        if guard is None:
            self.send_error(ErrorCode.UNAUTHORIZED, "this endpoint takes no tokens")
            return None
        try:
            grant = guard.verify(token)
        except TokenError as exc:
            log.debug("connection %d: token refused (%s)", self.id, exc.reason)
            self.close(exc.close_code, exc.message)
            return None
        if self.grant is not None and grant.user != self.grant.user:
            self.metrics.auth_refused("other_user")
            self.close(CloseCode.UNAUTHORIZED, "a refreshed token must name the same user")
            return None
        self.grant = grant
        if self.state is State.ANONYMOUS:
            self._become(State.AUTHENTICATED)
        self.send(control(Authenticated(user=grant.user, expires=int(grant.expires))))
        revoked = tuple(c for c in self.subs if guard.check(grant, c) is not None)
        for channel in revoked:
            self._forget(channel)
            self.send(control(Unsubscribed(channel=channel, reason=ErrorCode.PERMISSION_DENIED)))
        return RevokeCommand(revoked) if revoked else None

    def check_credentials(self, wall: float, now: float) -> None:
        """Close when the token expired (4003), or when the session is anonymous and holds
        no subscription past the authentication deadline (4501, production only).
        ``wall`` is Unix time, ``now`` the transport's clock (as in :attr:`opened`).
        """
        self._expect_open("credentials check")
        guard = self.guard
        if guard is None:
            return
        if self.grant is not None:
            if guard.expired(self.grant, wall):
                self.metrics.auth_refused("expired")
                self.close(CloseCode.TOKEN_EXPIRED, "token expired; fetch a new one")
        elif guard.auth_timeout and not self.subs and now - self.opened > guard.auth_timeout:
            self.metrics.limit_hit("auth_timeout")
            self.close(CloseCode.UNAUTHORIZED, "no token and no subscription in time")

    # --- from the hub ------------------------------------------------------------------

    def deliver(self, frame: OutFrame) -> None:
        """A live message for a subscribed channel (the fan-out hot path)."""
        sub = self.subs.get(frame.channel)  # type: ignore[arg-type]
        if sub is None:
            return
        if sub.pending is not None:
            sub.hold(frame, self.limits.outbox_messages)
            return
        if frame.offset <= sub.offset:
            return
        sub.offset = frame.offset
        if sub.pace is not None:
            self._paced(frame.channel, sub.pace, frame)  # type: ignore[arg-type]
        elif self.close_code is None and not self.outbox.put(frame):
            self._overflow()

    def _paced(self, channel: str, pace: Pace, frame: OutFrame) -> None:
        """Send ``frame`` if the subscriber's interval is up, else park it (replacing an
        older parked one) until the timer sends it."""
        clock = self.clock
        if self.close_code is not None or clock is None:
            return
        if pace.parked is not None:
            self.metrics.conflated(1)
        if pace.offer(frame, clock, lambda: self._release(channel, pace)):
            self.send(frame)

    def _release(self, channel: str, pace: Pace) -> None:
        """The interval is up: send the parked frame (if the subscription still stands)."""
        sub = self.subs.get(channel)
        if sub is None or sub.pace is not pace or self.clock is None:
            return
        frame = pace.release(self.clock)
        if frame is not None:
            self.send(frame)

    def fail_subscribe(self, channel: str, code: ErrorCode, message: str) -> None:
        """A subscribe could not be served: forget it and tell the client."""
        self._forget(channel)
        self.send_error(code, message, channel)

    def leave_all(self) -> list[str]:
        """Forget every subscription (the connection ended); their channels."""
        channels = list(self.subs)
        for channel in channels:
            self._forget(channel)
        return channels

    def _forget(self, channel: str) -> None:
        sub = self.subs.pop(channel, None)
        if sub is not None and sub.pace is not None:
            sub.pace.stop()

    def send_error(self, code: ErrorCode, message: str, channel: str | None = None) -> None:
        self._errors += 1
        if self._errors <= LOGGED_ERRORS:  # a flood of bad frames is not a flood of lines
            more = "; later ones not logged" if self._errors == LOGGED_ERRORS else ""
            log.info("connection %d: %s: %s%s", self.id, code, printable(message[:200]), more)
        self.send(control(Error(code=code, message=message, channel=channel)))

    def send(self, frame: OutFrame) -> None:
        """Queue a frame (a control frame is never conflated or dropped, still bounded);
        dropped once the session is closed."""
        if self.close_code is None and not self.outbox.put(frame):
            self._overflow()

    def _overflow(self) -> None:
        self.metrics.slow_disconnect()
        self.close(CloseCode.SLOW_CONSUMER, "outbox full: client reads too slowly")

    # --- to the transport --------------------------------------------------------------

    def take(self) -> list[OutFrame]:
        """Everything queued, oldest first; the outbox is empty afterwards."""
        if self.close_code is not None:  # inline, not _expect_open: once per write
            self._expect_open("take")
        return self.outbox.take()

    def close(self, code: int, reason: str = "") -> None:
        """Ask the transport to close with ``code``; queued frames are discarded. A
        session already closed keeps its first code and reason."""
        if self.state is State.CLOSED:
            return
        self._become(State.CLOSED)
        self.close_code = code
        self.close_reason = reason
        self.outbox.discard()
