"""The Python subscriber SDK: one connection to any gateway, kept alive for you.

    async with Client("ws://127.0.0.1:8000/ws", ["tasks.demo"]) as client:
        async for event in client:
            if isinstance(event, Message):
                print(event.channel, event.offset, event.data)  # data: the decoded JSON value

The client reconnects with exponential backoff and full jitter after anything but a
terminal close code, answers heartbeats, notices a silent server, remembers the last
offset of every channel, and resubscribes with it so the gateway replays what it missed
(to any gateway: they share history). A ``Subscribed`` event with ``recovered=False``
means messages were lost for good and the application should reload its state.

With ``token`` (a JWT, or a function returning one, maybe async), every connection
authenticates first; a function is called again for each connection and, shortly before
the gateway's ``authenticated`` frame says the token expires, for a refresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from shared.backoff import backoff_delay
from shared.protocol import (
    RECONNECT_CLOSE_CODES,
    Auth,
    Authenticated,
    Error,
    Ping,
    Pong,
    Position,
    Refresh,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    decode_server,
    encode,
)
from shared.protocol import Message as WireMessage

__all__ = [
    "Client",
    "ConnectionState",
    "Error",
    "Event",
    "Message",
    "Subscribed",
    "TokenSource",
    "Unsubscribed",
]

TokenSource = str | Callable[[], str | Awaitable[str]]
"""A token, or a function that returns a fresh one (called per connection and refresh)."""

log = logging.getLogger("relaycast.client")


class Message:
    """One published message as the client hands it out: ``data`` is the decoded JSON
    value, ``raw`` the JSON bytes exactly as published. ``data`` is decoded on first use,
    so a subscriber that only forwards ``raw`` never pays for a decode."""

    __slots__ = ("_data", "channel", "offset", "raw")

    _unset: Any = object()

    def __init__(self, channel: str, offset: int, raw: bytes) -> None:
        self.channel = channel
        self.offset = offset
        self.raw = raw
        self._data: Any = Message._unset

    @property
    def data(self) -> Any:
        if self._data is Message._unset:
            self._data = msgspec.json.decode(self.raw)
        return self._data

    def __repr__(self) -> str:
        return f"Message(channel={self.channel!r}, offset={self.offset}, data={self.data!r})"


Event = Message | Subscribed | Unsubscribed | Error
"""What iterating a :class:`Client` yields."""


class ConnectionState(enum.StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


class Client:
    """A resilient subscriber. Iterate it for :class:`Message`, :class:`Subscribed` and
    :class:`Error` events (all three importable from here); iteration ends when the
    client closes."""

    def __init__(
        self,
        url: str | Iterable[str],
        channels: Iterable[str] = (),
        *,
        backoff_base: float = 0.2,
        backoff_cap: float = 10.0,
        heartbeat_timeout: float = 60.0,
        queue_size: int = 10_000,
        token: TokenSource | None = None,
        refresh_margin: float = 30.0,
    ) -> None:
        self.urls = [url] if isinstance(url, str) else list(url)
        self.positions: dict[str, Position] = {}
        self.channels: set[str] = set(channels)
        self.state = ConnectionState.DISCONNECTED
        self.attempt = 0
        self.connects = 0
        self.last_close: tuple[int, str] | None = None
        self.duplicates = 0
        """Messages dropped because their offset was already seen (a gateway never sends any)."""
        self._backoff = (backoff_base, backoff_cap)
        self._heartbeat_timeout = heartbeat_timeout
        self._events: asyncio.Queue[Event | None] = asyncio.Queue(queue_size)
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._token = token
        self._refresh_margin = refresh_margin
        self._refresher: asyncio.Task[None] | None = None

    # --- public API ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background (returns at once)."""
        if self._task is None:
            self.state = ConnectionState.CONNECTING
            self._task = asyncio.create_task(self._run(), name="relaycast-client")

    async def wait_connected(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            await self._connected.wait()

    async def subscribe(self, channel: str, since: Position | None = None) -> None:
        """Subscribe now and after every reconnect (resuming from the last offset seen)."""
        self.channels.add(channel)
        if since is not None:
            self.positions[channel] = since
        await self._send(Subscribe(channel=channel, since=self.positions.get(channel)))

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        self.positions.pop(channel, None)
        await self._send(Unsubscribe(channel=channel))

    async def close(self) -> None:
        """Close the connection and stop reconnecting; iteration ends."""
        task, self._task = self._task, None
        ws = self._ws
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if ws is not None:
            await ws.close()  # the close handshake, bounded by websockets' close_timeout
        self.state = ConnectionState.DISCONNECTED
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(None)

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            event = await self._events.get()
            if event is None:
                return
            yield event

    # --- the connection loop -------------------------------------------------------------

    async def _send(self, frame: object) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(frame).decode())

    async def _run(self) -> None:
        try:
            while True:
                url = self.urls[self.connects % len(self.urls)]
                code = await self._session(url)
                if code is not None and code not in RECONNECT_CLOSE_CODES and code != 1000:
                    log.warning("closed with terminal code %d; not reconnecting", code)
                    break
                self.attempt += 1
                self.state = ConnectionState.RECONNECTING
                await asyncio.sleep(backoff_delay(self.attempt, *self._backoff))
        finally:
            self.state = ConnectionState.DISCONNECTED
            self._connected.clear()
            with contextlib.suppress(asyncio.QueueFull):
                self._events.put_nowait(None)

    async def _session(self, url: str) -> int | None:
        """One connection's life; returns its close code (None: could not connect)."""
        self.connects += 1
        try:
            ws = await asyncio.wait_for(connect(url, ping_interval=None, max_size=None), 10)
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            log.info("connect to %s failed: %s", url, exc)
            return None
        self._ws = ws
        try:
            token = await self._fresh_token()
            if token:
                await ws.send(encode(Auth(token=token)).decode())
            for channel in sorted(self.channels):
                await ws.send(encode(Subscribe(channel, self.positions.get(channel))).decode())
            self.state = ConnectionState.CONNECTED
            self.attempt = 0
            self._connected.set()
            while True:
                async with asyncio.timeout(self._heartbeat_timeout):
                    raw = await ws.recv()
                await self._handle(ws, raw)
        except TimeoutError:
            log.warning("no frame from %s within %.0fs; reconnecting", url, self._heartbeat_timeout)
            ws.transport.abort()  # an unresponsive server gets no close handshake
        except ConnectionClosed:
            pass
        finally:
            self._ws = None
            self._connected.clear()
            if self._refresher is not None:
                self._refresher.cancel()
        close = ws.protocol.close_rcvd
        self.last_close = (close.code, close.reason) if close else (1006, "")
        return self.last_close[0]

    async def _handle(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            frame = decode_server(raw)
        except msgspec.DecodeError as exc:
            log.warning("ignored an unreadable frame: %s", exc)
            return
        if isinstance(frame, Ping):
            await ws.send(encode(Pong(id=frame.id)).decode())
            return
        if isinstance(frame, Pong):
            return
        if isinstance(frame, Authenticated):
            self._schedule_refresh(ws, frame.expires)
            return
        event: Event
        if isinstance(frame, WireMessage):
            known = self.positions.get(frame.channel)
            if known is not None and frame.offset <= known.offset:
                self.duplicates += 1  # never hand a message out twice
                return
            epoch = known.epoch if known is not None else ""
            self.positions[frame.channel] = Position(frame.offset, epoch)
            event = Message(frame.channel, frame.offset, bytes(frame.data))
        elif isinstance(frame, Subscribed):
            self.positions[frame.channel] = Position(frame.offset, frame.epoch)
            event = frame
        elif isinstance(frame, Error):
            log.warning("gateway error %s: %s (%s)", frame.code, frame.message, frame.channel)
            event = frame
        elif isinstance(frame, Unsubscribed):
            event = frame
        else:
            return
        await self._events.put(event)

    # --- tokens --------------------------------------------------------------------------

    async def _fresh_token(self) -> str | None:
        source = self._token
        value = source() if callable(source) else source
        if inspect.isawaitable(value):
            value = await value
        return value

    def _schedule_refresh(self, ws: ClientConnection, expires: int | None) -> None:
        """Refresh ``refresh_margin`` seconds before ``expires`` (if the token is a function)."""
        if self._refresher is not None:
            self._refresher.cancel()
        if expires is None or not callable(self._token):
            return
        delay = max(1.0, expires - time.time() - self._refresh_margin)
        self._refresher = asyncio.create_task(self._refresh(ws, delay))

    async def _refresh(self, ws: ClientConnection, delay: float) -> None:
        await asyncio.sleep(delay)
        token = await self._fresh_token()
        if token:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(Refresh(token=token)).decode())
