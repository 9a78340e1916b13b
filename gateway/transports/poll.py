"""``GET /poll``: HTTP long-polling, for clients that can hold neither a WebSocket nor SSE.

    GET /poll?channel=tasks.p1&channel=alerts[&since=CURSOR][&wait=SECONDS]

Each request is a whole session: the gateway keeps nothing between polls. The request
subscribes its channels from the positions in ``since`` (a
:class:`~gateway.transports.cursor.Cursor`, one entry per channel), the hub replays what
came after them and adds live messages, and the response carries those frames and the
cursor to send next time. So any gateway can serve any poll, a gateway restart loses
nothing, and the resume rules are the WebSocket's: ``recovered: false`` in a channel's
``subscribed`` frame when history no longer reaches back.

The response comes at once when there is news (a message, an error, a first subscribe, a
failed resume); otherwise it waits up to ``wait`` seconds (at most ``poll_wait``) for a
message. Its body::

    {"gateway": ID, "frames": [FRAME, ...], "since": CURSOR, "close": {"code": N, "reason": S}}

``frames`` are the WebSocket protocol's server frames, in order. ``close`` appears only
when the gateway ended the session (it drains: 1012; below 4500 poll again, 4500 and up
do not). Server pings are left out: the next poll is the heartbeat.
"""

from __future__ import annotations

import json
import math

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from gateway.admission import admit_http, poll_refusal
from gateway.frames import FrameKind, OutFrame
from gateway.node import node_of
from gateway.transports.httpbase import CORS, HttpSession, read_query

__all__ = ["poll"]


async def poll(request: Request) -> Response:
    """Serve one long-poll."""
    node = node_of(request)
    hub = node.hub
    settings = hub.settings
    query = read_query(request, request.query_params.get("since", ""))
    if isinstance(query, Response):
        return query
    cursor = query[1]
    wait = _wait(request.query_params.get("wait"), settings.poll_wait)
    if wait is None:
        return PlainTextResponse(
            f"wait must be a number of seconds, 0 to {settings.poll_wait:g}\n", 400, headers=CORS
        )
    if hub.draining:
        return PlainTextResponse("gateway draining; poll another\n", 503, headers=CORS)
    entry = await admit_http(node.security, request, handshake=False)
    if isinstance(entry, Response):
        return entry  # origin (403), limits (429/503) or credentials (401) refused
    refused = poll_refusal(node.security, entry)
    if refused is not None:
        entry.release()
        return refused

    frames: list[OutFrame] = []
    size = 0
    full = False
    close: dict[str, object] | None = None
    async with HttpSession(hub, "poll", request.receive, entry) as http:
        session = http.session
        subscribing = http.subscribe(cursor)
        deadline = http.loop.time() + wait
        news = False
        while not http.gone:
            await http.wait(deadline - http.loop.time() if subscribing.done() else 1.0)
            session.last_seen = http.loop.time()
            if session.close_code is not None:
                if http.closed_by_gateway():
                    close = {"code": session.close_code, "reason": session.close_reason}
                break
            for frame in session.take():
                if frame.kind is FrameKind.PING:
                    continue
                if len(frames) >= settings.outbox_messages or (
                    frames and size + len(frame.json) > settings.outbox_bytes
                ):
                    # One response stays within the outbox bound. The frames left out are
                    # not in the cursor either, so the next poll reads them again.
                    full = True
                    break
                frames.append(frame)
                size += len(frame.json)
                news = news or _is_news(frame)
            if full or (subscribing.done() and (news or http.loop.time() >= deadline)):
                break

    for frame in frames:
        cursor.advance(frame)
    head = json.dumps({"gateway": settings.gateway_id, "since": str(cursor), "close": close})
    body = b"".join((head[:-1].encode(), b',"frames":[', b",".join(f.json for f in frames), b"]}"))
    http.count_sent(frames, len(body))
    return Response(
        body, media_type="application/json", headers={**CORS, "cache-control": "no-store"}
    )


def _wait(text: str | None, longest: float) -> float | None:
    """The seconds a poll may wait: ``text`` (default ``longest``) capped at ``longest``;
    None when it is not a finite, non-negative number (``nan`` would never time out)."""
    if text is None:
        return longest
    try:
        wait = float(text)
    except ValueError:
        return None
    if not math.isfinite(wait) or wait < 0:
        return None
    return min(wait, longest)


def _is_news(frame: OutFrame) -> bool:
    """Anything but a quiet resume (a ``subscribed`` with ``recovered: true``)."""
    subscribed = frame.subscribed
    return subscribed is None or subscribed.recovered is not True
