"""``relaycast notify``: deliver queued notifications to their projects' sinks.

The notification store puts one entry per (notification, sink) on a Redis stream; this
process reads it as one consumer of a group (run several: each entry goes to one), and
delivers each entry in a task of its own, so a sink that hangs holds only its own
deliveries. Each sink has at most :data:`PER_SINK` attempts in flight, and this process at
most :data:`IN_FLIGHT` deliveries; an attempt is bounded by ``notify_timeout``. A failed
attempt is retried after ``notify_retry_delay``, doubling (at most a minute), until
``max_attempts``; every attempt's outcome is written to the delivery's record, which
``GET /api/notifications/projects/<p>/deliveries`` returns. An entry is acknowledged once
its delivery has succeeded or failed for good; entries a stopped process left unfinished
are claimed by the others after :data:`RECLAIM_IDLE` seconds.

With ``health_port`` set, the process serves ``/healthz`` and ``/readyz`` (a round is one
read of the stream, at least every second) and its counters on ``/metrics``: deliveries
made, attempts to be retried, and deliveries given up, per sink kind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections import defaultdict
from typing import Any, get_args

import msgspec
from prometheus_client import CollectorRegistry, Counter
from redis.exceptions import RedisError, ResponseError

from publisher.health import Health, serve_health
from publisher.notify_sinks import SinkFailure, deliver
from publisher.publish import AsyncPublisher
from shared.broker import BrokerUnavailable
from shared.settings import Settings
from shared.state.notification_store import NotificationStore, queue_key
from shared.state.notifications import Delivery, Notification, Sink, SinkKind

__all__ = ["GROUP", "REGISTRY", "Notifier", "run_notifier"]

log = logging.getLogger("relaycast.notify")

GROUP = "notifiers"
IN_FLIGHT = 1000
PER_SINK = 4
RECLAIM_IDLE = 900.0
"""Seconds an entry may stay unacknowledged before another notifier takes it over (longer
than the retries of one delivery take)."""

REGISTRY = CollectorRegistry(auto_describe=True)


def _per_kind(name: str, documentation: str) -> Counter:
    counter = Counter(name, documentation, ["kind"], registry=REGISTRY)
    for kind in get_args(SinkKind):  # every kind from 0, so a rate has a start
        counter.labels(kind)
    return counter


DELIVERED = _per_kind("relaycast_notify_delivered", "Deliveries that reached their sink")
RETRIED = _per_kind("relaycast_notify_retried", "Failed attempts that will be tried again")
GIVEN_UP = _per_kind(
    "relaycast_notify_given_up",
    "Deliveries recorded as failed (out of attempts, or not worth retrying)",
)

_decode_note = msgspec.json.Decoder(Notification).decode
_decode_sink = msgspec.json.Decoder(Sink).decode
_decode_delivery = msgspec.json.Decoder(Delivery).decode


class Notifier:
    """One consumer of the delivery stream."""

    def __init__(self, publisher: AsyncPublisher, health: Health | None = None) -> None:
        self.settings: Settings = publisher.settings
        self.health = health
        self._last_claim = 0.0
        self.redis = publisher.redis
        self.store = NotificationStore(self.redis, self.settings)
        self.queue = queue_key(self.settings)
        self.consumer = f"{socket.gethostname()}:{os.getpid()}"
        self.tasks: set[asyncio.Task[None]] = set()
        self.limits: defaultdict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(PER_SINK)
        )

    async def run(self) -> None:
        """Read and deliver until cancelled; a lost Redis is logged and retried."""
        try:
            await self._group()
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
        log.info("notify: delivering from %s as %s", self.queue, self.consumer)
        while True:
            try:
                await self._round()
                ok = True
            except (RedisError, OSError) as exc:
                ok = False
                log.warning("notify: redis: %s; retrying in 1 s", exc)
                await asyncio.sleep(1)
                if "NOGROUP" in str(exc):  # the stream was deleted: make it again
                    with contextlib.suppress(RedisError, OSError):
                        await self._group()
            if self.health is not None:
                self.health.round_done(ok)

    async def _round(self) -> None:
        """Start the deliveries of one read of the stream (none while :data:`IN_FLIGHT`
        are under way: then wait, at most a second, for one to end)."""
        if len(self.tasks) >= IN_FLIGHT:
            await asyncio.wait(self.tasks, timeout=1, return_when=asyncio.FIRST_COMPLETED)
            return
        if time.monotonic() - self._last_claim > 60:
            self._last_claim = time.monotonic()
            await self._reclaim()
        batch: Any = await self.redis.xreadgroup(
            GROUP, self.consumer, {self.queue: ">"}, count=100, block=1000
        )
        for _, entries in batch or ():
            for entry_id, fields in entries:
                self._start(entry_id, fields)

    async def _group(self) -> None:
        try:
            await self.redis.xgroup_create(self.queue, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _reclaim(self) -> None:
        idle = int(RECLAIM_IDLE * 1000)
        reply = await self.redis.xautoclaim(self.queue, GROUP, self.consumer, idle, count=100)
        for entry_id, fields in reply[1]:
            if fields:
                self._start(entry_id, fields)

    def _start(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        task = asyncio.create_task(self._deliver(entry_id, fields))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        try:
            raw = fields[b"n"]
            note, sink = _decode_note(raw), _decode_sink(fields[b"s"])
            delivery = _decode_delivery(fields[b"d"])
        except (KeyError, msgspec.DecodeError) as exc:
            log.warning("notify: dropping malformed entry %s: %s", entry_id, exc)
            await self._ack(entry_id)
            return
        limit = sink.max_attempts or self.settings.notify_max_attempts
        delay = self.settings.notify_retry_delay
        while True:
            async with self.limits[f"{delivery.project}/{sink.name}"]:
                try:
                    await deliver(sink, note, raw, self.settings, delivery.id)
                    failure = None
                except SinkFailure as exc:
                    failure = exc
            delivery.attempts += 1
            delivery.updated_at = time.time()
            if failure is None:
                delivery.status, delivery.error = "delivered", None
                DELIVERED.labels(sink.kind).inc()
            else:
                delivery.error = str(failure)[:500]
                done = not failure.retry or delivery.attempts >= limit
                delivery.status = "failed" if done else "retrying"
                (GIVEN_UP if done else RETRIED).labels(sink.kind).inc()
                if done:
                    log.warning(
                        "notify: %s to sink %s/%s failed after %d attempts: %s",
                        delivery.id, delivery.project, sink.name, delivery.attempts, failure,
                    )  # fmt: skip
            await self._record(delivery)
            if delivery.status in ("delivered", "failed"):
                await self._ack(entry_id)
                return
            await asyncio.sleep(min(60.0, delay) * random.uniform(0.8, 1.2))
            delay *= 2

    async def _record(self, delivery: Delivery) -> None:
        for _ in range(30):
            try:
                await self.store.record(delivery)
                return
            except Exception as exc:  # BrokerUnavailable: keep the outcome, try again
                log.warning("notify: cannot record %s: %s", delivery.id, exc)
                await asyncio.sleep(1)

    async def _ack(self, entry_id: Any) -> None:
        try:
            await self.redis.xack(self.queue, GROUP, entry_id)
        except (RedisError, OSError) as exc:  # claimed again later: delivered twice at worst
            log.warning("notify: cannot acknowledge %s: %s", entry_id, exc)


async def run_notifier(settings: Settings) -> None:
    """``relaycast notify``: deliver until stopped."""
    health = Health(1.0, "read the delivery queue")
    port = settings.health_port
    server = await serve_health(health, port, registry=REGISTRY) if port else None
    try:
        async with AsyncPublisher(settings=settings) as publisher:
            notifier = Notifier(publisher, health)
            try:
                await notifier.run()
            finally:
                for task in notifier.tasks:
                    task.cancel()
    finally:
        if server is not None:
            server.close()
