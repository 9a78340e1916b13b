"""Metric history in Redis, written in the same script that publishes the sample.

Every sample of a series goes into each tier of ``history_tiers`` (by default: every
sample for an hour, 1-minute buckets for a day, 15-minute buckets for 30 days). A tier is
one sorted set per series, scored by time in milliseconds:

- the raw tier's members are ``<ms>,<value>``;
- a bucket tier's members are ``<bucket ms>,<min>,<max>,<sum>,<count>``, rewritten in
  place as samples of the bucket arrive (so the average is exact, not an average of
  averages).

Each write trims what its tier no longer keeps and renews the key's expiry, so memory is
bounded by (series) x (points per tier) whatever the senders do. The series' newest
value, unit and kind sit in the source's hash (``rc:metrics:series:<source>``), which is
also what caps the series per source: a batch that would go past ``metrics_series_cap``
is refused whole before anything is written.

Writing history and publishing the sample are one Lua script
(:class:`~shared.broker.redis_atomic.AtomicScript`), so a chart drawn from history and
the live value a subscriber receives always agree.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.broker.redis_atomic import AtomicScript
from shared.protocol import Position
from shared.settings import Settings
from shared.state.history_scripts import HOST_LUA, RANGE_LUA, SOURCE_LUA
from shared.state.hosts import host_channel, hosts_key
from shared.state.metrics import SeriesInfo
from shared.state.series import (
    InvalidSample,
    Sample,
    Tier,
    check_entity,
    check_metric,
    check_source,
    parse_tiers,
    series_id,
)

__all__ = [
    "History",
    "HistoryStore",
    "RangeTooLarge",
    "SeriesCapReached",
    "SeriesInfo",
    "SourceInfo",
    "UnknownSeries",
    "source_channel",
]

SOURCE_PREFIX = "metrics.source."
MAX_BATCH = 1000
MAX_VALUE = 1e300
"""The largest magnitude stored: the tiers sum values per bucket, and a sum that overflows
to infinity could be neither encoded nor read back."""


def check_value(sid: str, value: float) -> None:
    """Refuse a value history cannot keep.

    Raises:
        InvalidSample: ``value`` is beyond +-``MAX_VALUE``, infinite or NaN.
    """
    if not abs(value) <= MAX_VALUE:
        raise InvalidSample(f"{sid}: value {value:g} is beyond +-{MAX_VALUE:g}")


class UnknownSeries(LookupError):
    """No such source, or no such metric of the source, in history."""


class RangeTooLarge(ValueError):
    """Even the coarsest tier has more points in the range than one answer may carry."""


class SeriesCapReached(InvalidSample):
    """The batch would give its source more series than ``metrics_series_cap``."""


def source_channel(source: str) -> str:
    """The latest-value channel of a service's own metrics."""
    return SOURCE_PREFIX + source


class SourceInfo(msgspec.Struct, kw_only=True):
    """A source with history: a ``host`` (``relaycast metrics``) or a ``service``."""

    name: str
    kind: str


class History(msgspec.Struct, kw_only=True):
    """The answer to a history query. Each point is ``[time, avg, min, max]`` (seconds;
    in the raw tier the three values are the sample's)."""

    source: str
    metric: str
    entity: str
    unit: str
    kind: str
    step: float
    """Seconds per point (0: every sample as it came)."""
    start: float
    end: float
    points: list[tuple[float, float, float, float]]


_encode = msgspec.json.Encoder().encode
_decode_info = msgspec.json.Decoder(SeriesInfo).decode
_decode_rows = msgspec.json.Decoder(list[list[float]]).decode


class HistoryStore:
    """Write samples with their history and publish them; read history back."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self.tiers: tuple[Tier, ...] = parse_tiers(settings.history_tiers)
        self._prefix = settings.key_prefix
        self._host = AtomicScript(redis, settings, HOST_LUA)
        self._source = AtomicScript(redis, settings, SOURCE_LUA)
        self._range = redis.register_script(RANGE_LUA)

    # --- keys ----------------------------------------------------------------------------

    def series_key(self, source: str) -> str:
        return f"{self._prefix}:metrics:series:{source}"

    def sources_key(self) -> str:
        return f"{self._prefix}:metrics:sources"

    def tier_key(self, tier: Tier, source: str, series: str) -> str:
        return f"{self._prefix}:hist:{tier.name}:{source}|{series}"

    # --- writing -------------------------------------------------------------------------

    def _history_args(
        self, source: str, when: float, infos: Sequence[tuple[str, bytes, float]]
    ) -> tuple[list[str], list[Any]]:
        keys = [self.series_key(source), self.sources_key()]
        args: list[Any] = [source, repr(when), self.settings.metrics_series_cap, len(self.tiers)]
        for tier in self.tiers:
            args += [int(tier.step * 1000), int(tier.keep * 1000)]
        args.append(len(infos))
        for sid, info, value in infos:
            keys += [self.tier_key(tier, source, sid) for tier in self.tiers]
            args += [sid, info, repr(value)]
        return keys, args

    def _refused(self, source: str, reply: Any) -> None:
        if not reply[0]:
            have, new = int(reply[1]), int(reply[2])
            cap = self.settings.metrics_series_cap
            raise SeriesCapReached(
                f"source {source!r} has {have} series; {new} new would pass the cap of {cap}"
                " (RELAYCAST_METRICS_SERIES_CAP); nothing of this batch was stored"
            )

    async def record_host(
        self, host: str, snapshot: bytes, series: Sequence[tuple[str, str, float]], when: float
    ) -> Position:
        """Store a host snapshot as the host's newest, its numbers (``(metric, unit,
        value)``) in history, and publish it on ``metrics.host.<host>``, in one step.

        Raises:
            InvalidSample: a number is not finite or beyond +-``MAX_VALUE``; nothing was
                stored (as for a service's batch).
            SeriesCapReached: the snapshot has more numbers than the cap allows.
            ValueError: the snapshot is over ``max_payload_bytes``.
            BrokerUnavailable: Redis cannot be reached.
        """
        for metric, _, value in series:
            check_value(metric, value)
        infos = [
            (m, _encode(SeriesInfo(metric=m, unit=u, value=v, time=when)), v) for m, u, v in series
        ]
        keys, args = self._history_args(host, when, infos)
        keys.append(hosts_key(self._prefix))
        reply = await self._host.run(keys, args, [(host_channel(host), snapshot)])
        self._refused(host, reply)
        return Position(int(reply[1]), reply[2].decode())

    async def record(
        self, source: str, samples: Sequence[Sample], interval: float, now: float | None = None
    ) -> tuple[Position, int]:
        """Store a service's batch: gauges as they are, counters as increments over
        ``interval`` seconds (so as a rate per second); publish the source's every series
        on ``metrics.source.<source>`` (a :class:`~shared.state.metrics.SourceSnapshot`).
        Returns the position and the series count written.

        Raises:
            InvalidSample: a bad name or value, or past a cap; nothing was stored.
            BrokerUnavailable: Redis cannot be reached.
        """
        check_source(source)
        if not samples:
            raise InvalidSample("the batch has no samples")
        if len(samples) > MAX_BATCH:
            raise InvalidSample(f"the batch has {len(samples)} samples; at most {MAX_BATCH}")
        if not (math.isfinite(interval) and 0 < interval <= 86400):
            raise InvalidSample(f"interval {interval!r}: seconds in (0, 86400]")
        now = time.time() if now is None else now
        merged: dict[str, SeriesInfo] = {}
        for sample in samples:
            sample.check()
            sid = series_id(sample.metric, sample.entity)
            value = sample.value / interval if sample.kind == "counter" else sample.value
            seen = merged.get(sid)
            if seen is not None and seen.kind != sample.kind:
                raise InvalidSample(f"{sid}: sent as both gauge and counter in one batch")
            if seen is not None and sample.kind == "counter":
                value += seen.value  # two increments of one counter add up
            merged[sid] = SeriesInfo(
                metric=sample.metric,
                entity=sample.entity,
                kind=sample.kind,
                unit=sample.unit or (seen.unit if seen else ""),
                value=value,
                time=now,
            )
        for sid, info in merged.items():
            check_value(sid, info.value)  # a rate or a sum may pass it
        infos = [(sid, _encode(info), info.value) for sid, info in merged.items()]
        keys, args = self._history_args(source, now, infos)
        head = _encode({"source": source, "time": now, "interval": interval})[:-1]
        args.append(head + b',"series":[')
        reply = await self._source.run(keys, args, [(source_channel(source), b"")], now)
        self._refused(source, reply)
        return Position(int(reply[1]), reply[2].decode()), len(infos)

    # --- reading -------------------------------------------------------------------------

    async def sources(self) -> list[SourceInfo]:
        """Every source with history, by name: hosts (their snapshots are in the hosts
        hash) and services."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrange(self.sources_key(), 0, -1)
        pipe.hkeys(hosts_key(self._prefix))
        names, hosts = await _call(pipe.execute())
        return [
            SourceInfo(name=name, kind="host" if name.encode() in set(hosts) else "service")
            for name in sorted(n.decode() for n in names)
        ]

    async def series(self, source: str) -> list[SeriesInfo]:
        """Every series of ``source`` with its newest value.

        Raises:
            UnknownSeries: no history of ``source``.
        """
        check_source(source)
        raw: dict[bytes, bytes] = await _call(self.redis.hgetall(self.series_key(source)))
        if not raw:
            raise UnknownSeries(f"no metrics from source {source!r}")
        return sorted((_decode_info(v) for v in raw.values()), key=lambda s: (s.metric, s.entity))

    async def query(
        self,
        source: str,
        metric: str,
        *,
        entity: str = "",
        start: float | None = None,
        end: float | None = None,
        max_points: int | None = None,
        step: float | None = None,
    ) -> History:
        """Points of one series from ``start`` to ``end`` (default: the last hour).

        The tier is the finest that still keeps ``start`` and has at most ``max_points``
        points in the range (default and limit: ``history_max_points``); ``step`` asks
        for at least that many seconds per point.

        Raises:
            InvalidSample: a bad name, or a range or limit that makes no sense.
            UnknownSeries: no such source, or no such series of it.
            RangeTooLarge: even the coarsest tier has more than ``max_points`` points.
            BrokerUnavailable: Redis cannot be reached.
        """
        check_source(source)
        check_metric(metric)
        if entity:
            check_entity(entity)
        limit = self.settings.history_max_points
        max_points = limit if max_points is None else max_points
        if not 1 <= max_points <= limit:
            raise InvalidSample(f"max_points must be in 1-{limit}")
        now = time.time()
        end = now if end is None else end
        start = end - 3600 if start is None else start
        if not (math.isfinite(start) and math.isfinite(end) and start <= end):
            raise InvalidSample("start and end must be finite times with start <= end")
        sid = series_id(metric, entity)
        lo, hi = int(start * 1000), int(end * 1000)
        tiers = [t for t in self.tiers if step is None or t.step >= step] or [self.tiers[-1]]
        # a little slack: "the last hour" asked a moment ago is still the raw tier's
        tiers = [t for t in tiers if start >= now - t.keep * 1.02 or t is tiers[-1]]
        keys = [self.series_key(source)] + [self.tier_key(t, source, sid) for t in tiers]
        expected = [int((hi - lo) / (t.step * 1000)) + 1 if t.step else -1 for t in tiers]
        reply = await _call(self._range(keys=keys, args=[sid, lo, hi, max_points, *expected]))
        if reply[0] == 0:
            known = reply[1]
            what = f"no series {sid!r} of source {source!r}" if known else f"no source {source!r}"
            raise UnknownSeries(what)
        if reply[0] == 2:
            raise RangeTooLarge(
                f"{end - start:g} s is more than {max_points} points even at the coarsest step"
                f" ({tiers[-1].step:g} s): ask for a shorter range"
            )
        info, chosen, joined = _decode_info(reply[1]), tiers[int(reply[2]) - 1], reply[3]
        rows = _decode_rows(joined) if joined != b"[[]]" else []
        return History(
            source=source,
            metric=metric,
            entity=entity,
            unit=info.unit,
            kind=info.kind,
            step=chosen.step,
            start=start,
            end=end,
            points=_points(rows, bool(chosen.step)),
        )


def _points(rows: list[list[float]], bucket: bool) -> list[tuple[float, float, float, float]]:
    if not bucket:
        return [(row[0] / 1000, row[1], row[1], row[1]) for row in rows]
    return [(ms / 1000, total / count, lo, hi) for ms, lo, hi, total, count in rows]


async def _call(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        raise BrokerUnavailable(f"redis: {exc}") from exc
