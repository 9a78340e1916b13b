"""Gateways on a Sentinel-managed primary: a killed primary, and a switchover."""

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
from tests.broker.topologies import LocalSentinels, wait_for
from tests.helpers import GatewayProcess, wait_until


def role(port: int) -> str:
    with redis.Redis(port=port, socket_timeout=2) as client:
        return str(client.info("replication")["role"])


def numsub(port: int, channel: str) -> int:
    with redis.Redis(port=port, socket_timeout=2) as client:
        return int(client.pubsub_numsub(f"rc:{{{channel}}}")[0][1])


def wait_for_new_primary(sentinels: LocalSentinels, old: int) -> int:
    """Wait until the sentinels agree on a primary other than ``old`` that says so itself."""
    wait_for(
        lambda: (
            sentinels.current_primary_port() != old
            and role(sentinels.current_primary_port()) == "master"
        ),
        30,
        "the sentinels to promote the replica",
    )
    return sentinels.current_primary_port()


async def test_every_client_gets_every_message_exactly_once_after_the_primary_is_killed(
    sentinels, gateways
):
    channels = [f"tasks.sentinel{i}" for i in range(4)]  # history-enabled
    a = GatewayProcess.start(gateways, sentinels.url)
    b = GatewayProcess.start(gateways, sentinels.url)
    clients = connect_clients([a, b], 8, channels)
    async with clients as sockets, AsyncPublisher(sentinels.url) as publisher:
        await publish_round(publisher, channels, range(1, 31))
        for got in await asyncio.gather(*(collect(ws, channels, 30) for ws in sockets)):
            assert got == expected(channels, 30)

        old = sentinels.primary
        with redis.Redis(port=old.port) as client:
            # Replication is asynchronous: what the primary never sent is lost with it.
            # Wait until the replica has everything, which is what this test is about.
            assert client.execute_command("WAIT", 1, 5000) == 1
        with ReadinessWatch(a) as readiness, ReadinessWatch(b) as readiness_b:
            killed = time.monotonic()
            old.kill()
            promoted = asyncio.create_task(promotion(sentinels.replicas[0].port))
            failures = await publish_round(publisher, channels, range(31, 61))
            results = await asyncio.gather(*(collect(ws, channels, 30) for ws in sockets))
            await wait_until(lambda: a.ready() and b.ready(), 30, "gateways ready again")
        report_failover(killed, await promoted, [readiness, readiness_b])
        # Live again on the new primary, not only through history.
        await publish_round(publisher, channels, range(61, 71))
        after = await asyncio.gather(*(collect(ws, channels, 10) for ws in sockets))
    new = wait_for_new_primary(sentinels, old.port)
    assert new == sentinels.replicas[0].port
    assert failures > 0  # the publisher saw the outage and retried until the switch
    for got, later in zip(results, after, strict=True):
        assert got == {c: [(n, n) for n in range(31, 61)] for c in channels}
        assert later == {c: [(n, n) for n in range(61, 71)] for c in channels}
    assert 503 in readiness.statuses  # readiness reported the outage while it lasted
    for gateway in (a, b):
        assert gateway.metric("relaycast_broker_reconnects_total") >= 1


async def test_gateways_follow_a_switchover_to_the_new_primary_while_the_old_one_lives(
    sentinels, gateways
):
    channel = "tasks.switchover"
    # A probe deadline longer than the test: only following the sentinels moves the link.
    gateway = GatewayProcess.start(gateways, sentinels.url, probe_timeout=120)
    clients = connect_clients([gateway], 2, [channel])
    async with clients as sockets, AsyncPublisher(sentinels.url) as publisher:
        await publish_round(publisher, [channel], range(1, 11))
        for got in await asyncio.gather(*(collect(ws, [channel], 10) for ws in sockets)):
            assert got == expected([channel], 10)
        old = sentinels.primary.port
        assert numsub(old, channel) == 1

        with redis.Redis(port=sentinels.sentinel_ports[0]) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", sentinels.service)
        new = wait_for_new_primary(sentinels, old)
        await wait_until(lambda: numsub(new, channel) == 1, 20, "link moved to the new primary")
        # It moved by following the sentinels, not because the sentinels later demoted the
        # old primary (which also drops that server's clients): the old one still leads.
        assert role(old) == "master"
        assert numsub(old, channel) == 0
        wait_for(lambda: role(old) == "slave", 30, "the old primary to become a replica")

        await publish_round(publisher, [channel], range(11, 21))
        for got in await asyncio.gather(*(collect(ws, [channel], 10) for ws in sockets)):
            assert got == {channel: [(n, n) for n in range(11, 21)]}
