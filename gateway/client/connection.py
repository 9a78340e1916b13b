"""The asyncio client: one connection to any gateway, kept alive for you.

The client reconnects with exponential backoff and full jitter after anything but a
terminal close code, answers heartbeats, notices a silent server, remembers the last
offset of every channel, and resubscribes with it so the gateway replays what it missed
(to any gateway: they share history). A ``Subscribed`` event with ``recovered=False``
means messages were lost for good and the application should reload its state.

What retrying cannot fix (a wrong URL or path, a refused token, a channel the gateway
will never serve, ``max_reconnects`` used up) ends the client and is raised from
iteration, :meth:`Client.receive` and :meth:`Client.wait_connected`
(:mod:`gateway.client.errors`).

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
from collections.abc import AsyncIterator, Callable, Iterable

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from gateway.client.errors import (
    ChannelRefused,
    ClientClosed,
    ClientError,
    InvalidURL,
    ReconnectLimitReached,
)
from gateway.client.events import Connected, Disconnected, Message, Reconnecting, StateChange
from gateway.client.tokens import Tokens, TokenSource
from gateway.client.wire import (
    REFUSED_CODES,
    check_rate,
    check_url,
    close_failure,
    handshake_failure,
)
from shared.backoff import backoff_delay
from shared.channels import check_channel
from shared.protocol import (
    Auth,
    Authenticated,
    Error,
    Ping,
    Pong,
    Position,
    Subscribe,
    Subscribed,
    Unsubscribe,
    Unsubscribed,
    decode_server,
    encode,
)
from shared.protocol import Message as WireMessage

__all__ = ["Client", "ConnectionState", "Event", "StateCallback", "TokenSource"]

StateCallback = Callable[[StateChange], object]
"""Called with each :data:`StateChange`, in the client's event loop; may be async."""

Event = Message | Subscribed | Unsubscribed | Error
"""What iterating a :class:`Client` yields."""

log = logging.getLogger("relaycast.client")


class ConnectionState(enum.StrEnum):
    """Where the client stands; ``on_state`` hears of each change with its details."""

    CONNECTING = "connecting"
    CONNECTED = "connected"
    RECONNECTING = "reconnecting"
    DISCONNECTED = "disconnected"


class Client:
    """A resilient subscriber. Iterate it for :class:`Message`, :class:`Subscribed`,
    :class:`Unsubscribed` and :class:`Error` events (all importable from
    ``gateway.client``); iteration ends when the client closes, and raises a
    :class:`~gateway.client.errors.ClientError` when it stopped on a mistake.

    Args:
        max_reconnects: attempts in a row that may fail before the client gives up with
            ``ReconnectLimitReached``; None (default) never gives up, 0 turns
            reconnecting off (a lost connection ends the client).
        on_state: called with ``Connected``, ``Disconnected`` and ``Reconnecting``.
        max_rate: ``max_rate`` of the subscriptions to ``channels`` (see :meth:`subscribe`).
    """

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
        max_reconnects: int | None = None,
        on_state: StateCallback | None = None,
        max_rate: float | None = None,
    ) -> None:
        self.urls = [check_url(u) for u in ([url] if isinstance(url, str) else url)]
        if not self.urls:
            raise InvalidURL("[]", "give at least one gateway URL")
        if max_reconnects is not None and max_reconnects < 0:
            raise ValueError("max_reconnects must be None (forever) or >= 0")
        self.positions: dict[str, Position] = {}
        self.channels: set[str] = {check_channel(channel) for channel in channels}
        self.state = ConnectionState.DISCONNECTED
        self.attempt = 0
        """Reconnect attempts since the last connection opened."""
        self.connects = 0
        self.last_close: tuple[int, str] | None = None
        self.duplicates = 0
        """Messages dropped because their offset was already seen (a gateway never sends any)."""
        self.error: ClientError | None = None
        """Why the client stopped, when it stopped on a mistake."""
        self._rates: dict[str, float] = {}
        if max_rate is not None:
            for channel in self.channels:
                self._rates[channel] = check_rate(max_rate)
        self._backoff = (backoff_base, backoff_cap)
        self._heartbeat_timeout = heartbeat_timeout
        self._max_reconnects = max_reconnects
        self._on_state = on_state
        self._events: asyncio.Queue[Event | None] = asyncio.Queue(queue_size)
        self._done = False
        self._ws: ClientConnection | None = None
        self._url = ""
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._tokens = Tokens(token, refresh_margin)

    # --- public API ----------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background (returns at once)."""
        if self._task is None and not self._done:
            self.state = ConnectionState.CONNECTING
            self._task = asyncio.create_task(self._run(), name="relaycast-client")

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Return once a connection is open.

        Raises:
            ClientError: the client stopped on a mistake (or ``ClientClosed``: it was closed).
            TimeoutError: not connected within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            while not self._connected.is_set():
                task = self._task
                if task is None or task.done():
                    raise self.error or ClientClosed("the client is not running")
                waiter = asyncio.ensure_future(self._connected.wait())
                try:
                    await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    waiter.cancel()

    async def subscribe(
        self, channel: str, since: Position | None = None, *, max_rate: float | None = None
    ) -> None:
        """Subscribe now and after every reconnect (resuming from the last offset seen).

        ``max_rate`` asks for at most that many updates per second of a latest-value
        channel (``metrics.*``, ``*@state``): a dashboard that redraws twice a second
        gets no more than it draws.

        Raises:
            InvalidChannel: the name breaks the naming rules (nothing is sent).
        """
        check_channel(channel)
        self.channels.add(channel)
        if max_rate is not None:
            self._rates[channel] = check_rate(max_rate)
        if since is not None:
            self.positions[channel] = since
        await self._send(self._subscribe_frame(channel))

    async def unsubscribe(self, channel: str) -> None:
        self.channels.discard(channel)
        self.positions.pop(channel, None)
        self._rates.pop(channel, None)
        await self._send(Unsubscribe(channel=channel))

    async def receive(self) -> Event:
        """The next event.

        Raises:
            ClientError: why the client stopped (``ClientClosed`` when it was closed).
        """
        if self._done and self._events.empty():
            raise self.error or ClientClosed("the client is closed")
        event = await self._events.get()
        if event is None:
            raise self.error or ClientClosed("the client is closed")
        return event

    async def close(self) -> None:
        """Close the connection and stop reconnecting; iteration ends."""
        task, self._task = self._task, None
        ws = self._ws
        was_connected = self.state is ConnectionState.CONNECTED
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if ws is not None:
            await ws.close()  # the close handshake, bounded by websockets' close_timeout
        self.state = ConnectionState.DISCONNECTED
        self._finish()
        if was_connected:
            await self._emit(
                Disconnected(url=self._url, code=1000, reason="", will_reconnect=False)
            )

    async def __aenter__(self) -> Client:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            try:
                event = await self.receive()
            except ClientClosed:
                return
            yield event

    # --- the connection loop -------------------------------------------------------------

    def _subscribe_frame(self, channel: str) -> Subscribe:
        return Subscribe(channel, self.positions.get(channel), max_rate=self._rates.get(channel))

    async def _send(self, frame: msgspec.Struct) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(ConnectionClosed):
                await ws.send(encode(frame).decode())

    async def _emit(self, change: StateChange) -> None:
        if self._on_state is None:
            return
        try:
            result = self._on_state(change)
            if inspect.isawaitable(result):
                await result
        except Exception:  # a broken callback must not stop the connection
            log.exception("on_state callback failed on %r", change)

    def _may_reconnect(self) -> bool:
        return self._max_reconnects is None or self.attempt < self._max_reconnects

    def _finish(self) -> None:
        self._done = True
        self._connected.clear()
        with contextlib.suppress(asyncio.QueueFull):  # a full queue: receive() sees _done
            self._events.put_nowait(None)

    async def _run(self) -> None:
        try:
            while True:
                url = self.urls[self.connects % len(self.urls)]
                ended = await self._session(url)
                if not self._may_reconnect():
                    raise ReconnectLimitReached(self._max_reconnects or 0, ended)
                self.attempt += 1
                delay = backoff_delay(self.attempt, *self._backoff)
                self.state = ConnectionState.RECONNECTING
                await self._emit(Reconnecting(attempt=self.attempt, delay=delay, cause=ended))
                await asyncio.sleep(delay)
        except ClientError as exc:
            log.warning("%s; not reconnecting", exc)
            self.error = exc
        finally:
            self.state = ConnectionState.DISCONNECTED
            self._finish()

    async def _connect(self, url: str) -> ClientConnection | str:
        """A new connection, or why there is none (raises what retrying cannot fix)."""
        self.connects += 1
        try:
            ws: ClientConnection = await asyncio.wait_for(
                connect(url, ping_interval=None, max_size=None), 10
            )
            return ws
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as exc:
            why = handshake_failure(url, exc)  # raises what retrying cannot fix
        log.info("%s", why)
        return why

    async def _session(self, url: str) -> str:
        """One connection's life; returns why it ended (raises what retrying cannot fix)."""
        ws = await self._connect(url)
        if isinstance(ws, str):
            return ws
        self._ws, self._url = ws, url
        opened = False
        failure: ClientError | None = None
        try:
            token = await self._tokens.fresh()
            if token:
                await ws.send(encode(Auth(token=token)).decode())
            for channel in sorted(self.channels):
                await ws.send(encode(self._subscribe_frame(channel)).decode())
            self.state = ConnectionState.CONNECTED
            self.attempt = 0
            opened = True
            self._connected.set()
            await self._emit(Connected(url))
            while True:
                async with asyncio.timeout(self._heartbeat_timeout):
                    raw = await ws.recv()
                await self._handle(ws, raw)
        except TimeoutError:
            log.warning("no frame from %s within %.0fs; reconnecting", url, self._heartbeat_timeout)
            ws.transport.abort()  # an unresponsive server gets no close handshake
        except ConnectionClosed:
            pass
        except ClientError as exc:
            failure = exc
            await ws.close()
        finally:
            self._ws = None
            self._connected.clear()
            self._tokens.cancel_refresh()
        close = ws.protocol.close_rcvd
        code, reason = (close.code, close.reason) if close else (1006, "")
        self.last_close = (code, reason)
        failure = failure or close_failure(code, reason)
        if opened:
            will_reconnect = failure is None and self._may_reconnect()
            self.state = (
                ConnectionState.RECONNECTING if will_reconnect else ConnectionState.DISCONNECTED
            )
            await self._emit(
                Disconnected(url=url, code=code, reason=reason, will_reconnect=will_reconnect)
            )
        if failure is not None:
            raise failure
        return f"{url} closed the connection ({code})"

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
            self._tokens.schedule_refresh(ws, frame.expires)
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
            if frame.code in REFUSED_CODES:  # the connection stays, this client stops
                raise ChannelRefused(frame.channel, frame.code, frame.message)
            log.warning("gateway error %s: %s (%s)", frame.code, frame.message, frame.channel)
            event = frame
        elif isinstance(frame, Unsubscribed):
            event = frame
        else:
            return
        await self._events.put(event)
