"""``GET /api/events/<channel>``: the recent events of any channel that keeps history.

An event log read page by page, newest first: the alert history (``alerts``: raised and
resolved, by whom), a task's events, anything published on an ordered channel. Query:

- ``limit`` (1-200, default 50): events per page;
- ``before``: an offset; the page holds events below it (the previous page's
  ``next_before``), else the newest;
- ``type``: only events whose JSON ``type`` is this (``alert.raised``);
- ``since``, ``until``: only events published in this time range (seconds since the epoch).

A page is read from one bounded slice of the channel's history (``limit`` offsets), so
filters may leave it short, or empty, while older pages still hold matches: follow
``next_before`` until it is null. History is what the channel's namespace keeps (the
``alerts`` channel: 1000 events for 24 h).
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.routing import Route

from gateway.api import Api, _endpoint, _Fail, _query_float
from gateway.node import node_of
from shared.channels import check_channel

__all__ = ["routes"]

MAX_LIMIT = 200


def _whole(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name, "")
    if raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not low <= int(raw) <= high:
        raise _Fail(422, "invalid_query", f"{name} must be a whole number in {low}-{high}")
    return int(raw)


def _time(request: Request, name: str) -> float | None:
    return _query_float(request, name, "a time in seconds since the epoch")


async def _events(request: Request, api: Api) -> Any:
    channel = check_channel(request.path_params["channel"])
    limit = _whole(request, "limit", 50, 1, MAX_LIMIT)
    before = _whole(request, "before", 0, 1, 2**62) or None
    kind = request.query_params.get("type", "")[:100]
    since, until = _time(request, "since"), _time(request, "until")
    hub = node_of(request).hub
    options = hub.options(channel)
    if options.history_size < 2:
        raise _Fail(
            422, "invalid_channel", f"{channel!r} keeps no event history (a latest-value channel?)"
        )
    position = (await hub.broker.history(channel, options)).position
    top = position.offset + 1 if before is None else min(before, position.offset + 1)
    start = max(0, top - 1 - limit)
    read = await hub.broker.history(channel, options, since=start, limit=limit)
    events: list[dict[str, Any]] = []
    for pub in reversed(read.publications):
        if pub.offset >= top:
            continue
        if (since is not None and pub.time < since) or (until is not None and pub.time > until):
            continue
        try:
            data = msgspec.json.decode(pub.data)
        except msgspec.DecodeError:
            data = None
        event_type = data.get("type") if isinstance(data, dict) else None
        if kind and event_type != kind:
            continue
        events.append(
            {
                "offset": pub.offset,
                "time": pub.time,
                "type": event_type,
                "data": msgspec.Raw(pub.data),
            }
        )
    # Older pages exist while this slice reached its lower end unbroken (trimmed history
    # leaves a gap) and, with ``since``, was not yet older than it.
    first = read.publications[0] if read.publications else None
    more = (
        start > 0
        and first is not None
        and first.offset == start + 1
        and (since is None or first.time >= since)
    )
    return {
        "channel": channel,
        "offset": position.offset,
        "epoch": position.epoch,
        "events": events,
        "next_before": start + 1 if more else None,
    }


routes = [Route("/api/events/{channel}", _endpoint(_events), methods=["GET"])]
"""Mounted by :func:`gateway.app.create_app` beside :data:`gateway.api.routes`."""
