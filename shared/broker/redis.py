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
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import Broker, BrokerUnavailable
from shared.broker.redis_base import DEFAULT_OPTIONS, LinkOptions, RedisBrokerBase
from shared.broker.redis_link import PubSubLink, Reply, open_link
from shared.broker.redis_probe import Probe, Verdict

__all__ = ["RedisBroker"]

log = logging.getLogger("relaycast.broker")


class RedisBroker(RedisBrokerBase):
    """A :class:`~shared.broker.base.Broker` over one Redis server."""

    def __init__(
        self,
        url: str,
        options: LinkOptions = DEFAULT_OPTIONS,
        *,
        client: aioredis.Redis | None = None,
    ) -> None:
        if client is None:
            client = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=options.connect_timeout,
                socket_timeout=5.0,
                socket_keepalive=True,
                health_check_interval=15,
            )
        super().__init__(client, options)
        self._url = url
        self._client = client
        self._probe_name = f"{options.prefix}:probe:{options.name}".encode()
        self._probe = Probe()
        self._link: PubSubLink | None = None

    # --- the pub/sub link ----------------------------------------------------------------

    def _send_subscribe(self, name: bytes) -> bool:
        if self._link is None:
            raise BrokerUnavailable("redis pub/sub is reconnecting")
        self._link.send("SUBSCRIBE", name)
        return False

    def _send_unsubscribe(self, name: bytes) -> None:
        if self._link is not None:
            self._link.send("UNSUBSCRIBE", name)

    def _drop_links(self) -> None:
        if self._link is not None:
            self._link.abort()

    def _on_reply(self, reply: Reply) -> None:
        if type(reply) is not list:
            if isinstance(reply, hiredis.ReplyError):
                log.error("redis pub/sub error: %s; dropping the connection", reply)
                if self._link is not None:
                    self._link.abort()
            return
        kind = reply[0]
        if kind == b"message":
            if not self._deliver(reply[1], reply[2]) and reply[1] == self._probe_name:
                self._probe.saw(int(reply[2]))
        elif kind == b"subscribe":
            self._confirmed(reply[1])

    async def _link_url(self) -> str:
        """Where the pub/sub link connects (the Sentinel broker asks its sentinels)."""
        return self._url

    async def _connect(self) -> None:
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
        self._link = link

    async def _disrupted(self) -> str:
        assert self._link is not None
        reason = await self._link.closed
        self._link = None
        return f"link lost ({reason or 'closed by server'})"

    # --- the watchdog --------------------------------------------------------------------

    async def _probe_tick(self, now: float) -> None:
        """End-to-end probe: publish to our own channel and expect it back on the link."""
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

    def _forgive_probes(self) -> None:
        self._probe.forgive()


_: type[Broker] = RedisBroker
