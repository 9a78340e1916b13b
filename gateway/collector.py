"""The garbage collector, set for a process that holds many long-lived connections.

A gateway allocates what it keeps at start-up (modules, the app, settings, metrics),
then a few dozen objects per connection, which live as long as the connection. CPython's
full collections scan every tracked object, so while connections pile up the pauses
grow with them: in a ramp to 10,000 connections, three full collections of up to half
a second each. Yet none of that needs the collector: a closed connection's objects form
no cycle (the WebSocket transport closes the one its parser makes), and reference
counting frees them.

So :func:`settle` collects once after start-up and moves everything into the permanent
generation (``gc.freeze``), which no collection scans again, and raises the youngest
generation's threshold: a ramp of handshakes runs fewer young collections. From then on,
whatever survives a collection of the middle generation is frozen too, right after it
(``gc.freeze`` only links lists: it costs nothing), so the oldest generation stays
nearly empty and a full collection has almost nothing to scan. The price: an object
that survived two collections and later becomes part of a garbage cycle is never
reclaimed. The gateway makes no such cycle per connection or per message
(tests/test_collector.py checks it); a cycle made once in a while stays.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

__all__ = ["YOUNG_THRESHOLD", "settle"]

log = logging.getLogger("relaycast.gateway")

YOUNG_THRESHOLD = 2_000
"""Allocations between young collections (CPython's default is 700)."""


def _freeze_survivors(phase: str, info: dict[str, Any]) -> None:
    """After a collection of the middle (or oldest) generation, freeze its survivors."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


def settle() -> None:
    """Collect once, freeze what start-up made, and freeze survivors from then on."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    if _freeze_survivors not in gc.callbacks:
        gc.callbacks.append(_freeze_survivors)
    log.debug("%d start-up objects frozen out of garbage collection", gc.get_freeze_count())
