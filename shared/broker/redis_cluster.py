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
exponentially with full jitter; while waiting, a slot map that names new primaries ends the
wait at once, so after a failover delivery resumes as soon as the replica is promoted.

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
from typing import Any

import hiredis
import redis.asyncio.cluster as aiocluster
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot
from redis.exceptions import RedisError

from shared.broker.base import Broker, BrokerUnavailable
from shared.broker.cluster_topology import Shard, read_slot_map
from shared.broker.redis_base import DEFAULT_OPTIONS, LinkOptions, RedisBrokerBase
from shared.broker.redis_link import Reply, open_link
from shared.broker.redis_probe import Verdict
from shared.broker.redis_url import Address, async_command_client, parse_redis_url

__all__ = ["RedisClusterBroker"]

log = logging.getLogger("relaycast.broker")


class RedisClusterBroker(RedisBrokerBase):
    """A :class:`~shared.broker.base.Broker` over a Redis Cluster (7.0+).

    ``url`` is a ``redis+cluster://host:port[,host:port...]`` URL of seed nodes.
    """

    label = "redis cluster"

    def __init__(self, url: str, options: LinkOptions = DEFAULT_OPTIONS) -> None:
        target = parse_redis_url(url)
        if target.kind != "cluster":
            raise ValueError(f"not a cluster URL: {url!r}")
        client = async_command_client(
            target,
            socket_connect_timeout=options.connect_timeout,
            socket_timeout=5.0,
            socket_keepalive=True,
        )
        assert isinstance(client, aiocluster.RedisCluster)
        super().__init__(client, options, target.publish_script)
        self._target = target
        self._client = client
        stem = options.name.replace("{", "").replace("}", "")
        self._probe_stem = f"{options.prefix}:probe:{stem}"
        self._owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._known: list[Address] = list(target.nodes)
        self._shards: dict[Address, Shard] = {}
        self._trouble = asyncio.Event()
        self._reason = ""
        self._turn = 0

    # --- subscriptions -------------------------------------------------------------------

    def _owner(self, name: bytes) -> Shard | None:
        address = self._owners[key_slot(name)]
        return None if address is None else self._shards.get(address)

    def _send_subscribe(self, name: bytes) -> bool:
        shard = self._owner(name)
        if shard is None or not shard.is_open:
            raise BrokerUnavailable("redis cluster pub/sub is reconnecting")
        shard.ssubscribe(name)
        return name in shard.subscribed

    def _send_unsubscribe(self, name: bytes) -> None:
        for shard in self._shards.values():
            shard.sunsubscribe(name)

    def _drop_links(self) -> None:
        for shard in list(self._shards.values()):
            self._discard(shard)

    def _connected_summary(self) -> str:
        return f"{len(self._shards)} primaries, {len(self._channels)} channels subscribed"

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
            if not self._deliver(name, reply[2]) and name == shard.probe_name:
                shard.probe.saw(int(reply[2]))
        elif kind == b"ssubscribe":
            if name in shard.requested:
                shard.subscribed.add(name)
            self._confirmed(name)
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

    async def _connect(self) -> None:
        """Read the slot map, link every primary, subscribe every channel on its owner."""
        self._trouble.clear()
        slot_map = await read_slot_map(self._target, self._nodes(), self._connect_timeout)
        owners = _owners_of(slot_map)
        known: list[Address] = []
        for _, _, *nodes in slot_map:
            known += nodes
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

    def _nodes(self, turn: int = 0) -> list[Address]:
        """Every node known to ask for the slot map, starting at the ``turn``-th."""
        nodes = list(dict.fromkeys([*self._known, *self._target.nodes]))
        turn %= len(nodes)
        return nodes[turn:] + nodes[:turn]

    async def _moved(self) -> bool:
        """Read the slot map (from a different node each time, so that a dead one does
        not slow every read); True when it names other primaries than the links'."""
        self._turn += 1
        timeout = min(1.0, self._connect_timeout)
        slot_map = await read_slot_map(self._target, self._nodes(self._turn), timeout)
        return _owners_of(slot_map) != self._owners

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

    async def _disrupted(self) -> str:
        await self._trouble.wait()
        return f"disrupted: {self._reason}"

    # --- the watchdog --------------------------------------------------------------------

    async def _probe_tick(self, now: float) -> None:
        """End-to-end probes: SPUBLISH to each link's own probe channel, expect it back."""
        sends = []
        for shard in list(self._shards.values()):
            if not shard.is_open or shard.probe_name not in shard.subscribed:
                continue
            verdict = shard.probe.check(now, self._probe_timeout)
            if verdict is Verdict.DEAD and shard.link is not None:
                log.warning(
                    "probe not seen back from %s within %.1fs: link silently dead; reconnecting",
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

    def _forgive_probes(self) -> None:
        for shard in self._shards.values():
            shard.probe.forgive()


def _owners_of(slot_map: list[list[Any]]) -> list[Address | None]:
    """The primary of every slot (None: no node serves it)."""
    owners: list[Address | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    for first, last, primary, *_ in slot_map:
        owners[first : last + 1] = [primary] * (last - first + 1)
    return owners


_: type[Broker] = RedisClusterBroker
