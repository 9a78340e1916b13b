"""The HTTP API of metrics of your own and of metric history (under ``/api``).

- ``POST /api/metrics/<source>``: a batch of gauges and counters from a service;
- ``GET /api/history``: the sources with history;
- ``GET /api/history/<source>``: a source's series with their newest values;
- ``GET /api/history/<source>/<metric>``: points of one series, with ``entity``,
  ``start``, ``end`` (seconds since the epoch), ``range`` (``1h``, ``1d``, ``30d``: the
  span before ``end``), ``max_points`` and ``step`` (seconds per point at least).

They share :mod:`gateway.api`'s key check and error shape; errors of their own are 404
``unknown_series``, 422 ``invalid_sample``, ``too_many_series``, ``range_too_large`` and
``invalid_query``.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

import msgspec
import redis.asyncio as aioredis
from starlette.requests import Request
from starlette.routing import Route

from gateway.api import Api, _body, _endpoint, _Fail, _limit, _query_float
from shared.state.history import (
    HistoryStore,
    RangeTooLarge,
    SeriesCapReached,
    UnknownSeries,
    source_channel,
)
from shared.state.series import InvalidSample, Sample, parse_tiers

__all__ = ["MetricsBatch", "routes"]

_LARGEST = 1e12
"""The largest query number: seconds since the epoch reach 1e12 in the year 33658; a
larger time would overflow into infinity as milliseconds."""

_stores: weakref.WeakKeyDictionary[Api, HistoryStore] = weakref.WeakKeyDictionary()


class MetricsBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The body of ``POST /api/metrics/<source>``."""

    samples: list[Sample]
    interval: float = 10.0
    """Seconds the counters' increments cover (the time since the previous batch)."""


def _history(api: Api) -> HistoryStore:
    store = _stores.get(api)
    if store is None:
        redis = api.need_redis()
        if not isinstance(redis, aioredis.Redis):
            raise _Fail(503, "unavailable", "metric history needs one Redis server or Sentinel")
        store = _stores[api] = HistoryStore(redis, api.settings)
    return store


async def _guarded(call: Any) -> Any:
    """Each user mistake as its own clear error."""
    try:
        return await call
    except SeriesCapReached as exc:
        raise _Fail(422, "too_many_series", str(exc)) from exc
    except InvalidSample as exc:
        raise _Fail(422, "invalid_sample", str(exc)) from exc
    except UnknownSeries as exc:
        raise _Fail(404, "unknown_series", str(exc)) from exc
    except RangeTooLarge as exc:
        raise _Fail(422, "range_too_large", str(exc)) from exc


async def _post_metrics(request: Request, api: Api) -> Any:
    body = await _body(request, MetricsBatch, _limit(api))
    source = request.path_params["host"]
    position, count = await _guarded(_history(api).record(source, body.samples, body.interval))
    return {
        "source": source,
        "series": count,
        "channel": source_channel(source),
        "offset": position.offset,
        "epoch": position.epoch,
    }


async def _sources(request: Request, api: Api) -> Any:
    return {"sources": await _history(api).sources()}


async def _series(request: Request, api: Api) -> Any:
    source = request.path_params["source"]
    return {"source": source, "series": await _guarded(_history(api).series(source))}


def _number(request: Request, name: str) -> float | None:
    value = _query_float(request, name, f"a number within +-{_LARGEST:g}", echo=True)
    if value is not None and abs(value) > _LARGEST:
        raise _Fail(422, "invalid_query", f"{name} must be a number within +-{_LARGEST:g}")
    return value


async def _points(request: Request, api: Api) -> Any:
    params = request.query_params
    start, end = _number(request, "start"), _number(request, "end")
    span = params.get("range")
    if span:
        if start is not None:
            raise _Fail(422, "invalid_query", "give start or range, not both")
        try:
            seconds = parse_tiers(f"1:{span[:20]}")[0].keep
        except ValueError as exc:
            raise _Fail(422, "invalid_query", f"range {span[:20]!r}: like 1h, 1d, 30d") from exc
        start = (end if end is not None else time.time()) - seconds
        end = end if end is not None else start + seconds
    max_points = _number(request, "max_points")
    if max_points is not None and max_points != int(max_points):
        raise _Fail(422, "invalid_query", "max_points must be a whole number")
    query = _history(api).query(
        request.path_params["source"],
        request.path_params["metric"],
        entity=params.get("entity", ""),
        start=start,
        end=end,
        max_points=None if max_points is None else int(max_points),
        step=_number(request, "step"),
    )
    return await _guarded(query)


routes = [
    Route("/api/metrics/{host}", _endpoint(_post_metrics), methods=["POST"]),
    Route("/api/history", _endpoint(_sources), methods=["GET"]),
    Route("/api/history/{source}", _endpoint(_series), methods=["GET"]),
    Route("/api/history/{source}/{metric}", _endpoint(_points), methods=["GET"]),
]
"""Mounted by :func:`gateway.app.create_app` beside :data:`gateway.api.routes`."""
