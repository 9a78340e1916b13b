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
generation's threshold: a ramp of handshakes runs fewer young collections. :func:`run`
then freezes again every :data:`FREEZE_INTERVAL` seconds (``gc.freeze`` only links
lists: it costs nothing), so a full collection only ever scans what the last interval
allocated and still holds. The price: an object that becomes part of a garbage cycle
after it was frozen is never reclaimed. The gateway makes no such cycles per connection
or per message (tests/test_collector.py checks it); a cycle made once in a while stays.
"""

from __future__ import annotations

import asyncio
import gc
import logging

__all__ = ["FREEZE_INTERVAL", "YOUNG_THRESHOLD", "run", "settle"]

log = logging.getLogger("relaycast.gateway")

YOUNG_THRESHOLD = 2_000
"""Allocations between young collections (CPython's default is 700)."""

FREEZE_INTERVAL = 10.0
"""Seconds between two freezes of what the gateway holds."""


def settle() -> None:
    """Collect once, then keep what start-up allocated out of every later collection."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
    log.debug("%d start-up objects frozen out of garbage collection", gc.get_freeze_count())


async def run(interval: float = FREEZE_INTERVAL) -> None:
    """Freeze what survived every ``interval`` seconds, for as long as the gateway runs."""
    while True:
        await asyncio.sleep(interval)
        gc.freeze()
