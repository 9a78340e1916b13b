"""Exponential backoff with full jitter, for every reconnect loop in Relaycast."""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


def backoff_delay(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Seconds to wait before retry ``attempt``: uniform in [0, min(cap, base * 2**attempt)].

    Full jitter spreads a crowd of clients that lost the same server over the whole
    window instead of sending them back in one wave.
    """
    return random.uniform(0, min(cap, base * 2 ** min(attempt, 30)))
