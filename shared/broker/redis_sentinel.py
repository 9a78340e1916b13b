"""The Sentinel broker: the Redis broker, pointed at whichever server the sentinels name.

Everything but discovery is :class:`~shared.broker.redis.RedisBroker`: one supervised
pub/sub link, the probe watchdog, the same keys and scripts. Two things differ:

- Commands (publish, history, probes) go through redis-py's sentinel-managed client,
  which asks the sentinels for the primary whenever it opens a connection.
- The pub/sub link asks the sentinels for the primary each time it connects, and a
  follower drops the link as soon as the sentinels name a different primary (a failover
  where the old primary stayed reachable, or a manual one). The supervisor then
  reconnects to the new primary and reports down and up, so the hub fills the gap from
  history, exactly as after a lost connection.

What Sentinel cannot promise: replication is asynchronous, so writes the old primary
acknowledged but had not yet sent to the replica are gone after the failover (see
docs/redis-topologies.md).
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio.sentinel import MasterNotFoundError
from redis.exceptions import RedisError

from shared.broker.base import Broker, BrokerEventHandler, BrokerUnavailable
from shared.broker.redis import RedisBroker
from shared.broker.redis_base import DEFAULT_OPTIONS, LinkOptions
from shared.broker.redis_url import Address, async_primary_client, async_sentinel, parse_redis_url

__all__ = ["SentinelBroker"]

log = logging.getLogger("relaycast.broker")


class SentinelBroker(RedisBroker):
    """A :class:`~shared.broker.base.Broker` over a Sentinel-managed primary.

    ``url`` is a ``redis+sentinel://host:port[,host:port...]/service[/db]`` URL.
    """

    def __init__(
        self, url: str, options: LinkOptions = DEFAULT_OPTIONS, *, follow_interval: float = 1.0
    ) -> None:
        target = parse_redis_url(url)
        if target.kind != "sentinel":
            raise ValueError(f"not a sentinel URL: {url!r}")
        self._target = target
        timeout = options.connect_timeout
        self._sentinel = async_sentinel(
            target, socket_connect_timeout=timeout, socket_timeout=timeout
        )
        client = async_primary_client(
            self._sentinel,
            target,
            socket_timeout=5.0,
            socket_keepalive=True,
            health_check_interval=15,
        )
        super().__init__(url, options, client=client)
        self._follow_interval = follow_interval
        self._primary: Address | None = None

    async def _discover(self) -> Address:
        try:
            host, port = await self._sentinel.discover_master(self._target.service)
        except (MasterNotFoundError, RedisError, OSError) as exc:
            raise BrokerUnavailable(
                f"no sentinel names a primary for {self._target.service!r}: {exc}"
            ) from exc
        return str(host), int(port)

    async def _moved(self) -> bool:
        """True when the sentinels name another primary than the link's last one."""
        return await self._discover() != self._primary

    async def _link_url(self) -> str:
        self._primary = await self._discover()
        return self._target.node_url(self._primary)

    async def start(self, handler: BrokerEventHandler) -> None:
        await super().start(handler)
        self._tasks.append(asyncio.create_task(self._follow(), name="relaycast-sentinel"))

    async def _follow(self) -> None:
        """Drop the link when the sentinels name a primary other than the one it is on."""
        while True:
            await asyncio.sleep(self._follow_interval)
            link, linked_to = self._link, self._primary
            if link is None or linked_to is None:
                continue
            try:
                primary = await self._discover()
            except BrokerUnavailable as exc:
                log.info("sentinels not answering (%s); keeping the current link", exc)
                continue
            if primary != linked_to and self._link is link:
                log.warning(
                    "sentinels moved %r from %s:%d to %s:%d; reconnecting",
                    self._target.service,
                    *linked_to,
                    *primary,
                )
                link.abort()


_: type[Broker] = SentinelBroker
