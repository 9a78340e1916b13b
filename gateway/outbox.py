"""One connection's outbox: the frames queued for it, bounded by frames and bytes.

The hub appends (:meth:`Outbox.put`) and the transport takes everything at once
(:meth:`Outbox.take`). When a frame would not fit, a latest-value channel drops its older
queued frames (conflation); for any other frame :meth:`~Outbox.put` says no, and the
session closes with 4001 (slow consumer). No I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.commands import Limits
from gateway.frames import FrameKind, OutFrame
from gateway.sink import SessionMetrics

__all__ = ["Outbox"]

_EMPTY: list[OutFrame] = []
"""What an outbox holds while nothing is queued, shared by every outbox and never
appended to: the first frame queued starts a list of its own. An idle connection so
keeps no list (56 bytes and an object for the garbage collector)."""


class Outbox:
    """Frames waiting for one connection's transport, oldest first."""

    # Slots: one outbox per connection, and the fan-out reads attributes directly.
    __slots__ = ("_drain_waiters", "_metrics", "_on_ready", "frames", "limits", "size")

    def __init__(
        self, limits: Limits, on_ready: Callable[[], None], metrics: SessionMetrics
    ) -> None:
        self.limits = limits
        self.frames = _EMPTY  # a list of their own once frames are queued, taken whole
        self.size = 0
        """Bytes of JSON queued."""
        self._on_ready = on_ready
        self._metrics = metrics
        # None until a replay waits: a list per idle connection costs 72 bytes and a
        # tracked object for the garbage collector.
        self._drain_waiters: list[Callable[[], None]] | None = None

    def __len__(self) -> int:
        return len(self.frames)

    def put(self, frame: OutFrame) -> bool:
        """Queue ``frame``; False when it does not fit (and conflation made no room).

        The first frame queued calls ``on_ready``: the transport should come and take.
        """
        size = len(frame.json)
        frames = self.frames
        limits = self.limits
        if (
            len(frames) >= limits.outbox_messages or self.size + size > limits.outbox_bytes
        ) and not (frame.latest and self._conflate(frame.channel)):
            return False
        frames = self.frames  # conflation may have replaced it
        self.size += size
        if frames:
            frames.append(frame)
        else:
            self.frames = [frame]
            self._on_ready()
        return True

    def _conflate(self, channel: str | None) -> bool:
        """Drop queued frames of a latest-value channel; True if that made room."""
        kept = [f for f in self.frames if f.channel != channel or f.kind is not FrameKind.MESSAGE]
        dropped = len(self.frames) - len(kept)
        if not dropped:
            return False
        self._metrics.conflated(dropped)
        self.frames = kept
        self.size = sum(len(f.json) for f in kept)
        return len(kept) < self.limits.outbox_messages

    def take(self) -> list[OutFrame]:
        """Everything queued, oldest first; the outbox is empty afterwards and anyone
        waiting for it to drain is called."""
        frames = self.frames
        if not frames:
            return []
        self.frames = _EMPTY
        self.size = 0
        if self._drain_waiters is not None:
            self._drained()
        return frames

    def discard(self) -> None:
        """Drop everything queued (the connection closes), wake the drain waiters and the
        transport."""
        self.frames = _EMPTY
        self.size = 0
        self._drained()
        self._on_ready()

    def room(self) -> int:
        """About how many frames a replay may queue now (half the outbox is kept for live
        traffic); 0 means wait until the client reads."""
        limits = self.limits
        by_count = limits.outbox_messages // 2 - len(self.frames)
        return max(0, by_count) if self.size < limits.outbox_bytes // 2 else 0

    def fits(self, size: int, share: int, count: int = 1) -> bool:
        """Whether ``count`` frames of ``size`` bytes fit in 1/``share`` of the outbox."""
        limits = self.limits
        return (
            len(self.frames) + count <= limits.outbox_messages // share
            and self.size + size <= limits.outbox_bytes // share
        )

    def when_drained(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` once the transport next empties the outbox (or on discard)."""
        if self._drain_waiters is None:
            self._drain_waiters = []
        self._drain_waiters.append(callback)

    def _drained(self) -> None:
        waiters, self._drain_waiters = self._drain_waiters, None
        for callback in waiters or ():
            callback()
