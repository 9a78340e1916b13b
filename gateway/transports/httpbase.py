"""What the SSE and polling transports share: a session opened from a query string.

Both name their channels in the query (``?channel=a&channel=b``) and carry the client's
positions in a :class:`~gateway.transports.cursor.Cursor`. :func:`read_query` checks
both. :class:`HttpSession` is the same :class:`~gateway.session.Session` the WebSocket
transport uses, with the same limits: it is fed one ``subscribe`` frame per channel, so
validation, limits and error frames are the WebSocket's, then the hub serves the
subscribes (replay, then live) exactly as for a WebSocket. It also notices when the
client goes away, and counts what it sends in the same metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Receive

from gateway import observe
from gateway.admission import Entry
from gateway.commands import Limits, SubscribeCommand
from gateway.frames import OutFrame
from gateway.hub import Hub
from gateway.session import Session
from gateway.transports.cursor import Cursor, CursorError
from shared.protocol import Subscribe, encode

__all__ = ["CORS", "HttpSession", "read_max_rate", "read_query"]

CORS = {"access-control-allow-origin": "*"}
"""Streams are readable from pages on other origins (a dashboard that fails over to
another gateway's address); they carry no cookies, so no credentials cross."""


def read_query(request: Request, cursor: str) -> tuple[list[str], Cursor] | Response:
    """The request's channels and the cursor ``cursor`` for them, or a 400 response."""
    channels = request.query_params.getlist("channel")
    if not channels:
        return _bad_request("name at least one channel: ?channel=NAME (repeat for more)")
    if len(set(channels)) != len(channels):
        return _bad_request("a channel is named twice")
    try:
        return channels, Cursor.parse(channels, cursor)
    except CursorError as exc:
        return _bad_request(str(exc))


def read_max_rate(request: Request) -> float | Response | None:
    """The ``max_rate`` query parameter (messages per second, above 0), or a 400 response."""
    text = request.query_params.get("max_rate")
    if text is None:
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        return _bad_request("max_rate must be a number of messages per second above 0")
    return rate


def _bad_request(message: str) -> Response:
    return PlainTextResponse(message + "\n", status_code=400, headers=CORS)


class HttpSession:
    """One HTTP request's :class:`Session`, attached to the hub while the request lasts.

    ``entry`` is the request's admission (:func:`gateway.admission.admit_http`): its
    credentials decide each subscribe, and it is released when the session ends.
    Use as an async context manager; :attr:`wake` is set whenever the session has
    frames to take, is closed, or the client went away (:attr:`gone`).
    """

    def __init__(
        self,
        hub: Hub,
        transport: str,
        receive: Receive,
        entry: Entry,
        max_rate: float | None = None,
    ) -> None:
        settings = hub.settings
        self.hub = hub
        self.transport = transport
        self.loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.session = Session(
            Limits(
                max_subscriptions=settings.max_subscriptions,
                outbox_messages=settings.outbox_messages,
                outbox_bytes=settings.outbox_bytes,
            ),
            on_ready=self.wake.set,
            guard=entry.guard,
            grant=entry.grant,
            metrics=observe.SESSION_METRICS,
            clock=self.loop,
        )
        self.max_rate = max_rate
        """Asked of every channel's subscribe (latest-value channels only)."""
        self.session.last_seen = self.session.opened = self.loop.time()
        self.entry = entry
        self.gone = False
        self._receive = receive
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> HttpSession:
        self.hub.attach(self.session)
        observe.CONNECTIONS.labels(self.transport).inc()
        self._tasks.append(self.loop.create_task(self._watch()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        watcher, *subscribes = self._tasks
        watcher.cancel()
        for task in subscribes:  # let a subscribe in flight finish, then leave cleanly
            with contextlib.suppress(Exception):
                await task
        await self.hub.detach(self.session)
        observe.CONNECTIONS.labels(self.transport).dec()
        self.entry.release()

    async def _watch(self) -> None:
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        self.wake.set()

    def subscribe(self, cursor: Cursor) -> asyncio.Task[None]:
        """Subscribe to every channel of ``cursor`` from its position, in order."""
        task = self.loop.create_task(self._subscribe(cursor))
        self._tasks.append(task)
        return task

    async def _subscribe(self, cursor: Cursor) -> None:
        for channel, since in zip(cursor.channels, cursor.positions, strict=True):
            if self.session.close_code is not None:
                return  # closed while an earlier channel was served
            subscribe = Subscribe(channel=channel, since=since, max_rate=self.max_rate)
            command = self.session.receive(encode(subscribe))
            if isinstance(command, SubscribeCommand):
                await self.hub.subscribe(
                    self.session, command.channel, command.since, command.max_rate
                )

    async def wait(self, timeout: float) -> None:
        """Wait until :attr:`wake` is set or ``timeout`` seconds pass; clear it."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await self.wake.wait()
        self.wake.clear()

    def closed_by_gateway(self) -> bool:
        """The gateway closed the session (slow client, drain, age...); count it once."""
        code = self.session.close_code
        if code is None or self.gone:
            return False
        observe.DISCONNECTS.labels(str(code)).inc()
        return True

    @staticmethod
    def count_sent(frames: list[OutFrame], size: int) -> None:
        observe.FRAMES_SENT.inc(len(frames))
        observe.BYTES_SENT.inc(size)
        first = frames[0].time if frames else 0.0
        if first:
            observe.LATENCY.observe(max(0.0, time.time() - first))
