"""A token bucket: how the gateway paces events it counts (frames, handshakes).

No clock and no I/O: callers pass the time, so the session that spends one stays
I/O-free and tests drive it with plain numbers.
"""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; each event takes one."""

    __slots__ = ("burst", "level", "rate", "updated")

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.level = burst
        self.updated: float | None = None

    def take(self, now: float) -> bool:
        """Spend one token at time ``now`` (any monotonic clock); False when none is left."""
        if self.updated is not None:
            self.level = min(self.burst, self.level + (now - self.updated) * self.rate)
        self.updated = now
        if self.level >= 1:
            self.level -= 1
            return True
        return False
