"""A Redis Cluster as the cluster broker sees it: the slot map, and for each primary
(:class:`Shard`) its pub/sub link, the shard channels requested and confirmed on it, and
its probe."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.broker.redis_link import PubSubLink
from shared.broker.redis_probe import Probe
from shared.broker.redis_url import Address, RedisTarget, async_command_client, parse_redis_url

__all__ = ["Shard", "read_slot_map"]


class Shard:
    """The pub/sub link to one primary, and the shard channels it carries."""

    __slots__ = (
        "address",
        "link",
        "probe",
        "probe_name",
        "requested",
        "subscribed",
        "unsubscribing",
    )

    def __init__(self, address: Address, probe_name: bytes) -> None:
        self.address = address
        self.link: PubSubLink | None = None
        self.probe_name = probe_name
        self.probe = Probe()
        self.requested: set[bytes] = set()  # SSUBSCRIBE sent
        self.subscribed: set[bytes] = set()  # and confirmed
        self.unsubscribing: dict[bytes, int] = {}  # SUNSUBSCRIBE replies still to come

    @property
    def is_open(self) -> bool:
        return self.link is not None and self.link.is_open

    def ssubscribe(self, name: bytes) -> None:
        if name not in self.requested and self.link is not None:
            self.requested.add(name)
            self.link.send("SSUBSCRIBE", name)

    def sunsubscribe(self, name: bytes) -> None:
        if name in self.requested and self.link is not None:
            self.requested.discard(name)
            self.subscribed.discard(name)
            self.unsubscribing[name] = self.unsubscribing.get(name, 0) + 1
            self.link.send("SUNSUBSCRIBE", name)

    def __str__(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


async def read_slot_map(
    target: RedisTarget, nodes: list[Address], timeout: float
) -> list[list[Any]]:
    """``CLUSTER SLOTS`` from the first of ``nodes`` that answers, as ranges
    ``[first, last, primary, *replicas]`` of ``(host, port)`` addresses.

    Raises:
        BrokerUnavailable: no node answered with a slot map.
    """
    failures = []
    for address in nodes:
        node = async_command_client(
            parse_redis_url(target.node_url(address)),
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
        )
        try:
            reply: list[Any] = await node.execute_command("CLUSTER", "SLOTS")
        except (RedisError, OSError, TimeoutError) as exc:
            failures.append(f"{address[0]}:{address[1]}: {exc}")
            continue
        finally:
            await node.aclose()
        if reply:
            return [_named(entry, address) for entry in reply]
        failures.append(f"{address[0]}:{address[1]}: no slots assigned")
    raise BrokerUnavailable("no cluster node answered CLUSTER SLOTS: " + "; ".join(failures))


def _named(entry: list[Any], asked: Address) -> list[Any]:
    """One CLUSTER SLOTS range as [first, last, primary, *replicas] with (host, port) nodes.

    An empty host means the node that answered (the Redis Cluster specification).
    """
    first, last, *nodes = entry
    addresses = [
        ((node[0].decode() if isinstance(node[0], bytes) else node[0]) or asked[0], int(node[1]))
        for node in nodes
    ]
    return [int(first), int(last), *addresses]
