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
from typing import Any

import msgspec
from redis.exceptions import RedisError, ResponseError

from publisher.notify_sinks import SinkFailure, deliver
from publisher.publish import AsyncPublisher
from shared.broker import BrokerUnavailable
from shared.settings import Settings
from shared.state.notification_store import NotificationStore, queue_key
from shared.state.notifications import Delivery, Notification, Sink

__all__ = ["GROUP", "Notifier", "run_notifier"]

log = logging.getLogger("relaycast.notify")

GROUP = "notifiers"
IN_FLIGHT = 1000
PER_SINK = 4
RECLAIM_IDLE = 900.0
"""Seconds an entry may stay unacknowledged before another notifier takes it over (longer
than the retries of one delivery take)."""

_decode_note = msgspec.json.Decoder(Notification).decode
_decode_sink = msgspec.json.Decoder(Sink).decode
_decode_delivery = msgspec.json.Decoder(Delivery).decode


class Notifier:
    """One consumer of the delivery stream."""

    def __init__(self, publisher: AsyncPublisher) -> None:
        self.settings: Settings = publisher.settings
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
        last_claim = 0.0
        while True:
            try:
                if len(self.tasks) >= IN_FLIGHT:
                    await asyncio.wait(self.tasks, return_when=asyncio.FIRST_COMPLETED)
                    continue
                if time.monotonic() - last_claim > 60:
                    last_claim = time.monotonic()
                    await self._reclaim()
                batch: Any = await self.redis.xreadgroup(
                    GROUP, self.consumer, {self.queue: ">"}, count=100, block=1000
                )
                for _, entries in batch or ():
                    for entry_id, fields in entries:
                        self._start(entry_id, fields)
            except (RedisError, OSError) as exc:
                log.warning("notify: redis: %s; retrying in 1 s", exc)
                await asyncio.sleep(1)
                if "NOGROUP" in str(exc):  # the stream was deleted: make it again
                    with contextlib.suppress(RedisError, OSError):
                        await self._group()

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
            else:
                delivery.error = str(failure)[:500]
                done = not failure.retry or delivery.attempts >= limit
                delivery.status = "failed" if done else "retrying"
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
    async with AsyncPublisher(settings=settings) as publisher:
        notifier = Notifier(publisher)
        try:
            await notifier.run()
        finally:
            for task in notifier.tasks:
                task.cancel()
