"""Gateways on a real Redis Cluster: sharded pub/sub, slot moves, and a primary's failover."""

from __future__ import annotations

import asyncio
import time

import redis

from publisher import AsyncPublisher
from tests.broker.scenario import (
    ReadinessWatch,
    collect,
    connect_clients,
    expected,
    promotion,
    publish_round,
    report_failover,
)
from tests.broker.topologies import LocalCluster
from tests.helpers import GatewayProcess, wait_until


def shard_subscribers(cluster: LocalCluster, channel: str) -> tuple[int, int]:
    """(PUBSUB SHARDNUMSUB on the owner, PUBSUB NUMSUB summed over every node)."""
    name = f"rc:{{{channel}}}"
    with redis.Redis(port=cluster.owner(channel).port) as owner:
        sharded = int(owner.execute_command("PUBSUB", "SHARDNUMSUB", name)[1])
    classic = 0
    for node in cluster.alive():
        with redis.Redis(port=node.port) as client:
            classic += int(client.execute_command("PUBSUB", "NUMSUB", name)[1])
    return sharded, classic


def command_calls(node_port: int, command: str) -> int:
    with redis.Redis(port=node_port) as client:
        stats = client.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))


async def test_clients_on_two_gateways_get_every_shards_messages_in_order_over_spublish(
    shared_cluster, gateways
):
    cluster = shared_cluster
    channels = cluster.channels_per_shard(3, "tasks.spread")  # 9 channels, 3 per primary
    a = GatewayProcess.start(gateways, cluster.url)
    b = GatewayProcess.start(gateways, cluster.url)
    before = {n.port: command_calls(n.port, "publish") for n in cluster.primaries}
    async with connect_clients([a, b], 10, channels) as sockets:
        async with AsyncPublisher(cluster.url) as publisher:
            await publish_round(publisher, channels, range(1, 51))
        results = await asyncio.gather(*(collect(ws, channels, 50) for ws in sockets))

        # Sharded pub/sub carried it: one SSUBSCRIBE per channel per gateway on the owner,
        # no classic subscription anywhere, SPUBLISH calls on every primary, no PUBLISH.
        for channel in channels:
            assert shard_subscribers(cluster, channel) == (2, 0)
        for node in cluster.primaries:
            assert command_calls(node.port, "spublish") >= 3 * 50
            assert command_calls(node.port, "publish") == before[node.port]
            with redis.Redis(port=node.port) as client:
                links = client.client_list(_type="pubsub")
            assert len(links) == 2  # one pub/sub connection per gateway per shard
    for got in results:
        assert got == expected(channels, 50)
    await wait_until(
        lambda: all(shard_subscribers(cluster, c) == (0, 0) for c in channels), 10, "unsubscribe"
    )


async def test_a_channel_keeps_delivering_after_its_slot_moves_to_another_primary(
    shared_cluster, gateways
):
    cluster = shared_cluster
    [channel] = cluster.channels_per_shard(1, "tasks.moving")[:1]
    gateway = GatewayProcess.start(gateways, cluster.url)
    clients = connect_clients([gateway], 1, [channel])
    async with clients as [ws], AsyncPublisher(cluster.url) as publisher:
        await publish_round(publisher, [channel], range(1, 11))
        assert await collect(ws, [channel], 10) == expected([channel], 10)

        source = cluster.owner(channel)
        target = next(n for n in cluster.primaries if n is not source)
        cluster.move_slot(channel, target)  # the source pushes sunsubscribe to the gateway
        assert cluster.owner(channel) is target
        await publish_round(publisher, [channel], range(11, 21))
        got = await collect(ws, [channel], 10)
        await wait_until(lambda: shard_subscribers(cluster, channel) == (1, 0), 10, "moved")
    assert got == {channel: [(n, n) for n in range(11, 21)]}
    assert gateway.metric("relaycast_broker_reconnects_total") >= 1


async def test_every_client_gets_every_message_exactly_once_across_a_primary_failover(
    cluster, gateways
):
    channels = cluster.channels_per_shard(2, "tasks.failover")  # history-enabled
    a = GatewayProcess.start(gateways, cluster.url)
    b = GatewayProcess.start(gateways, cluster.url)
    clients = connect_clients([a, b], 8, channels)
    async with clients as sockets, AsyncPublisher(cluster.url) as publisher:
        await publish_round(publisher, channels, range(1, 31))
        for got in await asyncio.gather(*(collect(ws, channels, 30) for ws in sockets)):
            assert got == expected(channels, 30)

        victim = cluster.owner(channels[0])
        heir = cluster.replica_of(victim)
        with redis.Redis(port=victim.port) as client:
            # Replication is asynchronous: what the primary never sent is lost with it.
            # Wait until the replica has everything, which is what this test is about.
            assert client.execute_command("WAIT", 1, 5000) == 1
        with ReadinessWatch(a) as readiness, ReadinessWatch(b) as readiness_b:
            killed = time.monotonic()
            victim.kill()
            promoted = asyncio.create_task(promotion(heir.port))
            await publish_round(publisher, channels, range(31, 61))
            results = await asyncio.gather(*(collect(ws, channels, 30) for ws in sockets))
            await wait_until(lambda: a.ready() and b.ready(), 30, "gateways ready again")
        report_failover(killed, await promoted, [readiness, readiness_b])
        # Live again on the new primary, not only through history.
        await publish_round(publisher, channels, range(61, 71))
        after = await asyncio.gather(*(collect(ws, channels, 10) for ws in sockets))
    assert cluster.owner(channels[0]) is heir
    for got, later in zip(results, after, strict=True):
        assert got == {c: [(n, n) for n in range(31, 61)] for c in channels}
        assert later == {c: [(n, n) for n in range(61, 71)] for c in channels}
    assert 503 in readiness.statuses  # readiness reported the outage while it lasted
    for gateway in (a, b):
        assert gateway.metric("relaycast_broker_reconnects_total") >= 1
        assert gateway.metric("relaycast_gap_fills_total") >= len(channels)
