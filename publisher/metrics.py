"""``relaycast metrics``: sample this host with psutil and publish it while someone listens.

Channels (both latest-value: a subscriber gets the newest value at once, and a slow one
gets the newest value rather than a backlog):

- ``metrics.host.<host>``: this host's :class:`~shared.state.metrics.HostSnapshot`, every
  ``metrics_interval``.
- ``metrics.fleet``: a :class:`~shared.state.metrics.FleetSnapshot`, one
  :class:`~shared.state.metrics.HostSummary` per host, published by one metrics process
  of the fleet at a time (whoever takes the turn in Redis).

Every ``metrics_interval`` the publisher asks Redis whether anyone listens: a gateway
subscribed to its host channel or the fleet channel (``PUBSUB NUMSUB``), or an alerts
process (which keeps ``rc:metrics:demand`` alive). While nobody does, it samples only
every ``metrics_idle_interval`` (0: not at all), so it resumes within one interval of a
subscriber arriving. Run one per host; the host name is ``metrics_host`` or the
machine's name.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from publisher.health import Health, run_with_health
from publisher.publish import AsyncPublisher
from publisher.rounds import run_rounds
from publisher.sampler import Sampler
from shared.broker import BrokerUnavailable
from shared.broker.redis_url import async_command_client, parse_redis_url
from shared.protocol import Position
from shared.settings import Settings
from shared.state.history import HistoryStore
from shared.state.hosts import (
    FLEET_CHANNEL,
    demand_key,
    fleet_lock_key,
    host_channel,
    host_name,
    hosts_key,
    read_hosts,
)
from shared.state.metrics import FleetSnapshot, HostSnapshot, HostSummary
from shared.state.series import InvalidSample, flatten, unit_of

__all__ = ["FleetSnapshot", "HostSummary", "MetricsPublisher", "run_metrics", "summarise"]

log = logging.getLogger("relaycast.metrics")

# Hosts silent for this long drop out of the fleet (and of rc:metrics:hosts).
FORGET_AFTER = 86400.0


# --- fleet ------------------------------------------------------------------------------------


def summarise(snapshots: Mapping[str, bytes], now: float) -> FleetSnapshot:
    """The fleet view of the newest snapshot of each host (unreadable ones are skipped)."""
    hosts: list[HostSummary] = []
    for host in sorted(snapshots):
        try:
            raw = msgspec.json.decode(snapshots[host])
        except msgspec.DecodeError:
            continue
        if not isinstance(raw, dict) or not isinstance(raw.get("time"), int | float):
            continue

        def get(*path: str, snapshot: dict[str, Any] = raw) -> Any:
            value: Any = snapshot
            for key in path:
                value = value.get(key) if isinstance(value, dict) else None
            return value if isinstance(value, int | float) else None

        interval = get("interval") or 60.0
        hosts.append(
            HostSummary(
                host=host,
                time=raw["time"],
                stale=now - raw["time"] > 3 * interval,
                cpu=get("cpu", "percent"),
                memory=get("memory", "percent"),
                swap=get("swap", "percent"),
                disk=get("disk", "percent"),
                load_1m=get("load", "1m"),
                net_recv_bytes_per_s=get("net", "recv_bytes_per_s"),
                net_sent_bytes_per_s=get("net", "sent_bytes_per_s"),
                processes=get("processes"),
                uptime=get("uptime"),
            )
        )
    return FleetSnapshot(time=now, hosts=hosts)


# --- publishing --------------------------------------------------------------------------------


class MetricsPublisher:
    """Samples one host and publishes it; :meth:`run` is the ``relaycast metrics`` loop.

    ``sampler`` replaces psutil: any callable ``(host, interval) -> HostSnapshot``.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        host: str | None = None,
        sampler: Callable[[str, float], HostSnapshot] | None = None,
    ) -> None:
        self.settings = settings
        self.host = host_name(host or settings.metrics_host or socket.gethostname())
        self.channel = host_channel(self.host)
        self._sampler = sampler or Sampler()
        self._publisher = AsyncPublisher(settings=settings)
        target = parse_redis_url(settings.redis_url)
        # Sharded subscribers (Redis Cluster) are not counted by PUBSUB NUMSUB: there the
        # publisher cannot tell who listens, and samples at full rate.
        self._counts_listeners = target.kind != "cluster"
        self._redis = async_command_client(target, socket_connect_timeout=3, socket_timeout=5)
        # History is written in the publish's own script, which needs one server (or
        # Sentinel's primary); on Redis Cluster the snapshot is published without history.
        self.history: HistoryStore | None = None
        if isinstance(self._redis, aioredis.Redis):
            self.history = HistoryStore(self._redis, settings)
        prefix = settings.key_prefix
        self._pubsub_names = (f"{prefix}:{{{self.channel}}}", f"{prefix}:{{{FLEET_CHANNEL}}}")
        self._fleet_token = f"{self.host}:{os.getpid()}"
        self.samples = 0

    async def listeners(self) -> tuple[bool, bool]:
        """(anyone wants this host's metrics, anyone subscribes to the fleet channel)."""
        if not self._counts_listeners:
            return True, True
        pipe = self._redis.pipeline(transaction=False)
        pipe.pubsub_numsub(*self._pubsub_names)
        pipe.exists(demand_key(self.settings.key_prefix))
        try:
            numsub, demand = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        host_subs, fleet_subs = (int(count) for _, count in numsub)
        return bool(host_subs or fleet_subs or demand), bool(fleet_subs)

    async def sample(self, interval: float) -> HostSnapshot:
        """One sample (psutil runs in a thread: a slow mount must not stall the loop)."""
        snapshot = await asyncio.to_thread(self._sampler, self.host, interval)
        self.samples += 1
        return snapshot

    async def publish(self, snapshot: HostSnapshot | Mapping[str, Any]) -> Position:
        """Store ``snapshot`` as this host's newest and publish it on its channel.

        A mapping is published as it is (with ``host``, ``time`` and ``interval`` added
        when missing): a way to publish metrics of your own, which alert rules can watch.
        Every number in it (lists aside) goes into history in the same step.

        Raises:
            InvalidSample: a number is beyond what history keeps, or past the series cap;
                nothing was stored or published.
            BrokerUnavailable: Redis cannot be reached.
        """
        if isinstance(snapshot, Mapping):
            snapshot = {
                "host": self.host,
                "time": time.time(),
                "interval": self.settings.metrics_interval,
                **snapshot,
            }
        data = msgspec.json.encode(snapshot)
        if self.history is not None:
            decoded = msgspec.json.decode(data)
            series = [(m, unit_of(m), v) for m, v in flatten(decoded)]
            when = float(decoded.get("time") or time.time())
            return await self.history.record_host(self.host, data, series, when)
        try:
            await self._redis.hset(hosts_key(self.settings.key_prefix), self.host, data)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        return await self._publisher.publish(self.channel, msgspec.Raw(data))

    async def publish_fleet(self) -> bool:
        """Publish ``metrics.fleet`` if it is this process' turn (one per interval, fleet-wide)."""
        prefix = self.settings.key_prefix
        turn_ms = max(1, int(self.settings.metrics_interval * 900))
        try:
            mine = await self._redis.set(
                fleet_lock_key(prefix), self._fleet_token, nx=True, px=turn_ms
            )
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        if not mine:
            return False
        snapshots = await read_hosts(self._redis, prefix)
        now = time.time()
        fleet = summarise(snapshots, now)
        gone = [h.host for h in fleet.hosts if now - h.time > FORGET_AFTER]
        if gone:
            fleet.hosts = [h for h in fleet.hosts if h.host not in gone]
            await self._redis.hdel(hosts_key(prefix), *gone)
        await self._publisher.publish(FLEET_CHANNEL, fleet)
        return True

    async def run(self, stop: asyncio.Event | None = None, health: Health | None = None) -> None:
        """Sample and publish until ``stop`` is set: at full rate while anyone listens."""
        interval = self.settings.metrics_interval
        idle = self.settings.metrics_idle_interval
        await asyncio.sleep(min(0.5, interval))  # let the first CPU and I/O rates settle
        last_sample = -float("inf")
        first = True

        async def one_round(started: float) -> None:
            nonlocal last_sample, first
            wanted, fleet = await self.listeners()
            every = interval if wanted else idle
            if first or (every and started - last_sample >= every - interval / 10):
                try:
                    await self.publish(await self.sample(every or 3600.0))
                except InvalidSample as exc:  # nothing stored; the next sample may do
                    log.warning("snapshot of %s refused: %s", self.host, exc)
                last_sample, first = started, False
            if fleet:
                await self.publish_fleet()

        doing = f"publish {self.channel}"
        await run_rounds(
            one_round, interval, stop or asyncio.Event(), log, doing=doing, health=health
        )

    async def close(self) -> None:
        await self._publisher.close()
        await self._redis.aclose()


async def run_metrics(settings: Settings, stop: asyncio.Event | None = None) -> None:
    """The ``relaycast metrics`` process."""
    publisher = MetricsPublisher(settings)
    log.info(
        "publishing %s every %.1fs while anyone listens (else every %s)",
        publisher.channel,
        settings.metrics_interval,
        f"{settings.metrics_idle_interval:.0f}s" if settings.metrics_idle_interval else "never",
    )
    health = Health(settings.metrics_interval, f"publish {publisher.channel}")
    await run_with_health(publisher, health, settings.health_port, stop)
