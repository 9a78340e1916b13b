"""``/ws`` through Starlette's ``WebSocket``: the fallback for other ASGI servers.

``relaycast gateway`` hands every WebSocket upgrade to the lean protocol class in
:mod:`gateway.transports.websocket`, so this route is never reached there. Served by
another ASGI server (``uvicorn --factory gateway.app:from_environment``, Hypercorn...),
the app answers ``/ws`` here instead: the same admission, :class:`~gateway.session.Session`
and hub, one ``send_text`` per frame. It speaks the same protocol at several times the
CPU per delivery and memory per connection (docs/gateway.md).
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import observe
from gateway.admission import admit_websocket, refusal_response, select_subprotocol
from gateway.hub import Hub
from gateway.limits import Refusal
from gateway.node import node_of
from gateway.session import Session
from gateway.transports.websocket import CLOSE_TIMEOUT, note_close
from shared.protocol import CloseCode

__all__ = ["websocket_fallback"]


async def websocket_fallback(websocket: WebSocket) -> None:
    """One WebSocket connection, from handshake to close, over ASGI."""
    node = node_of(websocket)
    hub, security = node.hub, node.security
    if hub.draining:
        await _refuse(websocket, Refusal(503, "Gateway draining; connect to another", "drain"))
        return
    peer = websocket.client.host if websocket.client else ""
    admitted = admit_websocket(security, websocket.headers.getlist, peer)
    if isinstance(admitted, Refusal):
        await _refuse(websocket, admitted)
        return
    try:
        offered = websocket.scope.get("subprotocols", [])
        await websocket.accept(subprotocol=select_subprotocol(offered))
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        session = Session(
            hub.limits,
            on_ready=ready.set,
            guard=security.guard,
            metrics=observe.SESSION_METRICS,
            clock=loop,
        )
        session.last_seen = session.opened = loop.time()
        hub.attach(session)
        observe.CONNECTIONS.labels("websocket").inc()
        if admitted.token:
            session.authenticate(admitted.token)  # a refused token closes with 4003 or 4501
        writer = asyncio.create_task(_write(websocket, session, ready, hub))
        try:
            await _read(websocket, session, hub, loop)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            observe.CONNECTIONS.labels("websocket").dec()
            await hub.detach(session)
    finally:
        admitted.release()


async def _refuse(websocket: WebSocket, refusal: Refusal) -> None:
    """Answer the upgrade with the refusal's HTTP status where the server allows it."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(refusal_response(refusal))
    else:
        code = CloseCode.POLICY_VIOLATION if refusal.status == 403 else CloseCode.TRY_AGAIN_LATER
        await websocket.close(code, refusal.text)


async def _read(
    websocket: WebSocket, session: Session, hub: Hub, loop: asyncio.AbstractEventLoop
) -> None:
    """Feed inbound frames to the session; run its commands in the order they came."""
    max_size = hub.settings.max_frame_bytes
    while session.close_code is None:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        if session.close_code is not None:
            break  # closed while this frame was awaited
        data = message.get("text")
        if data is None:
            data = message.get("bytes") or b""
        now = session.last_seen = loop.time()
        if len(data.encode() if isinstance(data, str) else data) > max_size:  # bytes, not chars
            observe.LIMIT_HITS.labels("frame_size").inc()
            session.close(CloseCode.MESSAGE_TOO_BIG, "frame too big")
            break
        command = session.receive(data, now)
        if command is not None:
            await hub.run(session, command)
    # The writer sends the close frame; drop what the client still sends until its answer.
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, TimeoutError):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            while (await websocket.receive())["type"] != "websocket.disconnect":
                pass


async def _write(websocket: WebSocket, session: Session, ready: asyncio.Event, hub: Hub) -> None:
    """Send what the session queues; close as it asks. A client that takes longer than
    the heartbeat timeout to accept a batch is dropped."""
    timeout = hub.settings.heartbeat_timeout
    try:
        while True:
            await ready.wait()
            ready.clear()
            async with asyncio.timeout(timeout):
                if session.close_code is not None:
                    note_close(session.close_code, session.close_reason)
                    await websocket.close(session.close_code, session.close_reason[:120])
                    return
                frames = session.take()
                for frame in frames:
                    await websocket.send_text(frame.json.decode())
                observe.FRAMES_SENT.inc(len(frames))
                observe.BYTES_SENT.inc(sum(len(f.ws) for f in frames))
    except TimeoutError:
        session.close(CloseCode.SLOW_CONSUMER, "client reads too slowly")
        note_close(CloseCode.SLOW_CONSUMER, "client reads too slowly")
        with contextlib.suppress(Exception):
            await websocket.close(CloseCode.SLOW_CONSUMER, "client reads too slowly")
    except (WebSocketDisconnect, RuntimeError, OSError):
        session.close(CloseCode.ABNORMAL_CLOSURE, "connection lost")
