"""``GET /sse``: Server-Sent Events, for clients that cannot open a WebSocket.

    GET /sse?channel=tasks.p1&channel=alerts[&since=CURSOR][&max_rate=N]

The stream carries the WebSocket protocol's server frames, one per event, as JSON in
``data:`` (``subscribed``, ``message``, ``ping``, ``error``...). Every event has an
``id:``: the :class:`~gateway.transports.cursor.Cursor` of all the request's channels
after that event, so when the connection drops, the browser's ``EventSource``
reconnects with ``Last-Event-ID`` and every channel resumes where it was (``recovered``
in its ``subscribed`` frame says whether history still reached back). ``since`` gives the
same cursor on a first request; ``Last-Event-ID`` wins when both are present.
``max_rate`` paces every channel of the request as a subscribe's ``max_rate`` does
(latest-value channels only; any other gets an ``error`` frame).

Besides the protocol's frames, two named events: ``hello`` first (``{"gateway": ID}``,
the gateway that serves the stream), and ``close`` last when the gateway ends the stream
(``{"code": 1012, "reason": "..."}``, the WebSocket close code it would have used: below
4500 reconnect and resume, 4500 and above do not). A comment line goes out after
``sse_keepalive`` seconds of silence, under the idle timeouts of common proxies, and the
headers turn off proxy buffering.

SSE has no way back to the server, so the session counts as alive while writes to it
complete: a client that reads nothing for ``heartbeat_timeout`` seconds is dropped.
"""

from __future__ import annotations

import asyncio
import json

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send

from gateway.admission import Entry, admit_http
from gateway.hub import Hub
from gateway.node import node_of
from gateway.transports.cursor import Cursor
from gateway.transports.httpbase import CORS, HttpSession, read_max_rate, read_query

__all__ = ["SSE_HEADERS", "EventStream", "sse"]

SSE_HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    "x-accel-buffering": "no",  # nginx: do not buffer this response
    **CORS,
}

_RAW_HEADERS = [(k.encode(), v.encode()) for k, v in SSE_HEADERS.items()]

RETRY_MS = 1000
"""The reconnect delay an ``EventSource`` that reconnects by itself should use."""


async def sse(request: Request) -> Response | EventStream:
    """Open an event stream for the channels in the query."""
    node = node_of(request)
    hub = node.hub
    cursor_text = request.headers.get("last-event-id") or request.query_params.get("since", "")
    query = read_query(request, cursor_text)
    if isinstance(query, Response):
        return query
    max_rate = read_max_rate(request)
    if isinstance(max_rate, Response):
        return max_rate
    if hub.draining:
        return PlainTextResponse(
            "gateway draining; connect to another\n", status_code=503, headers=CORS
        )
    entry = await admit_http(node.security, request)  # origin, limits, token
    if isinstance(entry, Response):
        return entry
    return EventStream(hub, query[1], entry, max_rate)


class EventStream:
    """The streaming response of one ``/sse`` request (an ASGI app)."""

    def __init__(
        self, hub: Hub, cursor: Cursor, entry: Entry, max_rate: float | None = None
    ) -> None:
        self.hub = hub
        self.cursor = cursor
        self.entry = entry
        self.max_rate = max_rate

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.hub.settings
        async with HttpSession(self.hub, "sse", receive, self.entry, self.max_rate) as http:
            session, cursor = http.session, self.cursor
            loop = http.loop

            async def write(body: bytes) -> bool:
                """Write; False when the client took longer than the heartbeat timeout."""
                message: Message = {"type": "http.response.body", "body": body, "more_body": True}
                try:
                    async with asyncio.timeout(settings.heartbeat_timeout):
                        await send(message)
                except TimeoutError:
                    return False
                session.last_seen = loop.time()
                return True

            await send({"type": "http.response.start", "status": 200, "headers": _RAW_HEADERS})
            hello = json.dumps({"gateway": settings.gateway_id}).encode()
            if not await write(
                b"retry: %d\nevent: hello\nid: %s\ndata: %s\n\n"
                % (RETRY_MS, str(cursor).encode(), hello)
            ):
                return
            http.subscribe(cursor)
            last_write = loop.time()
            while True:
                await http.wait(last_write + settings.sse_keepalive - loop.time())
                if http.gone:
                    return
                if session.close_code is not None:
                    http.closed_by_gateway()
                    close = json.dumps({"code": session.close_code, "reason": session.close_reason})
                    await write(
                        b"event: close\nid: %s\ndata: %s\n\n"
                        % (str(cursor).encode(), close.encode())
                    )
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                    return
                frames = session.take()
                if frames:
                    parts: list[bytes] = []
                    for frame in frames:
                        cursor.advance(frame)
                        parts += (b"id: ", str(cursor).encode(), b"\ndata: ", frame.json, b"\n\n")
                    body = b"".join(parts)
                    http.count_sent(frames, len(body))
                elif loop.time() - last_write >= settings.sse_keepalive:
                    body = b": keepalive\n\n"
                else:
                    continue
                if not await write(body):
                    return
                last_write = loop.time()
