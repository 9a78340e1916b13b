"""HTTP connections that have not sent a whole request yet: timed out, capped, counted.

uvicorn times out a connection only between requests (keep-alive). A client that opens a
socket and sends nothing, or half a request head, or a body that never ends, holds a
descriptor for as long as it likes, and none of the gateway's limits sees it: those act
on requests, and there is none yet. Hundreds of such sockets use up the descriptors, and
then ``accept()`` fails for everyone, ``/healthz`` included.

:class:`GuardedH11Protocol` is uvicorn's h11 protocol with two bounds, so no proxy in
front is needed for them:

- a connection must deliver each request whole (head and body) within
  ``header_timeout`` seconds of its first byte (of connecting, for the first request),
  or it is closed;
- at most ``max_pending_connections`` connections may be waiting for a request at once;
  a new one beyond that closes the one that has waited longest (a real client sends its
  head at once, so the oldest waiting connection is the likeliest to be a stalled one).

Both are counted in ``relaycast_limit_hits_total`` (``header_timeout``,
``pending_connections``), and ``/readyz`` reports how many connections wait
(:data:`PENDING`). A connection upgraded to a WebSocket, or whose request arrived whole,
no longer counts; a long-poll in progress is not waiting.
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from gateway import observe
from shared.settings import Settings

__all__ = ["PENDING", "GuardedH11Protocol", "PendingRequests", "guarded_protocol"]

_RECEIVED = (h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR, h11.SWITCHED_PROTOCOL)
"""States of the client's side in which it owes no more of the current request."""


class PendingRequests:
    """The connections waiting for a whole request, oldest first, and their bounds."""

    def __init__(self, timeout: float = 10.0, limit: int = 1000) -> None:
        self.timeout = timeout
        self.limit = limit
        self.waiting: dict[GuardedH11Protocol, None] = {}  # insertion order: oldest first

    @property
    def count(self) -> int:
        return len(self.waiting)

    def configure(self, settings: Settings) -> None:
        self.timeout = settings.header_timeout
        self.limit = settings.max_pending_connections


PENDING = PendingRequests()
"""This process's waiting connections (one uvicorn server per gateway process)."""


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with the bounds of :data:`PENDING` on incomplete requests."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._wait()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            self._done()  # closed, or handed over to the WebSocket transport
        elif self.conn.their_state in _RECEIVED:
            self._done()
        elif self._deadline is None:
            self._wait()  # the next request on a kept-alive connection has begun

    def connection_lost(self, exc: Exception | None) -> None:
        self._done()
        super().connection_lost(exc)

    def _wait(self) -> None:
        waiting = PENDING.waiting
        if PENDING.limit and len(waiting) >= PENDING.limit:
            oldest = next(iter(waiting))
            observe.LIMIT_HITS.labels("pending_connections").inc()
            oldest._expire()
        waiting[self] = None
        self._deadline = self.loop.call_later(PENDING.timeout, self._timed_out)

    def _done(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        PENDING.waiting.pop(self, None)

    def _timed_out(self) -> None:
        self._deadline = None
        observe.LIMIT_HITS.labels("header_timeout").inc()
        self._expire()

    def _expire(self) -> None:
        self._done()
        if not self.transport.is_closing():
            self.transport.abort()  # nothing owed to a client that never finished asking


def guarded_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)``, with ``settings``' bounds."""
    PENDING.configure(settings)
    return GuardedH11Protocol
