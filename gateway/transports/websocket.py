"""The ``/ws`` endpoint: a lean WebSocket protocol that uvicorn runs for every upgrade.

uvicorn hands each WebSocket upgrade to this ``asyncio.Protocol`` (``Config(ws=...)``)
instead of running an ASGI task per connection; every other route stays Starlette's.
The ``websockets`` sans-I/O ``ServerProtocol`` parses the handshake and inbound frames
(masking, fragmentation, control frames, the close handshake and the size limit).
Outbound, the hub's frames are pre-framed once per message (``OutFrame.ws``) and every
frame queued for a connection within one loop iteration goes out in one write. A
connection that negotiated permessage-deflate gets each message's compressed frame
instead, also made once per message and shared (:mod:`gateway.deflate`).

Flow control: when the socket's write buffer passes its high-water mark, writing pauses
and frames wait in the session's bounded outbox; a client that stays behind long enough
to fill it is closed with 4001. A close handshake the client does not finish within
:data:`CLOSE_TIMEOUT` seconds ends with the socket aborted, so memory is always freed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, cast

from websockets.exceptions import InvalidState
from websockets.frames import CloseCode as WsCloseCode
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from gateway import observe
from gateway.admission import Entry, admit_websocket, select_subprotocol
from gateway.commands import Command
from gateway.deflate import SharedDeflate
from gateway.limits import Refusal
from gateway.node import Node
from gateway.session import Session
from shared.protocol import CloseCode

__all__ = ["CLOSE_TIMEOUT", "WebSocketTransport", "note_close"]

log = logging.getLogger("relaycast.ws")
# The sans-I/O protocol logs every open and close at INFO; keep its warnings only.
_protocol_log = logging.getLogger("relaycast.ws.protocol")
_protocol_log.setLevel(logging.WARNING)

CLOSE_TIMEOUT = 5.0
"""Seconds a closing connection may take to finish the close handshake."""

WS_PATH = "/ws"


ROUTINE_CLOSES = frozenset(
    {CloseCode.NORMAL, CloseCode.GOING_AWAY, CloseCode.SERVICE_RESTART, CloseCode.CONNECTION_AGED}
)
"""Closes logged at debug level: drains and rebalancing start them by the thousand."""


def note_close(code: int, reason: str) -> None:
    """Count and log a close the gateway starts (:data:`ROUTINE_CLOSES` at debug level)."""
    observe.DISCONNECTS.labels(str(code)).inc()
    routine = code in ROUTINE_CLOSES
    log.log(
        logging.DEBUG if routine else logging.INFO, "closing connection with %d: %s", code, reason
    )


class _Flusher:
    """Writes every connection with frames queued, in one callback per loop iteration.

    A fan-out queues a frame for each subscriber. The first frame queued for a
    connection puts it on the ready list; one callback after the fan-out gives each ready
    connection one write of everything it has queued, then reports what was sent to the
    metrics once. Per connection, a callback of its own would cost about 0.7 µs of handle
    churn per write, and three Prometheus calls (each behind a lock) 1.4 µs more.
    """

    __slots__ = ("bytes", "frames", "loop", "oldest", "ready")

    def __init__(self) -> None:
        self.ready: list[WebSocketTransport] = []
        self.loop: asyncio.AbstractEventLoop | None = None  # set while a run is due
        self.frames = self.bytes = 0
        self.oldest = 0.0

    def schedule(self, transport: WebSocketTransport) -> None:
        self.ready.append(transport)
        if self.loop is not transport.loop:
            self.loop = transport.loop
            self.loop.call_soon(self.run)

    def sent(self, frames: int, size: int, first: float) -> None:
        self.frames += frames
        self.bytes += size
        if first and (not self.oldest or first < self.oldest):
            self.oldest = first

    def run(self) -> None:
        ready, self.ready, self.loop = self.ready, [], None
        for transport in ready:
            transport._flush()
        if self.frames:
            observe.FRAMES_SENT.inc(self.frames)
            observe.BYTES_SENT.inc(self.bytes)
        if self.oldest:
            observe.LATENCY.observe(max(0.0, time.time() - self.oldest))
        self.frames = self.bytes = 0
        self.oldest = 0.0


_flusher = _Flusher()

_DEFLATE = [SharedDeflate()]
"""The extensions the gateway accepts when a client offers them: one list, shared by
every connection."""

_PROTOCOL_FAILURES = frozenset(
    {WsCloseCode.PROTOCOL_ERROR, WsCloseCode.INVALID_DATA, WsCloseCode.MESSAGE_TOO_BIG}
)
"""Closes the sans-I/O protocol starts on bad input from the client (1002, 1007, 1009)."""


class _ServerProtocol(ServerProtocol):
    """websockets' sans-I/O server, selecting the subprotocol by the gateway's rule."""

    def select_subprotocol(self, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        return cast(Subprotocol | None, select_subprotocol(subprotocols))


class WebSocketTransport(asyncio.Protocol):
    """One WebSocket connection, from handshake to close (uvicorn's ``ws`` protocol class)."""

    # Slots, not a __dict__: about 600 bytes less for every connection a gateway holds.
    __slots__ = (
        "_fragments",
        "close_timer",
        "closing",
        "commands",
        "conn",
        "deflate",
        "entry",
        "flush_scheduled",
        "hub",
        "loop",
        "paused",
        "peer",
        "security",
        "server_state",
        "session",
        "transport",
        "worker",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        node: Node = app_state["node"]  # the lifespan state (gateway/app.py)
        self.hub = node.hub
        self.security = node.security
        self.loop = _loop or asyncio.get_running_loop()
        self.server_state = server_state
        settings = self.hub.settings
        self.conn = _ServerProtocol(
            max_size=settings.max_frame_bytes,
            extensions=_DEFLATE if settings.compression else None,
            logger=_protocol_log,
        )
        self.deflate = False  # negotiated permessage-deflate: send compressed frames
        self.peer = ""
        self.entry: Entry | None = None  # admitted by gateway/admission.py
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.paused = False
        self.flush_scheduled = False
        self.closing = False
        self.close_timer: asyncio.TimerHandle | None = None
        # Lists made when first needed: most connections never fragment a frame, and
        # send a command or two in their life (an empty list is 72 bytes and one more
        # object for the garbage collector).
        self.commands: list[Command] | None = None
        self.worker: asyncio.Task[None] | None = None
        self._fragments: list[bytes | bytearray | memoryview] | None = None

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        self.server_state.connections.add(self)
        peer = transport.get_extra_info("peername")
        self.peer = str(peer[0]) if isinstance(peer, tuple) else ""

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        for event in self.conn.events_received():
            if isinstance(event, Request):
                self._handshake(event)
            elif isinstance(event, Frame) and self.session is not None:
                self._frame(self.session, event)
        close = self.conn.close_sent
        if close is not None and close.code in _PROTOCOL_FAILURES and not self.closing:
            self.closing = True  # the protocol refused a frame (oversized, malformed) and closes
            if close.code == CloseCode.MESSAGE_TOO_BIG:
                observe.LIMIT_HITS.labels("frame_size").inc()
            note_close(close.code, close.reason)
        self._send_protocol_output()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
        session, self.session = self.session, None
        self.transport = None
        # websockets' parser is a generator whose frames refer back to the protocol: a
        # cycle only the garbage collector could free. Closed, the connection's objects
        # go by reference counting (gateway/collector.py relies on it).
        self.conn.parser.close()
        self.conn.parser_exc = None
        if self.entry is not None:
            self.entry.release()
        if session is not None:
            observe.CONNECTIONS.labels("websocket").dec()
            if session.close_code is None:
                session.close(CloseCode.ABNORMAL_CLOSURE, "connection lost")
            task = self.loop.create_task(self._end(session))
            self.server_state.tasks.add(task)
            task.add_done_callback(self.server_state.tasks.discard)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._schedule_flush()

    # --- handshake and inbound ---------------------------------------------------------

    def _handshake(self, request: Request) -> None:
        path = request.path.partition("?")[0]
        if path != WS_PATH:
            response = self.conn.reject(404, "Not Found\n")
        elif self.hub.draining:
            response = self.conn.reject(503, "Gateway draining; connect to another\n")
        else:
            # Origin (403), handshake rate and connection limits (429/503), the token.
            admitted = admit_websocket(self.security, request.headers.get_all, self.peer)
            if isinstance(admitted, Refusal):
                response = self.conn.reject(admitted.status, admitted.text + "\n")
                if admitted.status != 403:
                    response.headers["Retry-After"] = "1"
            else:
                self.entry = admitted
                response = self.conn.accept(request)
        self.conn.send_response(response)
        # websockets' parser keeps the request for the connection's life; its headers
        # (about 1.5 KB) are not needed once it is answered.
        request.headers.clear()
        if response.status_code != 101:
            if self.entry is not None:
                self.entry.release()
            return
        self.deflate = bool(self.conn.extensions)
        session = self.session = Session(
            self.hub.limits,
            on_ready=self._schedule_flush,
            guard=self.security.guard,
            metrics=observe.SESSION_METRICS,
            clock=self.loop,
        )
        session.last_seen = session.opened = self.loop.time()
        self.hub.attach(session)
        observe.CONNECTIONS.labels("websocket").inc()
        if self.entry is not None and self.entry.token:
            token, self.entry.token = self.entry.token, ""
            session.authenticate(token)  # a refused token closes with 4003 or 4501

    def _frame(self, session: Session, frame: Frame) -> None:
        if session.close_code is not None:
            return  # closing: what the client still sends is not read
        now = session.last_seen = self.loop.time()
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            if not frame.fin:
                if session.spend(now):
                    self._fragments = [frame.data]
                return
            command = session.receive(frame.data, now)
        elif frame.opcode is Opcode.CONT:
            fragments = self._fragments
            if fragments is None:  # a continuation of nothing: the parser refuses it first
                return
            if not frame.fin:
                if session.spend(now):
                    fragments.append(frame.data)
                return
            fragments.append(frame.data)
            self._fragments = None
            command = session.receive(b"".join(fragments), now)
        else:
            session.spend(now)  # every frame counts against the frame rate
            return  # ping, pong and close are answered by the protocol object
        if command is not None:
            if self.commands is None:
                self.commands = []
            self.commands.append(command)
            if self.worker is None:
                self.worker = self.loop.create_task(self._run_commands(session))

    async def _run_commands(self, session: Session) -> None:
        """Subscribe and unsubscribe in the order the client sent them."""
        try:
            while self.commands:
                await self.hub.run(session, self.commands.pop(0))
        finally:
            self.worker = None
            self.commands = None

    async def _end(self, session: Session) -> None:
        if self.worker is not None:
            self.worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.worker
        await self.hub.detach(session)

    # --- outbound ----------------------------------------------------------------------

    def _schedule_flush(self) -> None:
        if not self.flush_scheduled:
            self.flush_scheduled = True
            _flusher.schedule(self)

    def _flush(self) -> None:
        self.flush_scheduled = False
        session, transport = self.session, self.transport
        if session is None or transport is None:
            return
        if session.close_code is not None:
            self._close(session.close_code, session.close_reason)
            return
        if self.paused:
            return
        # The outbox directly: the session is open (checked above), and this runs for
        # every write, where Session.take's own check would cost a call.
        frames = session.outbox.take()
        if not frames:
            return
        if self.deflate:  # the shared compressed frames (gateway/deflate.py)
            if len(frames) == 1:
                data = frames[0].wsz or frames[0].deflated()
            else:
                data = b"".join([f.wsz or f.deflated() for f in frames])
        else:
            data = frames[0].ws if len(frames) == 1 else b"".join([f.ws for f in frames])
        transport.write(data)
        _flusher.sent(len(frames), len(data), frames[0].time)

    def _send_protocol_output(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.conn.data_to_send():
            if chunk:
                transport.write(chunk)
            else:
                transport.close()  # the protocol asks for EOF: the close handshake is done
                return
        if self.conn.close_expected() and self.close_timer is None:
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _close(self, code: int, reason: str) -> None:
        if self.closing:
            return
        self.closing = True
        note_close(code, reason)
        with contextlib.suppress(InvalidState):
            self.conn.send_close(code, reason[:120])
        self._send_protocol_output()
        if self.close_timer is None:
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def shutdown(self) -> None:
        """uvicorn's shutdown: close what is still open (after our own drain, nothing)."""
        if self.session is not None:
            self.session.close(CloseCode.SERVICE_RESTART, "gateway stopping")
            self._flush()
        elif self.transport is not None:
            self.transport.close()
