"""What every Redis broker shares: the lifecycle of its pub/sub links around one store.

:class:`RedisBrokerBase` runs three tasks from :meth:`~RedisBrokerBase.start` to
:meth:`~RedisBrokerBase.close`:

- the supervisor: connect (:meth:`~RedisBrokerBase._connect`), report up, wait until
  something breaks (:meth:`~RedisBrokerBase._disrupted`), report down, and connect again
  after a backoff with full jitter, cut short as soon as a Cluster slot map or the
  sentinels name other servers (:meth:`~RedisBrokerBase._pause`);
- the watchdog (:func:`~shared.broker.redis_probe.watch`) around the subclass' probe tick;
- the pool trimmer: every :data:`IDLE_SECONDS` the store's idle command connections close,
  so a burst of history reads does not leave dozens of Redis clients open for good.

Subscribing (one waiter per channel until the server confirms), delivering a message to
the handler, and publish/history/epochs (those of :class:`~shared.broker.redis_store.RedisStore`,
the command side it extends) are the same for every topology; a subclass says how it sends
(S)SUBSCRIBE and how it links to its servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import msgspec
from redis.exceptions import RedisError

from shared.backoff import backoff_delay
from shared.broker.base import BrokerEventHandler, BrokerUnavailable
from shared.broker.redis_probe import watch
from shared.broker.redis_scripts import PUBLISH_LUA
from shared.broker.redis_store import RedisStore
from shared.broker.redis_url import AsyncCommandClient
from shared.protocol import decode_publication

__all__ = ["DEFAULT_OPTIONS", "IDLE_SECONDS", "TOPOLOGY_POLL", "LinkOptions", "RedisBrokerBase"]

log = logging.getLogger("relaycast.broker")

TOPOLOGY_POLL = 0.2
"""Seconds between questions to the topology while waiting to reconnect."""

IDLE_SECONDS = 30.0
"""How often idle command connections are closed (they reopen on the next command)."""


class LinkOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a Redis broker names its keys and watches its pub/sub links."""

    prefix: str = "rc"
    """Prefix of every key and pub/sub channel."""
    name: str = "relaycast"
    """Names this process' probe channel (the gateway id)."""
    probe_interval: float = 5.0
    probe_timeout: float = 10.0
    connect_timeout: float = 3.0


DEFAULT_OPTIONS = LinkOptions()


class RedisBrokerBase(RedisStore):
    """The shared half of the Redis brokers: the store's publish, history and epochs,
    and the pub/sub lifecycle around them; subclasses fill in the hooks below."""

    label = "redis"
    """How logs name the topology."""

    def __init__(
        self, client: AsyncCommandClient, options: LinkOptions, publish_lua: str = PUBLISH_LUA
    ) -> None:
        super().__init__(client, options.prefix, publish_lua)
        self._probe_interval = options.probe_interval
        self._probe_timeout = options.probe_timeout
        self._connect_timeout = options.connect_timeout

        self._handler: BrokerEventHandler | None = None
        self._channels: set[str] = set()
        self._names: dict[bytes, str] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._up = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def _pubsub_name(self, channel: str) -> bytes:
        return f"{self._prefix}:{{{channel}}}".encode()

    # --- hooks -----------------------------------------------------------------------

    async def _connect(self) -> None:
        """Link to the servers and subscribe every wanted channel; return once confirmed.

        Raises:
            OSError, TimeoutError, RedisError, BrokerUnavailable: not connected; retried.
        """
        raise NotImplementedError

    async def _disrupted(self) -> str:
        """Wait until the links break or go out of step; say why."""
        raise NotImplementedError

    def _send_subscribe(self, name: bytes) -> bool:
        """Send a (S)SUBSCRIBE of ``name``; True when it is confirmed already.

        Raises:
            BrokerUnavailable: no link can carry it right now.
        """
        raise NotImplementedError

    def _send_unsubscribe(self, name: bytes) -> None:
        raise NotImplementedError

    def _drop_links(self) -> None:
        """Close every pub/sub link at once (the broker is closing)."""
        raise NotImplementedError

    async def _probe_tick(self, now: float) -> None:
        """One watchdog round: judge each link's probe and send the next ones."""
        raise NotImplementedError

    def _forgive_probes(self) -> None:
        """Judge no probe in flight (the loop was late, or the links are new)."""
        raise NotImplementedError

    def _connected_summary(self) -> str:
        return f"{len(self._channels)} channels subscribed"

    async def _moved(self) -> bool | None:
        """Whether the servers to link to changed since the last connect: True for a
        Cluster slot map naming other primaries, or sentinels naming another primary.
        None: this topology cannot tell (one server), so waiting is all there is.

        Raises:
            OSError, TimeoutError, RedisError, BrokerUnavailable: no answer this time.
        """
        return None

    async def _pause(self, delay: float) -> None:
        """Wait ``delay`` seconds before connecting again, but only until the topology
        names other servers.

        After a primary fails, a replica is promoted in about the failure-detection time;
        a backoff that only ran out seconds later would stretch the pause in delivery by
        as much. So while waiting, ask every :data:`TOPOLOGY_POLL` seconds and reconnect
        as soon as the answer changed.
        """
        loop = asyncio.get_running_loop()
        until = loop.time() + delay
        while (left := until - loop.time()) > TOPOLOGY_POLL:
            await asyncio.sleep(TOPOLOGY_POLL)
            try:
                async with asyncio.timeout(max(0.0, left - TOPOLOGY_POLL)):
                    moved = await self._moved()
            except (OSError, TimeoutError, RedisError, BrokerUnavailable):
                continue
            if moved is None:
                break
            if moved:
                log.info("%s: the topology names other servers; reconnecting now", self.label)
                return
        await asyncio.sleep(max(0.0, until - loop.time()))

    # --- lifecycle -------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._tasks = [
            asyncio.create_task(self._supervise(), name=f"relaycast-{self.label}-pubsub"),
            asyncio.create_task(self._watch(), name=f"relaycast-{self.label}-probe"),
            asyncio.create_task(self._trim_pool(), name=f"relaycast-{self.label}-pool"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drop_links()
        await self.disconnect()

    # --- subscriptions ---------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        name = self._pubsub_name(channel)
        self._channels.add(channel)
        self._names[name] = channel
        if not self._up:
            raise BrokerUnavailable(f"{self.label} pub/sub is reconnecting")
        waiter = asyncio.get_running_loop().create_future()
        self._pending[channel] = waiter
        try:
            if self._send_subscribe(name):
                waiter.set_result(None)
            async with asyncio.timeout(self._connect_timeout + 2):
                await waiter
        except TimeoutError:
            raise BrokerUnavailable(f"{self.label} did not confirm a subscribe in time") from None
        finally:
            if self._pending.get(channel) is waiter:
                del self._pending[channel]

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        name = self._pubsub_name(channel)
        self._names.pop(name, None)
        self._send_unsubscribe(name)

    def _confirmed(self, name: bytes) -> None:
        """The server confirmed a subscribe of ``name``: wake its waiter."""
        channel = self._names.get(name)
        waiter = self._pending.get(channel) if channel is not None else None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _deliver(self, name: bytes, payload: bytes) -> bool:
        """Hand a message on ``name`` to the handler; False if no channel has that name."""
        channel = self._names.get(name)
        if channel is None:
            return False
        if self._handler is not None:
            try:
                publication = decode_publication(payload)
            except msgspec.DecodeError:
                log.warning("dropped a malformed publication on %s", channel)
                return True
            self._handler.on_publication(channel, publication)
        return True

    # --- the tasks -------------------------------------------------------------------

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                await self._connect()
            except (OSError, TimeoutError, RedisError, BrokerUnavailable) as exc:
                delay = backoff_delay(attempt)
                attempt += 1
                log.warning(
                    "%s pub/sub not connected (%s); retry %d within %.2fs",
                    self.label,
                    exc or type(exc).__name__,
                    attempt,
                    delay,
                )
                await self._pause(delay)
                continue
            attempt = 0
            self._up = True
            self._forgive_probes()
            log.info("%s pub/sub connected; %s", self.label, self._connected_summary())
            if self._handler is not None:
                self._handler.on_broker_state(True)
            reason = await self._disrupted()
            self._up = False
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(BrokerUnavailable(f"{self.label} pub/sub {reason}"))
            if self._closing:
                return
            log.warning("%s pub/sub %s; reconnecting", self.label, reason)
            if self._handler is not None:
                self._handler.on_broker_state(False)

    async def _watch(self) -> None:
        await watch(self._probe_interval, self._probe_tick, self._forgive_probes)

    async def _trim_pool(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SECONDS)
            await self.release_idle()
