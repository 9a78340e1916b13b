"""Where a session reports what metrics count: a small protocol it is given.

The session never imports a metrics library: :mod:`gateway.observe` provides the
Prometheus implementation (:data:`gateway.observe.SESSION_METRICS`), tools and unit tests
take :data:`NO_METRICS` or record the calls. Every method is called off the fan-out's
hot path (only when a limit is hit or frames are dropped).
"""

from __future__ import annotations

from typing import Protocol

from shared.protocol import ErrorCode

__all__ = ["NO_METRICS", "SessionMetrics"]


class SessionMetrics(Protocol):
    """What a session counts. Labels are bounded sets: never a client or channel id."""

    def error_sent(self, code: ErrorCode) -> None:
        """An error frame for an unreadable client frame."""

    def limit_hit(self, limit: str) -> None:
        """A per-connection limit closed the session or refused a request."""

    def auth_refused(self, reason: str) -> None:
        """Credentials were refused (expired, another user...)."""

    def slow_disconnect(self) -> None:
        """The outbox filled: the session closes with 4001."""

    def conflated(self, frames: int) -> None:
        """``frames`` queued frames of a latest-value channel were replaced by a newer one."""


class _NoMetrics:
    """Counts nothing."""

    def error_sent(self, code: ErrorCode) -> None:
        pass

    def limit_hit(self, limit: str) -> None:
        pass

    def auth_refused(self, reason: str) -> None:
        pass

    def slow_disconnect(self) -> None:
        pass

    def conflated(self, frames: int) -> None:
        pass


NO_METRICS: SessionMetrics = _NoMetrics()
"""A sink that counts nothing (tools and unit tests)."""
