"""Metrics of your own: gauges and counters of a service, sent in batches.

A service names itself as a *source* (``billing``, ``worker-3``) and reports figures,
each optionally per *entity* (an account, a queue). :meth:`ServiceMetrics.flush` sends
what was reported since the previous flush as one batch: the newest value of each gauge,
and each counter's increments, which become a rate per second over the time since the
previous flush. The batch lands in history and on ``metrics.source.<source>`` (a
latest-value channel carrying every series of the source) in one step, so the dashboard
and alert rules see it at once.

A bad name or a value that is not a finite number raises
:class:`~shared.state.series.InvalidSample` when reported, not later at the flush.
"""

from __future__ import annotations

import re
import time
from typing import Literal

import redis.asyncio as aioredis

from publisher.publish import AsyncClosing
from shared.broker.redis_url import async_command_client, parse_redis_url
from shared.protocol import Position
from shared.settings import Settings
from shared.state.alerts import Alert, AlertStore, UnknownAlert
from shared.state.history import HistoryStore
from shared.state.series import InvalidSample, Sample, check_entity, check_source, series_id

__all__ = ["InvalidSample", "ServiceMetrics"]

_RULE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ServiceMetrics(AsyncClosing):
    """Gauges and counters of one ``source``, flushed to Redis as a batch.

    Use as ``async with ServiceMetrics(url, "billing") as metrics:``; leaving the block
    flushes what is left.
    """

    def __init__(
        self, redis_url: str | None = None, source: str = "", *, settings: Settings | None = None
    ) -> None:
        overrides = {"redis_url": redis_url} if redis_url else {}
        self.settings = settings or Settings.load(overrides)
        self.source = check_source(source)
        client = async_command_client(
            parse_redis_url(self.settings.redis_url), socket_connect_timeout=3, socket_timeout=5
        )
        if not isinstance(client, aioredis.Redis):
            raise TypeError("metrics history needs one Redis server or Sentinel, not a Cluster")
        self._redis = client
        self.store = HistoryStore(client, self.settings)
        self.alerts = AlertStore(client, self.settings)
        self._gauges: dict[str, Sample] = {}
        self._counters: dict[str, Sample] = {}
        self._since = time.monotonic()

    def gauge(self, metric: str, value: float, *, entity: str = "", unit: str = "") -> None:
        """Set a level (queue depth, connections); the newest value before a flush counts."""
        sample = Sample(metric=metric, value=value, entity=entity, unit=unit).check()
        self._gauges[series_id(metric, entity)] = sample

    def count(self, metric: str, n: float = 1, *, entity: str = "", unit: str = "") -> None:
        """Add ``n`` to a counter (messages handled, errors); sent as a rate per second."""
        sample = Sample(metric=metric, value=n, kind="counter", entity=entity, unit=unit).check()
        sid = series_id(metric, entity)
        if sid in self._counters:
            sample.value += self._counters[sid].value
        self._counters[sid] = sample

    async def flush(self) -> Position | None:
        """Send everything reported since the last flush as one batch (None: nothing to send).

        Raises:
            InvalidSample: past the cap of series per source; the batch is dropped.
            BrokerUnavailable: Redis cannot be reached; the batch is kept for the next try.
        """
        if not self._gauges and not self._counters:
            return None
        now = time.monotonic()
        interval = max(now - self._since, 0.001)
        batch = [*self._gauges.values(), *self._counters.values()]
        try:
            position, _ = await self.store.record(self.source, batch, interval)
        except InvalidSample:
            self._gauges.clear()
            self._counters.clear()
            raise
        self._gauges.clear()
        self._counters.clear()
        self._since = now
        return position

    async def raise_alert(
        self,
        rule: str,
        message: str,
        *,
        entity: str = "",
        severity: Literal["info", "warning", "critical"] = "warning",
        value: float = 0.0,
    ) -> bool:
        """Raise this source's own alert ``<rule>@<source>`` (``<source>[<entity>]`` per
        entity), as a rule would: once, however often called while active. False when it
        was active already, or silenced."""
        if not _RULE.fullmatch(rule):
            raise InvalidSample(f"rule {rule!r}: 1-64 of A-Z a-z 0-9 _ -")
        subject = f"{self.source}[{check_entity(entity)}]" if entity else self.source
        now = time.time()
        alert = Alert(
            id=f"{rule}@{subject}:{int(now * 1000)}",
            rule=rule,
            host=subject,
            severity=severity,
            message=message,
            metric="",
            op="",
            threshold=0.0,
            clear=0.0,
            value=value,
            raised_at=now,
        )
        raised, _ = await self.alerts.raise_alert(alert)
        return raised

    async def resolve_alert(self, rule: str, *, entity: str = "", note: str | None = None) -> bool:
        """Resolve this source's own alert; False when it was not active."""
        subject = f"{self.source}[{check_entity(entity)}]" if entity else self.source
        try:
            await self.alerts.resolve_fingerprint(f"{rule}@{subject}", note)
        except UnknownAlert:
            return False
        return True

    async def close(self) -> None:
        """Flush what is left and let go of Redis."""
        try:
            await self.flush()
        finally:
            await self._redis.aclose()
