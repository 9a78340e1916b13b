"""The Redis Cluster broker: sharded pub/sub, one supervised link per primary.

Keys are those of the single-server broker (see :mod:`shared.broker.redis`). The hash tag
``{C}`` puts channel ``C``'s meta hash, stream and shard channel ``rc:{C}`` in one slot,
so the atomic publish script runs on the shard that owns it and announces the message
with SPUBLISH, which travels only within that shard rather than to every node.

Pub/sub holds one raw link (:mod:`shared.broker.redis_link`) per primary and sends one
SSUBSCRIBE per channel: a batched SSUBSCRIBE must not span slots. A supervisor keeps the
links in step with the cluster's slot map. A link that closes, a ``MOVED`` or ``ASK``
reply, or a ``sunsubscribe`` the server pushes (the slot moved away, or its node was
demoted) marks the broker down; the supervisor then reads the slot map again (``CLUSTER
SLOTS`` from any node that answers), opens links to new primaries, subscribes each
channel on the primary that owns it now, and reports up. Reconnects back off
exponentially with full jitter.

The handler sees one down/up pair per disruption, wherever it happened, and fills every
channel's gap from history exactly as with one Redis. Channels of healthy shards are
held by the hub meanwhile, not lost; with the cluster's default
``cluster-require-full-coverage yes`` the cluster itself refuses writes while a slot has
no primary.

Each link also carries a probe channel in a slot of its own primary; the watchdog
SPUBLISHes to it and expects it back, and drops a link whose probe is late (judged only
when the watchdog itself woke on time), as the single-server broker does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import hiredis
import msgspec
import redis.asyncio.cluster as aiocluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import RedisError

from shared.backoff import backoff_delay
from shared.broker.base import (
    Broker,
    BrokerEventHandler,
    BrokerUnavailable,
    History,
)
from shared.broker.cluster_topology import Shard, read_slot_map
from shared.broker.redis_link import Reply, open_link
from shared.broker.redis_probe import Verdict, watch
from shared.broker.redis_store import RedisStore
from shared.broker.redis_url import Address, async_command_client, parse_redis_url
from shared.channels import ChannelOptions
from shared.protocol import Position, decode_publication

__all__ = ["RedisClusterBroker"]

log = logging.getLogger("relaycast.broker")


class RedisClusterBroker:
    """A :class:`~shared.broker.base.Broker` over a Redis Cluster (7.0+).

    ``url`` is a ``redis+cluster://host:port[,host:port...]`` URL of seed nodes.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "rc",
        name: str = "relaycast",
        probe_interval: float = 5.0,
        probe_timeout: float = 10.0,
        connect_timeout: float = 3.0,
    ) -> None:
        target = parse_redis_url(url)
        if target.kind != "cluster":
            raise ValueError(f"not a cluster URL: {url!r}")
        self._target = target
        self._prefix = prefix
        client = async_command_client(
            target,
            socket_connect_timeout=connect_timeout,
            socket_timeout=5.0,
            socket_keepalive=True,
        )
        assert isinstance(client, aiocluster.RedisCluster)
        self._client = client
        self._store = RedisStore(client, prefix, target.publish_script)
        self._connect_timeout = connect_timeout
        self._probe_interval = probe_interval
        self._probe_timeout = probe_timeout
        self._probe_stem = f"{prefix}:probe:{name.replace('{', '').replace('}', '')}"

        self._handler: BrokerEventHandler | None = None
        self._channels: set[str] = set()
        self._names: dict[bytes, str] = {}
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._known: list[Address] = list(target.nodes)
        self._shards: dict[Address, Shard] = {}
        self._trouble = asyncio.Event()
        self._reason = ""
        self._up = False
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    def _pubsub_name(self, channel: str) -> bytes:
        return f"{self._prefix}:{{{channel}}}".encode()

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def up(self) -> bool:
        return self._up

    async def start(self, handler: BrokerEventHandler) -> None:
        self._handler = handler
        self._tasks = [
            asyncio.create_task(self._supervise(), name="relaycast-cluster-pubsub"),
            asyncio.create_task(self._watch(), name="relaycast-cluster-probe"),
        ]

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for shard in list(self._shards.values()):
            self._discard(shard)
        await self._client.aclose()

    # --- subscriptions -------------------------------------------------------------------

    def _owner(self, name: bytes) -> Shard | None:
        address = self._owners[key_slot(name)]
        return None if address is None else self._shards.get(address)

    async def subscribe(self, channel: str) -> None:
        name = self._pubsub_name(channel)
        self._channels.add(channel)
        self._names[name] = channel
        shard = self._owner(name) if self._up else None
        if shard is None or not shard.is_open:
            raise BrokerUnavailable("redis cluster pub/sub is reconnecting")
        waiter = asyncio.get_running_loop().create_future()
        self._pending[channel] = waiter
        shard.ssubscribe(name)
        if name in shard.subscribed:
            waiter.set_result(None)
        try:
            async with asyncio.timeout(self._connect_timeout + 2):
                await waiter
        except TimeoutError:
            raise BrokerUnavailable(f"{shard} did not confirm SSUBSCRIBE in time") from None
        finally:
            if self._pending.get(channel) is waiter:
                del self._pending[channel]

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        name = self._pubsub_name(channel)
        self._names.pop(name, None)
        for shard in self._shards.values():
            shard.sunsubscribe(name)

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

    # --- replies from the links ----------------------------------------------------------

    def _disrupt(self, reason: str) -> None:
        """Something moved: have the supervisor read the slot map and resubscribe."""
        if not self._trouble.is_set():
            self._reason = reason
            self._trouble.set()

    def _on_reply(self, shard: Shard, reply: Reply) -> None:
        if type(reply) is not list:
            if isinstance(reply, hiredis.ReplyError):
                text = str(reply)
                if text.startswith(("MOVED ", "ASK ")):
                    self._disrupt(f"{shard} answered {text}")
                else:
                    log.error("redis pub/sub error from %s: %s; dropping the link", shard, text)
                    if shard.link is not None:
                        shard.link.abort()
            return
        kind, name = reply[0], reply[1]
        if kind == b"smessage":
            channel = self._names.get(name)
            if channel is not None and self._handler is not None:
                try:
                    publication = decode_publication(reply[2])
                except msgspec.DecodeError:
                    log.warning("dropped a malformed publication on %s", channel)
                    return
                self._handler.on_publication(channel, publication)
            elif name == shard.probe_name:
                shard.probe.saw(int(reply[2]))
        elif kind == b"ssubscribe":
            if name in shard.requested:
                shard.subscribed.add(name)
            channel = self._names.get(name)
            waiter = self._pending.get(channel) if channel is not None else None
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif kind == b"sunsubscribe":
            expected = shard.unsubscribing.get(name, 0)
            if expected > 1:
                shard.unsubscribing[name] = expected - 1
            elif expected == 1:
                del shard.unsubscribing[name]
            else:
                # Pushed by the server: the slot left this node, or the node was demoted.
                shard.requested.discard(name)
                shard.subscribed.discard(name)
                if name in self._names or name == shard.probe_name:
                    self._disrupt(f"{shard} unsubscribed {name.decode(errors='replace')}")

    def _on_link_closed(self, shard: Shard, exc: Exception | None) -> None:
        if self._shards.get(shard.address) is shard:
            self._disrupt(f"link to {shard} lost ({exc or 'closed by server'})")

    # --- keeping the links in step with the slot map -------------------------------------

    async def _reconcile(self) -> None:
        """Read the slot map, link every primary, subscribe every channel on its owner."""
        nodes = list(dict.fromkeys([*self._known, *self._target.nodes]))
        slot_map = await read_slot_map(self._target, nodes, self._connect_timeout)
        owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        known: list[Address] = []
        for first, last, primary, *replicas in slot_map:
            owners[first : last + 1] = [primary] * (last - first + 1)
            known += [primary, *replicas]
        self._owners, self._known = owners, list(dict.fromkeys(known))
        primaries = set(filter(None, owners))
        for address, shard in list(self._shards.items()):
            if address not in primaries or not shard.is_open:
                self._discard(shard)
            else:
                # Requests never confirmed (a MOVED, say) are sent again below.
                shard.requested &= shard.subscribed
        for address in primaries - self._shards.keys():
            await self._link(address)
        await self._settle()

    async def _link(self, address: Address) -> None:
        shard = Shard(address, self._probe_name(address))
        shard.link = await open_link(
            self._target.node_url(address),
            lambda reply: self._on_reply(shard, reply),
            self._connect_timeout,
        )
        shard.link.closed.add_done_callback(lambda done: self._on_link_closed(shard, done.result()))
        self._shards[address] = shard

    def _discard(self, shard: Shard) -> None:
        if self._shards.get(shard.address) is shard:
            del self._shards[shard.address]
        if shard.link is not None:
            shard.link.abort()

    def _probe_name(self, address: Address) -> bytes:
        """A probe channel whose slot ``address`` owns (its hash tag is a counter)."""
        for n in range(1_000_000):
            name = f"{self._probe_stem}:{{{n}}}".encode()
            if self._owners[key_slot(name)] == address:
                return name
        raise BrokerUnavailable(f"no slot of {address} found for the probe")

    async def _settle(self) -> None:
        """Subscribe what is missing, unsubscribe what moved; wait for every confirmation."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._connect_timeout + len(self._channels) / 10_000
        while True:
            wanted: dict[Address, set[bytes]] = {a: {s.probe_name} for a, s in self._shards.items()}
            for name in self._names:
                owner = self._owners[key_slot(name)]
                if owner is None or owner not in wanted:
                    raise BrokerUnavailable(f"no primary serves {name.decode(errors='replace')}")
                wanted[owner].add(name)
            settled = True
            for address, shard in self._shards.items():
                if not shard.is_open:
                    raise BrokerUnavailable(f"link to {shard} closed while subscribing")
                want = wanted[address]
                for name in shard.requested - want:
                    shard.sunsubscribe(name)
                for name in want - shard.requested:
                    shard.ssubscribe(name)
                settled = settled and want <= shard.subscribed
            if settled:
                return
            if self._trouble.is_set():
                raise BrokerUnavailable(f"cluster changed while subscribing: {self._reason}")
            if loop.time() > deadline:
                raise BrokerUnavailable("cluster did not confirm every SSUBSCRIBE in time")
            await asyncio.sleep(0.01)

    async def _supervise(self) -> None:
        attempt = 0
        while not self._closing:
            self._trouble.clear()
            try:
                await self._reconcile()
            except (OSError, TimeoutError, RedisError, BrokerUnavailable) as exc:
                delay = backoff_delay(attempt)
                attempt += 1
                log.warning(
                    "redis cluster pub/sub not in step (%s); retry %d in %.2fs",
                    exc or type(exc).__name__,
                    attempt,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            attempt = 0
            if not self._up:
                self._up = True
                for shard in self._shards.values():
                    shard.probe.forgive()
                log.info(
                    "redis cluster pub/sub connected: %d primaries, %d channels subscribed",
                    len(self._shards),
                    len(self._channels),
                )
                if self._handler is not None:
                    self._handler.on_broker_state(True)
            await self._trouble.wait()
            if self._closing:
                return
            self._up = False
            for waiter in self._pending.values():
                if not waiter.done():
                    waiter.set_exception(BrokerUnavailable(self._reason))
            log.warning("redis cluster pub/sub disrupted: %s; resubscribing", self._reason)
            if self._handler is not None:
                self._handler.on_broker_state(False)

    async def _watch(self) -> None:
        """End-to-end probes: SPUBLISH to each link's own probe channel, expect it back."""

        async def tick(now: float) -> None:
            sends = []
            for shard in list(self._shards.values()):
                if not shard.is_open or shard.probe_name not in shard.subscribed:
                    continue
                verdict = shard.probe.check(now, self._probe_timeout)
                if verdict is Verdict.DEAD and shard.link is not None:
                    log.warning(
                        "probe not seen back from %s within %.1fs: link silently dead;"
                        " reconnecting",
                        shard,
                        self._probe_timeout,
                    )
                    shard.link.abort()
                elif verdict is Verdict.SEND:
                    sends.append(self._client.spublish(shard.probe_name, shard.probe.sent))
            if sends:
                with contextlib.suppress(RedisError, OSError, TimeoutError):
                    async with asyncio.timeout(self._probe_interval):
                        await asyncio.gather(*sends, return_exceptions=True)

        def forgive() -> None:
            for shard in self._shards.values():
                shard.probe.forgive()

        await watch(self._probe_interval, tick, forgive)


_: type[Broker] = RedisClusterBroker
