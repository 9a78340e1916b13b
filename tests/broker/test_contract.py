"""One contract, every broker: memory, one Redis, Redis Cluster, Sentinel.

Each test runs the same steps against each broker, started in this process against real
servers (see conftest.py): publish positions, history reads, live delivery, recovery
after the pub/sub connections are killed, and epochs.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator

import pytest
import redis

from publisher import AsyncPublisher, Publisher
from shared.broker import Broker, InvalidPosition, create_broker
from shared.broker.base import PROVISIONAL_POSITION_TTL
from shared.broker.memory import MemoryBroker
from shared.channels import ChannelOptions
from shared.protocol import Position, Publication
from shared.settings import Settings
from tests.broker.topologies import wait_for
from tests.helpers import wait_until

KINDS = ["memory", "redis", "cluster", "sentinel"]
REDIS_KINDS = KINDS[1:]

ORDERED = ChannelOptions(pattern="*", history_size=100, history_ttl=600)
SMALL = ChannelOptions(pattern="*", history_size=3, history_ttl=600)
NO_HISTORY = ChannelOptions(pattern="*", history_size=0, history_ttl=600)


class Recorder:
    """A BrokerEventHandler that keeps everything it is told."""

    def __init__(self) -> None:
        self.publications: dict[str, list[Publication]] = defaultdict(list)
        self.states: list[bool] = []

    def on_publication(self, channel: str, publication: Publication) -> None:
        self.publications[channel].append(publication)

    def on_broker_state(self, up: bool) -> None:
        self.states.append(up)


class Rig:
    def __init__(self, kind: str, url: str, data_ports: list[int]) -> None:
        self.kind = kind
        self.url = url
        self.data_ports = data_ports
        self.recorder = Recorder()
        settings = Settings.load({"redis_url": url, "probe_interval": 1, "probe_timeout": 3})
        self.broker: Broker = create_broker(settings)

    def kill_pubsub_connections(self) -> int:
        """CLIENT KILL every pub/sub connection on every data node, as a network cut would."""
        killed = 0
        for port in self.data_ports:
            with redis.Redis(port=port) as client:
                killed += int(client.execute_command("CLIENT", "KILL", "TYPE", "pubsub"))
        return killed


@pytest.fixture(params=KINDS)
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    kind = request.param
    if kind == "memory":
        rig = Rig(kind, "memory://", [])
    elif kind == "redis":
        server = request.getfixturevalue("shared_redis")
        rig = Rig(kind, server.url, [server.port])
    elif kind == "cluster":
        cluster = request.getfixturevalue("shared_cluster")
        rig = Rig(kind, cluster.url, [n.port for n in cluster.nodes])
    else:
        sentinels = request.getfixturevalue("shared_sentinels")
        rig = Rig(kind, sentinels.url, [n.port for n in sentinels.nodes])
    await rig.broker.start(rig.recorder)
    try:
        await wait_until(lambda: rig.broker.up, 15, f"{kind} broker up")
        yield rig
    finally:
        await rig.broker.close()


def fresh(stem: str) -> str:
    return f"{stem}.{uuid.uuid4().hex[:8]}"


async def test_publish_gives_increasing_offsets_in_one_epoch(rig: Rig) -> None:
    channel = fresh("contract.offsets")
    positions = [
        await rig.broker.publish(channel, f'{{"n":{n}}}', ORDERED, 1.0) for n in range(1, 6)
    ]
    assert [p.offset for p in positions] == [1, 2, 3, 4, 5]
    assert len({p.epoch for p in positions}) == 1


async def test_a_fresh_channel_is_at_offset_zero_and_its_first_publish_keeps_that_epoch(
    rig: Rig,
) -> None:
    channel = fresh("contract.fresh")
    history = await rig.broker.history(channel, ORDERED, limit=10)
    assert history.position.offset == 0
    assert history.publications == []
    assert history.position.epoch
    position = await rig.broker.publish(channel, "1", ORDERED, 1.0)
    assert position.offset == 1
    assert position.epoch == history.position.epoch


@pytest.mark.parametrize("rig", REDIS_KINDS, indirect=True)
async def test_reading_channels_never_published_leaves_no_long_lived_keys(rig: Rig) -> None:
    """Subscribing to a channel reads its position; a reader allowed a whole namespace
    must not be able to fill Redis with keys that outlive it by a day."""
    channels = [fresh("contract.unread") for _ in range(20)]
    for channel in channels:
        await rig.broker.history(channel, ORDERED, limit=10)
        await rig.broker.history(channel, ORDERED, since=0, limit=10)
    for channel in channels:
        ttls = _ttls(rig, [f"rc:{{{channel}}}:m", f"rc:{{{channel}}}:s"])
        assert f"rc:{{{channel}}}:s" not in ttls
        assert 0 < ttls[f"rc:{{{channel}}}:m"] <= PROVISIONAL_POSITION_TTL
    # A publish makes the position last as long as any published channel's.
    position = await rig.broker.publish(channels[0], "1", ORDERED, 1.0)
    assert position.offset == 1
    assert _ttls(rig, [f"rc:{{{channels[0]}}}:m"])[f"rc:{{{channels[0]}}}:m"] >= 86400


async def test_a_negative_offset_is_refused_before_it_reaches_the_backend(rig: Rig) -> None:
    channel = fresh("contract.negative")
    await rig.broker.publish(channel, "1", ORDERED, 1.0)
    with pytest.raises(InvalidPosition, match="negative"):
        await rig.broker.history(channel, ORDERED, since=-1, limit=10)
    history = await rig.broker.history(channel, ORDERED, since=0, limit=10)
    assert [p.offset for p in history.publications] == [1]


async def test_history_since_returns_later_publications_oldest_first_up_to_limit(
    rig: Rig,
) -> None:
    channel = fresh("contract.since")
    for n in range(1, 11):
        await rig.broker.publish(channel, f'{{"n":{n}}}', ORDERED, float(n))
    history = await rig.broker.history(channel, ORDERED, since=3, limit=4)
    assert history.position.offset == 10
    assert [p.offset for p in history.publications] == [4, 5, 6, 7]
    assert [p.data for p in history.publications] == [f'{{"n":{n}}}' for n in (4, 5, 6, 7)]
    assert [p.time for p in history.publications] == [4.0, 5.0, 6.0, 7.0]
    assert {p.epoch for p in history.publications} == {history.position.epoch}
    tail = await rig.broker.history(channel, ORDERED, since=8, limit=100)
    assert [p.offset for p in tail.publications] == [9, 10]
    assert (await rig.broker.history(channel, ORDERED, since=10, limit=100)).publications == []


async def test_history_without_since_returns_the_newest_oldest_first(rig: Rig) -> None:
    channel = fresh("contract.newest")
    for n in range(1, 8):
        await rig.broker.publish(channel, str(n), ORDERED, 1.0)
    history = await rig.broker.history(channel, ORDERED, limit=3)
    assert [p.offset for p in history.publications] == [5, 6, 7]
    position_only = await rig.broker.history(channel, ORDERED)
    assert position_only.position.offset == 7
    assert position_only.publications == []


async def test_history_keeps_at_most_history_size_and_none_without_history(rig: Rig) -> None:
    small, none = fresh("contract.small"), fresh("contract.none")
    for n in range(1, 8):
        await rig.broker.publish(small, str(n), SMALL, 1.0)
        await rig.broker.publish(none, str(n), NO_HISTORY, 1.0)
    kept = await rig.broker.history(small, SMALL, since=0, limit=100)
    assert [p.offset for p in kept.publications] == [5, 6, 7]
    unkept = await rig.broker.history(none, NO_HISTORY, since=0, limit=100)
    assert unkept.position.offset == 7  # positions advance even with no history
    assert unkept.publications == []


async def test_subscribe_delivers_each_publication_once_in_order_until_unsubscribe(
    rig: Rig,
) -> None:
    channels = [fresh(f"contract.live{i}") for i in range(6)]  # spread over shards
    for channel in channels:
        await rig.broker.subscribe(channel)
    sent = {}
    for n in range(1, 21):
        for channel in channels:
            sent[channel, n] = await rig.broker.publish(channel, f"{n}", ORDERED, 1.0)
    got = rig.recorder.publications
    await wait_until(lambda: all(len(got[c]) >= 20 for c in channels), 10, "deliveries")
    for channel in channels:
        assert [p.offset for p in got[channel]] == list(range(1, 21))
        assert [p.data for p in got[channel]] == [str(n) for n in range(1, 21)]
        assert got[channel][0].epoch == sent[channel, 1].epoch
    await rig.broker.unsubscribe(channels[0])
    await rig.broker.publish(channels[0], "after", ORDERED, 1.0)
    await rig.broker.publish(channels[1], "marker", ORDERED, 1.0)
    await wait_until(lambda: len(got[channels[1]]) == 21, 10, "marker")
    assert len(got[channels[0]]) == 20


async def test_a_subscriber_gets_nothing_of_channels_it_did_not_subscribe(rig: Rig) -> None:
    mine, other = fresh("contract.mine"), fresh("contract.other")
    await rig.broker.subscribe(mine)
    await rig.broker.publish(other, "x", ORDERED, 1.0)
    await rig.broker.publish(mine, "y", ORDERED, 1.0)
    await wait_until(lambda: len(rig.recorder.publications[mine]) == 1, 10, "delivery")
    assert other not in rig.recorder.publications


@pytest.mark.parametrize("rig", REDIS_KINDS, indirect=True)
async def test_after_the_pubsub_link_drops_it_reports_down_then_up_and_delivers_again(
    rig: Rig,
) -> None:
    channels = [fresh(f"contract.drop{i}") for i in range(6)]
    for channel in channels:
        await rig.broker.subscribe(channel)
    assert rig.recorder.states == [True]
    assert rig.kill_pubsub_connections() >= 1
    await wait_until(lambda: len(rig.recorder.states) >= 3, 15, "down, then up again")
    assert rig.recorder.states[:3] == [True, False, True]
    assert rig.broker.up
    for channel in channels:
        await rig.broker.publish(channel, "again", ORDERED, 1.0)
    got = rig.recorder.publications
    await wait_until(lambda: all(len(got[c]) == 1 for c in channels), 10, "deliveries")
    for channel in channels:
        assert [p.data for p in got[channel]] == ["again"]


@pytest.mark.parametrize("rig", REDIS_KINDS, indirect=True)
async def test_both_publishers_take_the_same_url_and_their_messages_arrive(rig: Rig) -> None:
    channel = fresh("contract.publishers")
    await rig.broker.subscribe(channel)

    def blocking() -> Position:
        with Publisher(rig.url) as publisher:
            return publisher.publish(channel, {"by": "blocking"})

    first = await asyncio.to_thread(blocking)
    async with AsyncPublisher(rig.url) as publisher:
        second = await publisher.publish(channel, {"by": "async"})
    assert (first.offset, second.offset) == (1, 2)
    got = rig.recorder.publications
    await wait_until(lambda: len(got[channel]) == 2, 10, "both publications")
    assert [p.data for p in got[channel]] == ['{"by":"blocking"}', '{"by":"async"}']


@pytest.mark.parametrize("rig", ["memory"], indirect=True)
async def test_an_async_publisher_in_the_process_reaches_its_memory_broker(rig: Rig) -> None:
    """memory:// is one process: a publisher inside it takes the gateway's broker seam."""
    channel = fresh("contract.inprocess")
    await rig.broker.subscribe(channel)
    async with AsyncPublisher("memory://") as publisher:
        position = await publisher.publish(channel, {"n": 1})
        with pytest.raises(TypeError, match="memory://"):
            publisher.redis  # noqa: B018 - tasks and alerts keep their state in Redis
    assert position.offset == 1
    assert [p.data for p in rig.recorder.publications[channel]] == ['{"n":1}']
    history = await rig.broker.history(channel, ORDERED, since=0, limit=10)
    assert history.position == position
    other = MemoryBroker()  # a bus of its own: not the process' memory://
    assert (await other.history(channel, ORDERED)).position.offset == 0


def test_the_blocking_publisher_says_memory_needs_the_gateways_event_loop() -> None:
    with pytest.raises(ValueError, match="AsyncPublisher"):
        Publisher("memory://")


@pytest.mark.parametrize("rig", REDIS_KINDS, indirect=True)
async def test_probes_come_back_so_a_healthy_link_is_never_dropped(rig: Rig) -> None:
    """The watchdog drops a link whose probe is late; on a healthy one, probes return."""
    settings = Settings.load({"redis_url": rig.url, "probe_interval": 0.2, "probe_timeout": 0.6})
    broker = create_broker(settings)
    recorder = Recorder()
    await broker.start(recorder)
    try:
        await wait_until(lambda: broker.up, 15, "broker up")
        await asyncio.sleep(3)  # fifteen probe rounds
        assert recorder.states == [True]
    finally:
        await broker.close()


@pytest.mark.parametrize("rig", REDIS_KINDS, indirect=True)
async def test_a_new_stream_gets_a_new_epoch(rig: Rig) -> None:
    """When Redis lost a channel's keys (expiry, flush, restart), offsets restart under a
    new epoch, so nobody mistakes the new offset 1 for the old one."""
    channel = fresh("contract.epoch")
    first = await rig.broker.publish(channel, "1", ORDERED, 1.0)
    await rig.broker.publish(channel, "2", ORDERED, 1.0)
    _delete_channel_keys(rig, channel)
    again = await rig.broker.publish(channel, "3", ORDERED, 1.0)
    assert again.offset == 1
    assert again.epoch != first.epoch
    history = await rig.broker.history(channel, ORDERED, since=0, limit=10)
    assert [(p.offset, p.data) for p in history.publications] == [(1, "3")]


def _delete_channel_keys(rig: Rig, channel: str) -> None:
    keys = [f"rc:{{{channel}}}:m", f"rc:{{{channel}}}:s"]

    def deleted_somewhere() -> bool:
        for port in rig.data_ports:
            with redis.Redis(port=port) as client:
                try:
                    if client.delete(*keys):
                        return True
                except redis.ResponseError:  # MOVED: another shard owns the keys
                    continue
        return False

    wait_for(deleted_somewhere, 5, f"keys of {channel} deleted")


def _ttls(rig: Rig, keys: list[str]) -> dict[str, int]:
    """The TTL of each of ``keys`` that exists on a primary (-1: none), by key."""
    found: dict[str, int] = {}
    for port in rig.data_ports:
        with redis.Redis(port=port) as client:
            if client.execute_command("ROLE")[0] != b"master":
                continue
            for key in keys:
                try:
                    ttl = int(client.ttl(key))
                except redis.ResponseError:  # MOVED: another shard owns the key
                    continue
                if ttl != -2:
                    found[key] = ttl
    return found
