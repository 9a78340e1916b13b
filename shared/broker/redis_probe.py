"""End-to-end probes of pub/sub links, judged only by a watchdog that woke on time.

A link can stay open and deliver nothing (a half-open socket, a subscription the server
forgot). So each link carries a probe channel of its own: the watchdog publishes a
counter to it over the command connection and expects to read it back on the link. A
probe still missing after its timeout means the link is dead and is dropped.

But a late event loop delays reading the probe just as much as a dead link would: a
watchdog that itself woke late judges nothing that round and starts the probe again, so
overload never makes a gateway tear down its own Redis connection.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable

__all__ = ["Probe", "Verdict", "watch"]

log = logging.getLogger("relaycast.broker")


class Verdict(enum.Enum):
    SEND = "send"  # publish the next probe now (Probe.sent was advanced)
    WAIT = "wait"  # a probe is on its way and not overdue
    DEAD = "dead"  # the probe in flight is overdue: drop the link


class Probe:
    """The probe state of one link."""

    __slots__ = ("seen", "sent", "sent_at")

    def __init__(self) -> None:
        self.sent = 0
        self.seen = 0
        self.sent_at: float | None = None

    def saw(self, counter: int) -> None:
        """A probe came back on the link."""
        self.seen = max(self.seen, counter)

    def forgive(self) -> None:
        """Judge nothing in flight: the next round sends a fresh probe."""
        self.sent_at = None

    def check(self, now: float, timeout: float) -> Verdict:
        """What to do this round; on SEND, publish :attr:`sent`."""
        if self.seen < self.sent and self.sent_at is not None:
            return Verdict.DEAD if now - self.sent_at > timeout else Verdict.WAIT
        self.sent += 1
        self.sent_at = now
        return Verdict.SEND


async def watch(
    interval: float, tick: Callable[[float], Awaitable[None]], forgive: Callable[[], None]
) -> None:
    """Call ``tick(now)`` every ``interval`` seconds; in a round that starts late (more
    than half an interval, or a second), call ``forgive()`` instead. Runs until cancelled."""
    loop = asyncio.get_running_loop()
    due = loop.time() + interval
    while True:
        await asyncio.sleep(max(0.0, due - loop.time()))
        now = loop.time()
        late = now - due
        due = now + interval
        if late > min(1.0, interval / 2):
            log.info("event loop %.2fs late; probe deadlines not judged this round", late)
            forgive()
            continue
        await tick(now)
