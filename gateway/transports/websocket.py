"""The ``/ws`` endpoint: a lean WebSocket protocol that uvicorn runs for every upgrade.

uvicorn hands each WebSocket upgrade to this ``asyncio.Protocol`` (``Config(ws=...)``)
instead of running an ASGI task per connection; every other route stays Starlette's.
The ``websockets`` sans-I/O ``ServerProtocol`` answers the handshake (the request, the
extensions, the subprotocol) and is dropped once it has: inbound frames are read by
:mod:`.wsframes` (masking, fragmentation, control frames, the size limit), so an idle
connection keeps no parser. Outbound, the hub's frames are pre-framed once per message
(``OutFrame.ws``) and every frame queued for a connection within one loop iteration goes
out in one write. A connection that negotiated permessage-deflate gets each message's
compressed frame instead, also made once per message and shared (:mod:`gateway.deflate`).

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

from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol
from websockets.typing import Subprotocol

from gateway import observe
from gateway.admission import Entry, admit_websocket, select_subprotocol
from gateway.commands import Command
from gateway.deflate import InflateError, SharedDeflate, inflate
from gateway.limits import Refusal
from gateway.node import Node
from gateway.session import Session
from gateway.transports.wsframes import (
    CLOSE,
    CONT,
    PING,
    PONG,
    Frame,
    Partial,
    Violation,
    close_frame,
    control_frame,
    parse_close,
    split,
)
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


class _ServerProtocol(ServerProtocol):
    """websockets' sans-I/O server, selecting the subprotocol by the gateway's rule."""

    def select_subprotocol(self, subprotocols: Sequence[Subprotocol]) -> Subprotocol | None:
        return cast(Subprotocol | None, select_subprotocol(subprotocols))


class WebSocketTransport(asyncio.Protocol):
    """One WebSocket connection, from handshake to close (uvicorn's ``ws`` protocol class)."""

    # Slots, not a __dict__: about 600 bytes less for every connection a gateway holds.
    __slots__ = (
        "close_timer",
        "closing",
        "commands",
        "conn",
        "deflate",
        "entry",
        "flush_scheduled",
        "hub",
        "loop",
        "partial",
        "paused",
        "pending",
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
        self.conn: _ServerProtocol | None = _ServerProtocol(
            max_size=settings.max_frame_bytes,
            extensions=_DEFLATE if settings.compression else None,
            logger=_protocol_log,
        )
        """The handshake's sans-I/O protocol; None once the handshake is answered."""
        self.deflate = False  # negotiated permessage-deflate: send compressed frames
        self.entry: Entry | None = None  # admitted by gateway/admission.py
        self.transport: asyncio.Transport | None = None
        self.session: Session | None = None
        self.paused = False
        self.flush_scheduled = False
        self.closing = False
        """A close frame was sent: the connection ends when the client answers it."""
        self.close_timer: asyncio.TimerHandle | None = None
        # Made when first needed: most connections never fragment a message, and send
        # a command or two in their life (an empty list is 56 bytes and one more object
        # for the garbage collector).
        self.commands: list[Command] | None = None
        self.worker: asyncio.Task[None] | None = None
        self.pending: bytes | bytearray = b""  # the start of a frame not fully arrived
        self.partial: Partial | None = None  # a message arriving in fragments

    # --- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        self.transport = transport
        self.server_state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.conn is not None:
            self._handshake_data(self.conn, data)
            return
        session, transport = self.session, self.transport
        if session is None or transport is None or transport.is_closing():
            return  # closed: what the client still sends is not read
        pending = self.pending
        if pending:  # a bytearray: a frame arriving in many reads is not copied each time
            pending += data
        try:
            frames, rest = split(
                pending or data, self.hub.settings.max_frame_bytes, deflate=self.deflate
            )
            self.pending = rest if not rest or isinstance(rest, bytearray) else bytearray(rest)
            for frame in frames:
                if not self._frame(session, transport, frame):
                    return
        except Violation as exc:
            self._fail(exc.code, exc.reason)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server_state.connections.discard(self)
        if self.close_timer is not None:
            self.close_timer.cancel()
        session, self.session = self.session, None
        self.transport = None
        if self.conn is not None:  # lost during the handshake
            self._drop_handshake(self.conn)
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

    def _handshake_data(self, conn: _ServerProtocol, data: bytes) -> None:
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Request):
                self._handshake(conn, event)
        self._send_handshake_output(conn)
        if conn.state is not State.CONNECTING:
            self._drop_handshake(conn)  # answered: from now on, frames are read by split()

    def _handshake(self, conn: _ServerProtocol, request: Request) -> None:
        path = request.path.partition("?")[0]
        if path != WS_PATH:
            response = conn.reject(404, "Not Found\n")
        elif self.hub.draining:
            response = conn.reject(503, "Gateway draining; connect to another\n")
        else:
            # Origin (403), handshake rate and connection limits (429/503), the token.
            peer = self.transport.get_extra_info("peername") if self.transport else None
            address = str(peer[0]) if isinstance(peer, tuple) else ""
            admitted = admit_websocket(self.security, request.headers.get_all, address)
            if isinstance(admitted, Refusal):
                response = conn.reject(admitted.status, admitted.text + "\n")
                if admitted.status != 403:
                    response.headers["Retry-After"] = "1"
            else:
                self.entry = admitted
                response = conn.accept(request)
        conn.send_response(response)
        if response.status_code != 101:
            if self.entry is not None:
                self.entry.release()
                self.entry = None
            return
        self.deflate = bool(conn.extensions)
        session = self.session = Session(
            self.hub.limits,
            on_ready=self,  # calling the transport schedules its flush (__call__, below)
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

    def _send_handshake_output(self, conn: _ServerProtocol) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in conn.data_to_send():
            if chunk:
                transport.write(chunk)
            else:
                transport.close()  # refused (or not a handshake): the response, then EOF
                return

    def _drop_handshake(self, conn: _ServerProtocol) -> None:
        # websockets' parser is a generator whose frames refer back to the protocol: a
        # cycle only the garbage collector could free. Closed, the connection's objects
        # go by reference counting (gateway/collector.py relies on it).
        conn.parser.close()
        conn.parser_exc = None
        self.conn = None

    def _frame(self, session: Session, transport: asyncio.Transport, frame: Frame) -> bool:
        """Act on one frame from the client; False once the connection is closing."""
        opcode = frame.opcode
        if opcode >= CLOSE:
            if opcode == CLOSE:
                parse_close(frame.data)
                if not self.closing:  # the client closes first: echo its close frame
                    transport.write(control_frame(CLOSE, frame.data))
                transport.close()  # a server ends the TCP connection (RFC 6455, 7.1.1)
                return False
            if session.close_code is None:
                self._heard(session)
                if opcode == PING and not self.closing:
                    transport.write(control_frame(PONG, frame.data))
            return True
        max_size = self.hub.settings.max_frame_bytes
        partial = self.partial
        if opcode == CONT:
            if partial is None:
                raise Violation(CloseCode.PROTOCOL_ERROR, "unexpected continuation frame")
            partial.add(frame.data, max_size)
            if not frame.fin:
                self._heard(session)
                return True
            self.partial = None
            data = partial.data()
            compressed = partial.compressed
        else:  # TEXT or BINARY
            if partial is not None:
                raise Violation(CloseCode.PROTOCOL_ERROR, "expected a continuation frame")
            if not frame.fin:
                self.partial = Partial(frame)
                self._heard(session)
                return True
            data, compressed = frame.data, frame.rsv1
        if compressed:
            try:
                data = inflate(data, max_size)
            except InflateError as exc:
                raise Violation(exc.code, str(exc)) from None
        if session.close_code is not None:
            return True  # closing: what the client still sends is not acted on
        now = session.last_seen = self.loop.time()
        command = session.receive(data, now)
        if command is not None:
            if self.commands is None:
                self.commands = []
            self.commands.append(command)
            if self.worker is None:
                self.worker = self.loop.create_task(self._run_commands(session))
        return True

    def _heard(self, session: Session) -> None:
        """A frame that is not a whole message: the client was heard, and every frame
        counts against the frame rate."""
        if session.close_code is None:
            session.last_seen = now = self.loop.time()
            session.spend(now)

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

    __call__ = _schedule_flush
    """The session's ``on_ready``: the transport itself, not a bound method (64 bytes
    more for every connection)."""

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

    def _close(self, code: int, reason: str) -> None:
        """Start the close handshake; the socket is aborted if the client never answers."""
        if self.closing or self.transport is None:
            return
        self.closing = True
        note_close(code, reason)
        self.transport.write(close_frame(code, reason[:120]))
        if self.close_timer is None:
            self.close_timer = self.loop.call_later(CLOSE_TIMEOUT, self._abort)

    def _fail(self, code: int, reason: str) -> None:
        """The client broke the protocol or a limit: a close frame, then end the TCP
        connection without waiting for an answer (RFC 6455, 7.1.7)."""
        if code == CloseCode.MESSAGE_TOO_BIG:
            observe.LIMIT_HITS.labels("frame_size").inc()
        if self.session is not None and self.session.close_code is None:
            self.session.close(code, reason)
        self._close(code, reason)
        self.pending = b""
        self.partial = None
        if self.transport is not None:
            self.transport.close()

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
