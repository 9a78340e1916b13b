"""One subscription's place in its channel: the last offset handed to the client, and
the live frames held while it catches up from history.

A subscription starts catching up (``pending`` is a list) and goes live (``pending`` is
None) once the replayed history joins up with the frames held meanwhile
(:meth:`Subscription.join`). While catching up, live frames are held up to the outbox's
size; past that they are forgotten (``overflowed``) and read from history instead, so a
long replay never costs unbounded memory. :class:`~gateway.session.Session` drives these
from the hub's calls; no I/O.
"""

from __future__ import annotations

from gateway.frames import OutFrame
from gateway.outbox import Outbox
from gateway.pace import Pace

__all__ = ["Subscription"]


class Subscription:
    """Where one subscription stands (see the module docstring)."""

    __slots__ = ("offset", "overflowed", "pace", "pending", "target")

    def __init__(self, pace: Pace | None = None) -> None:
        self.offset = -1
        """The last offset handed to the client."""
        self.target = 0
        """The replay must reach this offset before going live."""
        self.pending: list[OutFrame] | None = []
        """Live frames held while catching up; None once live."""
        self.overflowed = False
        """Held frames were forgotten: history must cover them."""
        self.pace = pace
        """The subscriber's own pace (:mod:`gateway.pace`); None: every message at once."""

    def hold(self, frame: OutFrame, max_held: int) -> None:
        """Keep a live frame that arrived while catching up (forget the hold when full:
        history has those frames too)."""
        pending = self.pending
        assert pending is not None
        if len(pending) >= max_held:
            pending.clear()
            self.overflowed = True
        pending.append(frame)

    def catch_up(self, target: int) -> None:
        """Go back from live to catching up, until the replay reaches ``target``."""
        self.pending, self.overflowed, self.target = [], False, target

    def start(self, offset: int, target: int) -> None:
        """The replay starts after ``offset`` and must reach ``target``."""
        self.offset, self.target = offset, target

    def feed(self, frames: list[OutFrame], outbox: Outbox) -> int:
        """Queue replayed frames (in order, above the last offset) while they fit in half
        the outbox; returns how many were queued. The rest are read again later."""
        fed = 0
        for frame in frames:
            if frame.offset <= self.offset:
                continue
            if not outbox.fits(len(frame.json), 2):
                break
            self.offset = frame.offset
            outbox.put(frame)  # fits in half the outbox: never refused
            fed += 1
        return fed

    def skip(self, offset: int) -> None:
        """Move on to ``offset`` without replaying what lies before (latest-value)."""
        self.offset = max(self.offset, offset)
        self.target = min(self.target, self.offset)

    def join(self, outbox: Outbox) -> list[OutFrame] | None:
        """Go live if the held frames join up with what was replayed: the held frames to
        deliver now (empty when already live). None means history must be read further
        first (held frames start beyond the last replayed offset, some were forgotten, or
        the outbox has no room for them yet)."""
        held = self.pending
        if held is None:
            return []
        if self.offset < self.target or (self.overflowed and not held):
            return None
        if held and held[0].offset > self.offset + 1:
            return None
        if held and not outbox.fits(sum(len(f.json) for f in held), 1, len(held)):
            return None  # replay on from history until the client has read enough
        self.pending, self.overflowed = None, False
        return held
