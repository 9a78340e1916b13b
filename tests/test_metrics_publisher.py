"""``relaycast metrics``: a snapshot at once, then updates, and only while someone listens."""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
import pytest
import redis

from gateway.client import Client, Message
from publisher.metrics import MetricsPublisher, summarise
from publisher.sampler import Sampler
from shared.settings import Settings
from shared.state.metrics import FleetSnapshot, HostSnapshot
from shared.state.series import InvalidSample
from tests.helpers import GatewayProcess, open_ws, recv_json, subscribe, wait_until
from tests.publishers import PublisherProcess
from tests.rawws import CLOSE, RawWebSocket

FAST = {"metrics_interval": 0.2, "metrics_idle_interval": 30}


def channel_offset(url: str, channel: str) -> int:
    """How many messages ``channel`` has had (its position in Redis)."""
    with redis.Redis.from_url(url) as client:
        return int(client.hget(f"rc:{{{channel}}}:m", "o") or 0)


def reported(url: str, host: str) -> bool:
    with redis.Redis.from_url(url) as client:
        return bool(client.hexists("rc:metrics:hosts", host))


async def test_a_subscriber_gets_the_snapshot_at_once_then_updates(
    redis_server, gateways, publishers
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    PublisherProcess.start(publishers, "metrics", redis_server.url, metrics_host="box-a", **FAST)
    await wait_until(lambda: reported(redis_server.url, "box-a"), 15, "the first sample")
    stored = channel_offset(redis_server.url, "metrics.host.box-a")  # nobody listened yet

    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "metrics.host.box-a")
    first = await recv_json(ws)
    assert first["offset"] == stored  # the stored snapshot at once, not a new sample
    snapshot = first["data"]
    assert first["channel"] == "metrics.host.box-a"
    assert snapshot["host"] == "box-a"
    assert 0 <= snapshot["cpu"]["percent"] <= 100
    assert len(snapshot["cpu"]["per_core"]) == snapshot["cpu"]["count"] >= 1
    assert snapshot["memory"]["total"] > 0 and 0 <= snapshot["memory"]["percent"] <= 100
    assert snapshot["disk"]["mounts"] and "1m" in snapshot["load"]
    assert snapshot["processes"] > 0 and snapshot["uptime"] > 0
    for key in ("recv_bytes_per_s", "sent_bytes_per_s"):
        assert snapshot["net"][key] >= 0

    times = [snapshot["time"]]
    while len(times) < 4:
        frame = await recv_json(ws, timeout=5)
        assert frame["offset"] > first["offset"]
        times.append(frame["data"]["time"])
    assert times == sorted(times) and len(set(times)) == 4
    await ws.close()


async def test_it_samples_rarely_while_nobody_listens_and_resumes_within_an_interval(
    redis_server, gateways, publishers
):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    PublisherProcess.start(publishers, "metrics", redis_server.url, metrics_host="box-b", **FAST)
    channel = "metrics.host.box-b"
    await wait_until(lambda: reported(redis_server.url, "box-b"), 15, "the first sample")
    idle_offset = channel_offset(redis_server.url, channel)
    await asyncio.sleep(1.0)  # five intervals with nobody listening
    assert channel_offset(redis_server.url, channel) == idle_offset

    ws = await open_ws(gateway.ws_url)
    subscribed_at = time.monotonic()
    await subscribe(ws, channel)
    assert (await recv_json(ws))["offset"] == idle_offset  # the stored snapshot, at once
    fresh = await recv_json(ws)
    resumed = time.monotonic() - subscribed_at
    print(f"\nfirst fresh sample {resumed:.2f}s after subscribing (interval 0.2s, idle 30s)")
    assert fresh["offset"] == idle_offset + 1
    assert resumed < 5.0  # about one interval; far below the idle interval, on a busy machine

    await ws.close()
    await asyncio.sleep(0.6)  # the publisher notices within one interval
    quiet = channel_offset(redis_server.url, channel)
    await asyncio.sleep(0.8)
    assert channel_offset(redis_server.url, channel) == quiet


async def test_the_fleet_channel_summarises_every_host(redis_server, gateways, publishers):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    for host in ("fleet-1", "fleet-2"):
        PublisherProcess.start(publishers, "metrics", redis_server.url, metrics_host=host, **FAST)
    ws = await open_ws(gateway.ws_url)
    await subscribe(ws, "metrics.fleet")
    deadline = time.monotonic() + 15
    while True:
        frame = await recv_json(ws, timeout=10)
        hosts = {h["host"]: h for h in frame["data"]["hosts"]}
        if {"fleet-1", "fleet-2"} <= hosts.keys():
            break
        assert time.monotonic() < deadline, f"fleet never listed both hosts: {frame}"
    for summary in hosts.values():
        assert summary["stale"] is False
        assert 0 <= summary["cpu"] <= 100 and 0 <= summary["memory"] <= 100
    # One fleet message per interval fleet-wide, not one per metrics process.
    start = channel_offset(redis_server.url, "metrics.fleet")
    await asyncio.sleep(1.2)
    published = channel_offset(redis_server.url, "metrics.fleet") - start
    assert 1 <= published <= 9, published  # about 6 (one per 0.2s), not 12
    await ws.close()


async def test_host_and_fleet_snapshots_decode_into_their_structs(redis_server, gateways):
    gateway = GatewayProcess.start(gateways, redis_server.url)
    metrics = MetricsPublisher(Settings.load({"redis_url": redis_server.url}), host="typed")
    channels = ["metrics.host.typed", "metrics.fleet"]
    got: dict[str, Message] = {}
    async with Client(gateway.ws_url, channels) as client:
        await wait_until(lambda: len(client.positions) == 2, 10, "two subscriptions")
        await metrics.publish(await metrics.sample(1.0))
        assert await metrics.publish_fleet()
        async with asyncio.timeout(15):
            async for message in client:
                if isinstance(message, Message):
                    got[message.channel] = message
                    if len(got) == 2:
                        break
    await metrics.close()
    host, fleet = got["metrics.host.typed"], got["metrics.fleet"]
    assert isinstance(host.event, HostSnapshot) and host.event.host == "typed"
    assert isinstance(fleet.event, FleetSnapshot)
    assert [h.host for h in fleet.event.hosts] == ["typed"]
    for message in (host, fleet):  # every field published, and no other
        assert msgspec.to_builtins(message.event) == message.data


async def test_a_slow_subscriber_gets_the_newest_snapshot_not_a_backlog(redis_server, gateways):
    gateway = GatewayProcess.start(
        gateways, redis_server.url, outbox_messages=16, outbox_bytes=128 * 1024
    )
    slow = await RawWebSocket.connect(gateway.port, rcvbuf=4096)
    await slow.send_text('{"type": "subscribe", "channel": "metrics.host.slow"}')
    await slow.read_frame()  # subscribed
    metrics = MetricsPublisher(Settings.load({"redis_url": redis_server.url}), host="slow")
    pad = "x" * 4000
    published = 0
    while published < 10_000:  # until the gateway has conflated (bounded: 40 MB)
        await metrics.publish({"seq": published, "pad": pad})
        published += 1
        if published % 250 == 0 and gateway.metric("relaycast_outbox_drops_total") > 0:
            break
    await metrics.close()
    assert gateway.metric("relaycast_outbox_drops_total") > 0, "never conflated"

    frames, newest = 0, -1
    while newest != published - 1:
        opcode, payload = await slow.read_frame(timeout=10)
        assert opcode != CLOSE, "a slow reader of a latest-value channel is not cut off"
        frame = msgspec.json.decode(payload)
        if frame["type"] == "message":
            frames += 1
            assert frame["data"]["seq"] > newest  # in order, never a step back
            newest = frame["data"]["seq"]
    print(f"\npublished {published} x 4 KB; the slow reader got {frames}, ending with the newest")
    assert frames < published
    slow.writer.close()


def test_the_fleet_summary_marks_silent_hosts_stale_and_skips_unreadable_ones():
    now = 1000.0
    fleet = summarise(
        {
            "fresh": b'{"time": 999.0, "interval": 5, "cpu": {"percent": 12.5}}',
            "silent": b'{"time": 900.0, "interval": 5, "cpu": {"percent": 1}}',
            "custom": b'{"time": 999.5, "queue": {"depth": 3}}',
            "broken": b"not json",
        },
        now,
    )
    by_host = {h.host: h for h in fleet.hosts}
    assert set(by_host) == {"fresh", "silent", "custom"}
    assert by_host["fresh"].cpu == 12.5 and not by_host["fresh"].stale
    assert by_host["silent"].stale
    assert by_host["custom"].cpu is None and not by_host["custom"].stale


async def test_a_number_history_cannot_keep_refuses_the_host_snapshot_whole(redis_server):
    settings = Settings.load({"redis_url": redis_server.url})
    metrics = MetricsPublisher(settings, host="box-v")
    client = redis.Redis.from_url(redis_server.url)
    try:
        with pytest.raises(InvalidSample, match=r"q\.big: value 1e\+301 is beyond"):
            await metrics.publish({"q": {"ok": 1, "big": 1e301}})
        assert not reported(redis_server.url, "box-v")
        assert channel_offset(redis_server.url, "metrics.host.box-v") == 0
        assert not client.keys("rc:hist:*box-v*")

        await metrics.publish({"q": {"ok": 2, "big": -1e300, "inf": float("inf")}})
        assert reported(redis_server.url, "box-v")
        assert sorted(client.hkeys("rc:metrics:series:box-v")) == [b"q.big", b"q.ok"]

        assert metrics.history is not None
        for bad in (float("inf"), float("nan"), -1e301):  # the store's own rule too
            with pytest.raises(InvalidSample, match="beyond"):
                await metrics.history.record_host("box-v", b"{}", [("q.ok", "", bad)], 1.0)
        assert client.zcard("rc:hist:raw:box-v|q.ok") == 1
    finally:
        client.close()
        await metrics.close()


async def test_the_metrics_loop_logs_a_refused_snapshot_and_goes_on(redis_server, caplog):
    settings = Settings.load(
        {"redis_url": redis_server.url, "metrics_interval": 0.2, "metrics_idle_interval": 0.2}
    )
    real = Sampler()
    calls = 0

    def sampler(host: str, interval: float) -> HostSnapshot:
        nonlocal calls
        calls += 1
        snapshot = real(host, interval)
        return msgspec.structs.replace(snapshot, uptime=1e301) if calls == 1 else snapshot

    metrics = MetricsPublisher(settings, host="box-w", sampler=sampler)
    client = redis.Redis.from_url(redis_server.url)
    stop = asyncio.Event()
    caplog.set_level(logging.WARNING, logger="relaycast.metrics")
    running = asyncio.create_task(metrics.run(stop))
    try:
        await wait_until(lambda: client.zcard("rc:hist:raw:box-w|uptime") >= 2, 20, "samples")
        assert calls >= 3 and not running.done()  # the first was refused, not the loop
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
        client.close()
        await metrics.close()
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == ["snapshot of box-w refused: uptime: value 1e+301 is beyond +-1e+300"]
