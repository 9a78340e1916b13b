"""The hub's side of a subscription catching up from history, as methods of the session.

A subscriber that arrives with a position, or whose channel broke or lagged, reads history
before it goes live: the hub hands the session a backlog (:meth:`CatchUp.hold`), starts a
paced replay (:meth:`CatchUp.start`, :meth:`CatchUp.feed`), and switches it to live
delivery once held and replayed frames join up (:meth:`CatchUp.go_live`). The per-channel
state lives in :class:`~gateway.subscription.Subscription`; this mixin only reaches it
through the session's ``subs``, and like the session it does no I/O.
"""

from __future__ import annotations

from gateway.frames import OutFrame
from gateway.outbox import Outbox
from gateway.pace import Clock
from gateway.subscription import Subscription
from shared.protocol import CloseCode

__all__ = ["CatchUp"]


class CatchUp:
    """Catch-up and resync calls of :class:`~gateway.session.Session` (mixed into it)."""

    __slots__ = ()

    subs: dict[str, Subscription]
    close_code: int | None
    outbox: Outbox
    clock: Clock | None

    def deliver(self, frame: OutFrame) -> None:
        raise NotImplementedError

    def send(self, frame: OutFrame) -> None:
        raise NotImplementedError

    def close(self, code: int, reason: str = "") -> None:
        raise NotImplementedError

    def hold(self, channel: str, frames: list[OutFrame]) -> bool:
        """Take a backlog the hub refills from history, or hold the channel if the outbox
        has no room for it: True means the caller must start a paced catch-up, which then
        replays ``frames`` (and what follows) as the client reads."""
        sub = self.subs.get(channel)
        if (
            sub is None
            or sub.pending is not None
            or not frames
            or self.close_code is not None
            or frames[0].latest
            or self.outbox.fits(sum(len(f.json) for f in frames), 1, len(frames))
        ):
            for frame in frames:
                self.deliver(frame)
            return False
        sub.catch_up(frames[-1].offset)
        return True

    def start(self, channel: str, subscribed: OutFrame, offset: int, target: int) -> bool:
        """Send ``subscribed``; the replay follows from ``offset + 1`` and must reach
        ``target`` (the channel's offset when this subscriber was registered: later
        messages reach the hold). False: the subscription is gone (unsubscribed, closed)."""
        sub = self.subs.get(channel)
        if sub is None or sub.pending is None or self.close_code is not None:
            return False
        sub.start(offset, target)
        self.send(subscribed)
        return True

    def feed(self, channel: str, frames: list[OutFrame]) -> int:
        """Queue replayed frames (:meth:`Subscription.feed`); how many were queued."""
        sub = self.subs.get(channel)
        if sub is None or self.close_code is not None:
            return 0
        fed = sub.feed(frames, self.outbox)
        if fed and sub.pace is not None and self.clock is not None:
            sub.pace.due = self.clock.time() + sub.pace.interval  # the snapshot counts
        return fed

    def skip(self, channel: str, offset: int) -> None:
        """Move on to ``offset`` without replaying what lies before (latest-value channels)."""
        sub = self.subs.get(channel)
        if sub is not None:
            sub.skip(offset)

    def go_live(self, channel: str) -> bool:
        """Switch to live delivery if the held frames join up with what was replayed;
        False: history must be read further first (:meth:`Subscription.join`)."""
        sub = self.subs.get(channel)
        if sub is None:
            return True
        held = sub.join(self.outbox)
        if held is None:
            return False
        for frame in held:
            self.deliver(frame)
        return True

    def position(self, channel: str) -> int | None:
        """The last offset handed to the client for ``channel`` (None: not subscribed)."""
        sub = self.subs.get(channel)
        return None if sub is None or self.close_code is not None else sub.offset

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
        if sub.pace is not None:
            sub.pace.parked = None  # from the broken stream: the notice comes first
        sub.offset = offset
        self.send(notice)
