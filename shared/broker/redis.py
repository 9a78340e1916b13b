"""The Redis broker: Lua-atomic publish into a stream, one supervised pub/sub link.

Keys for channel ``C`` (prefix ``rc``), sharing the hash tag ``{C}``:

- ``rc:{C}:m``  hash: ``e`` epoch, ``o`` last offset
- ``rc:{C}:s``  stream: one entry per kept message, ID ``<offset>-0``, fields ``d`` data, ``t`` time
- ``rc:{C}``    pub/sub channel: msgpack :class:`~shared.broker.base.Publication`

The pub/sub link is one connection per process. A supervisor reconnects it with
exponential backoff and full jitter, resubscribes every channel, and reports each drop
and recovery to the handler. A watchdog publishes a probe to this process' own channel
and expects it back; a probe missing past its deadline (judged only when the watchdog
itself woke on time) means the link is silently dead, and the link is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import hiredis
import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.backoff import backoff_delay
from shared.broker.base import (
    Broker,
    BrokerEventHandler,
    BrokerUnavailable,
    History,
)
from shared.broker.redis_link import PubSubLink, Reply, open_link
from shared.broker.redis_probe import Probe, Verdict, watch
from shared.broker.redis_store import RedisStore
from shared.channels import ChannelOptions
from shared.protocol import Position, decode_publication

__all__ = ["RedisBroker"]

log = logging.getLogger("relaycast.broker")


class RedisBroker:
    """A :class:`~shared.broker.base.Broker` over one Redis server."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "rc",
        name: str = "relaycast",
        probe_interval: float = 5.0,
        probe_timeout: float = 10.0,
        connect_timeout: float = 3.0,
        client: aioredis.Redis | None = None,
    ) -> None:
        self._url = url
        self._prefix = prefix
        if client is None:
            client = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=connect_timeout,
                socket_timeout=5.0,
                socket_keepalive=True,
                health_check_interval=15,
            )
        self._client = client
        self._store = RedisStore(client, prefix)
        self._connect_timeout = connect_timeout
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._probe_name = f"{prefix}:probe:{name}".encode()
        self._probe = Probe()

        self._handler: BrokerEventHandler | None = None
        self._channels: set[str] = set()
        self._names: dict[bytes, str] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._link: PubSubLink | None = None
        self._up = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    # --- names -------------------------------------------------------------------------

    def _pubsub_name(self, channel: str) -> bytes:
        return f"{self._prefix}:{{{channel}}}".encode()

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._tasks = [
            asyncio.create_task(self._supervise(), name="relaycast-pubsub"),
            asyncio.create_task(self._watch(), name="relaycast-probe"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._link is not None:
            self._link.abort()
        await self._client.aclose()

    # --- subscriptions -------------------------------------------------------------------

    async def subscribe(self, channel: str) -> None:
        name = self._pubsub_name(channel)
        self._channels.add(channel)
        self._names[name] = channel
        link = self._link
        if link is None or not self._up:
            raise BrokerUnavailable("redis pub/sub is reconnecting")
        waiter = asyncio.get_running_loop().create_future()
        self._pending[channel] = waiter
        link.send("SUBSCRIBE", name)
        try:
            async with asyncio.timeout(self._connect_timeout + 2):
                await waiter
        except TimeoutError:
            raise BrokerUnavailable("redis did not confirm SUBSCRIBE in time") from None
        finally:
            if self._pending.get(channel) is waiter:
                del self._pending[channel]

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        name = self._pubsub_name(channel)
        self._names.pop(name, None)
        if self._link is not None:
            self._link.send("UNSUBSCRIBE", name)

    # --- publish and history (the store's) ------------------------------------------------

    async def publish(
        self, channel: str, data: bytes | str, options: ChannelOptions, time: float
    ) -> Position:
        return await self._store.publish(channel, data, options, time)

    async def history(
        self,
        channel: str,
        options: ChannelOptions,
        *,
        since: int | None = None,
        limit: int = 0,
    ) -> History:
        return await self._store.history(channel, options, since=since, limit=limit)

    async def renew_epoch(self, channel: str, options: ChannelOptions, stale: str) -> Position:
        return await self._store.renew_epoch(channel, options, stale)

    # --- the pub/sub link ----------------------------------------------------------------

    def _on_reply(self, reply: Reply) -> None:
        if type(reply) is not list:
            if isinstance(reply, hiredis.ReplyError):
                log.error("redis pub/sub error: %s; dropping the connection", reply)
                if self._link is not None:
                    self._link.abort()
            return
        kind = reply[0]
        if kind == b"message":
            name = reply[1]
            channel = self._names.get(name)
            if channel is not None and self._handler is not None:
                try:
                    publication = decode_publication(reply[2])
                except msgspec.DecodeError:
                    log.warning("dropped a malformed publication on %s", channel)
                    return
                self._handler.on_publication(channel, publication)
            elif name == self._probe_name:
                self._probe.saw(int(reply[2]))
        elif kind == b"subscribe":
            channel = self._names.get(reply[1])
            waiter = self._pending.get(channel) if channel is not None else None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    async def _link_url(self) -> str:
        """Where the pub/sub link connects (the Sentinel broker asks its sentinels)."""
        return self._url

    async def _connect(self) -> PubSubLink:
        """Open a link and subscribe the probe and every wanted channel; wait for all."""
        confirmed: set[bytes] = set()

        def on_reply(reply: Reply) -> None:
            if type(reply) is list and reply[0] == b"subscribe":
                confirmed.add(reply[1])
            elif isinstance(reply, hiredis.ReplyError):
                raise_later.append(reply)

        raise_later: list[Any] = []
        link = await open_link(await self._link_url(), on_reply, self._connect_timeout)
        names = [self._probe_name, *(self._pubsub_name(c) for c in self._channels)]
        try:
            async with asyncio.timeout(self._connect_timeout + len(names) / 10_000):
                for i in range(0, len(names), 1000):
                    link.send("SUBSCRIBE", *names[i : i + 1000])
                while len(confirmed) < len(set(names)):
                    if raise_later:
                        raise BrokerUnavailable(f"redis refused the link: {raise_later[0]}")
                    if link.closed.done():
                        raise BrokerUnavailable("redis closed the link while subscribing")
                    await asyncio.sleep(0.005)
        except BaseException:
            link.abort()
            raise
        link.deliver_to(self._on_reply)
        return link

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            try:
                link = await self._connect()
            except (OSError, TimeoutError, BrokerUnavailable) as exc:
                delay = backoff_delay(attempt)
                attempt += 1
                log.warning(
                    "redis pub/sub connect failed (%s); retry %d in %.2fs",
                    exc or type(exc).__name__,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._link, self._up = link, True
            self._probe.forgive()
            log.info("redis pub/sub connected; %d channels subscribed", len(self._channels))
            if self._handler is not None:
                self._handler.on_broker_state(True)
            reason = await link.closed
            self._link, self._up = None, False
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(BrokerUnavailable("redis pub/sub link lost"))
            if self._closing:
                return
            log.warning("redis pub/sub link lost (%s); reconnecting", reason or "closed by server")
            if self._handler is not None:
                self._handler.on_broker_state(False)

    async def _watch(self) -> None:
        """End-to-end probe: publish to our own channel and expect it back on the link."""

        async def tick(now: float) -> None:
            link = self._link
            if link is None:
                return
            verdict = self._probe.check(now, self._probe_timeout)
            if verdict is Verdict.DEAD:
                log.warning(
                    "probe not seen back within %.1fs: pub/sub link is silently dead; reconnecting",
                    self._probe_timeout,
                )
                link.abort()
            elif verdict is Verdict.SEND:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    await self._client.publish(self._probe_name, self._probe.sent)

        await watch(self._probe_interval, tick, self._probe.forgive)


_: type[Broker] = RedisBroker
