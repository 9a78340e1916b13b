"""One subscriber's own pace on a latest-value channel: at most ``max_rate`` messages
per second, the newest one when the interval allows.

A subscribe with ``max_rate`` gives its :class:`~gateway.subscription.Subscription` a
:class:`Pace`. A live message arriving sooner than ``1 / max_rate`` seconds after the
last one sent is parked, replacing any message parked before it (conflation, counted
like the outbox's), and one timer sends the parked message when the interval is up. The
channel's fan-out, its broker subscription and every other subscriber are untouched:
the frame parked is the same shared frame, so pacing costs nothing per message beyond
the subscriber that asked for it.

The session reads time only through the :class:`Clock` its transport gives it (an
asyncio event loop is one), so it stays free of I/O and a unit test can drive it with a
clock of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from gateway.frames import OutFrame

__all__ = ["Clock", "Pace", "Timer"]


class Timer(Protocol):
    """A callback scheduled by a :class:`Clock` (an ``asyncio.TimerHandle``)."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """The time and the timers a paced session needs (an ``asyncio`` event loop)."""

    def time(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer: ...


class Pace:
    """Where one paced subscription stands."""

    __slots__ = ("due", "interval", "parked", "timer")

    def __init__(self, max_rate: float) -> None:
        self.interval = 1.0 / max_rate
        """Seconds between two messages sent, at least."""
        self.due = 0.0
        """When the next message may be sent (the clock's time)."""
        self.parked: OutFrame | None = None
        """The newest message not sent yet; it goes out when :attr:`timer` fires."""
        self.timer: Timer | None = None
        """Set while a message is parked."""

    def offer(self, frame: OutFrame, clock: Clock, release: Callable[[], None]) -> bool:
        """True: send ``frame`` now. False: it is parked (replacing any parked before),
        and ``release`` is called once the interval is up (then call :meth:`release`)."""
        if self.timer is None:
            now = clock.time()
            if now >= self.due:
                self.due = now + self.interval
                return True
            self.timer = clock.call_later(self.due - now, release)
        self.parked = frame
        return False

    def release(self, clock: Clock) -> OutFrame | None:
        """The timer fired: the parked frame to send now (None: it was dropped)."""
        frame, self.parked, self.timer = self.parked, None, None
        if frame is not None:
            self.due = clock.time() + self.interval
        return frame

    def stop(self) -> None:
        """Forget the parked message and its timer (the subscription ends)."""
        self.parked = None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
