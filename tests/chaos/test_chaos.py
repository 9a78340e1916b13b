"""Chaos: nothing lost, nothing duplicated, while gateways and Redis links die under load.

A private Redis, three gateways, publishers sending numbered messages at a steady rate
on several channels, and a few hundred clients that resume by offset, each starting on a
different gateway and moving round-robin on every reconnect. During the run: one gateway
is killed with SIGKILL, another drained with SIGTERM (both come back later), the
gateways' Redis pub/sub connections are killed twice with CLIENT KILL, and a few clients
stall until they are cut off as slow. At the end every client must hold every message of
its channels exactly once, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections import defaultdict

import redis.asyncio as aioredis

from gateway.client import Client, Message, Subscribed
from publisher import AsyncPublisher
from tests.chaos.stalling import StallingClient
from tests.helpers import GatewayProcess, wait_until

CLIENTS = 200
STALLERS = 6
CHANNELS = [f"chaos.c{i}" for i in range(4)]
BULK = "chaos.bulk"  # large messages, so that a stalled client's buffers fill quickly
RATE = 10  # messages per second per channel
BULK_RATE = 60
BULK_PAD = "x" * 16000
AFTER_LAST_KILL = 2.0  # publishing goes on this long after the last chaos event


class Tally:
    """One SDK client's view: received numbers per channel, and what went wrong."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.received: dict[str, list[int]] = defaultdict(list)
        self.not_recovered = 0
        self.subscribed: set[str] = set()

    async def consume(self) -> None:
        async for event in self.client:
            if isinstance(event, Message):
                self.received[event.channel].append(int(event.data["n"]))
            elif isinstance(event, Subscribed):
                self.subscribed.add(event.channel)
                self.not_recovered += event.recovered is False


def _missing(got: list[int], sent: int) -> str:
    gone = sorted(set(range(1, sent + 1)) - set(got))
    return f"{gone[0]}..{gone[-1]} ({len(gone)})" if gone else "none"


async def publish_steadily(
    url: str, channel: str, rate: float, pad: str, stop: asyncio.Event
) -> int:
    """Publish 1, 2, 3... on ``channel`` at ``rate`` per second until ``stop`` is set."""
    sent = 0
    async with AsyncPublisher(url) as publisher:
        start = time.monotonic()
        while not stop.is_set():
            sent += 1
            await publisher.publish(channel, {"n": sent, "pad": pad} if pad else {"n": sent})
            await asyncio.sleep(max(0.0, start + sent / rate - time.monotonic()))
    return sent


# Enough history that a staller cut off after its stall still resumes from it.
NAMESPACES = '[{"pattern": "chaos.bulk", "history_size": 3000}, {"pattern": "*"}]'


async def test_no_message_lost_or_duplicated_through_chaos(
    redis_server, gateways, monkeypatch, report_figure
):
    monkeypatch.setenv("RELAYCAST_NAMESPACES", NAMESPACES)  # the publishers' settings too
    common = {
        "namespaces": NAMESPACES,
        "drain_seconds": 3,
        "probe_interval": 0.5,
        "probe_timeout": 3,
        "outbox_messages": 256,
        "outbox_bytes": 512 * 1024,
    }
    gws = await asyncio.gather(
        *(
            asyncio.to_thread(GatewayProcess.start, gateways, redis_server.url, **common)
            for _ in range(3)
        )
    )
    urls = [g.ws_url for g in gws]
    ports = [g.port for g in gws]

    tallies = []
    for i in range(CLIENTS):
        channels = [CHANNELS[i % 4], CHANNELS[(i + 1) % 4]]
        rotated = urls[i % 3 :] + urls[: i % 3]
        client = Client(rotated, channels, backoff_base=0.05, backoff_cap=1.0)
        tallies.append(Tally(client))
    stallers = [
        StallingClient(ports[i % 3 :] + ports[: i % 3], [BULK, CHANNELS[i % 4]], stall=8.0)
        for i in range(STALLERS)
    ]
    stop = asyncio.Event()  # the publishers stop, and so do the stalls
    stop_stallers = asyncio.Event()
    for tally in tallies:
        await tally.client.start()
    consumers = [asyncio.create_task(t.consume()) for t in tallies]
    staller_tasks = [asyncio.create_task(s.run(stop_stallers, stop)) for s in stallers]
    await asyncio.gather(*(t.client.wait_connected(30) for t in tallies))
    await wait_until(  # every subscribe answered before the first publish
        lambda: (
            all(t.subscribed >= set(t.client.channels) for t in tallies)
            and all(set(s.positions) >= set(s.channels) for s in stallers)
        ),
        30,
        "every subscription confirmed",
    )

    publishers = [
        asyncio.create_task(publish_steadily(redis_server.url, ch, RATE, "", stop))
        for ch in CHANNELS
    ] + [asyncio.create_task(publish_steadily(redis_server.url, BULK, BULK_RATE, BULK_PAD, stop))]

    admin = aioredis.Redis.from_url(redis_server.url)
    killed, drained = gws[0], gws[1]
    await asyncio.sleep(3)
    killed.signal(signal.SIGKILL)  # a crash: its clients reconnect elsewhere and resume
    await asyncio.sleep(2)
    await asyncio.to_thread(killed.restart)
    await asyncio.sleep(2)
    drained.signal(signal.SIGTERM)  # a deploy: 1012 spread over the drain window
    await asyncio.sleep(2)
    kills = await admin.client_kill_filter(_type="pubsub")  # every gateway's pub/sub link
    await asyncio.to_thread(drained.wait_exit, 15)
    await asyncio.to_thread(drained.restart)
    await asyncio.sleep(2)
    kills += await admin.client_kill_filter(_type="pubsub")
    await asyncio.sleep(AFTER_LAST_KILL)  # messages that need the re-made subscriptions
    stop.set()
    sent = dict(zip([*CHANNELS, BULK], await asyncio.gather(*publishers), strict=True))

    def complete() -> bool:
        return all(
            len(t.received[ch]) >= sent[ch] for t in tallies for ch in t.client.channels
        ) and all(len(s.received[ch]) >= sent[ch] for s in stallers for ch in s.channels)

    with contextlib.suppress(AssertionError):  # judged below, with the details
        await wait_until(complete, 40, "every client to hold every message")
    stop_stallers.set()
    await asyncio.gather(*staller_tasks)
    for tally in tallies:
        await tally.client.close()
    await asyncio.gather(*consumers)
    await admin.aclose()

    published = sum(sent.values())
    delivered = lost = duplicated = not_recovered = resumes = 0
    views = [
        (
            t.received,
            t.client.channels,
            t.client.duplicates,
            t.not_recovered,
            t.client.connects - 1,
            (t.client.state, t.client.last_close),
        )
        for t in tallies
    ]
    views += [
        (
            s.received,
            s.channels,
            s.duplicates,
            s.not_recovered,
            s.connects - 1,
            (s.close_codes[:8], s.trace[:12]),
        )
        for s in stallers
    ]
    bad = []
    for received, channels, dups, unrecovered, reconnects, state in views:
        for ch in channels:
            got = received[ch]
            delivered += len(got)
            lost += len(set(range(1, sent[ch] + 1)) - set(got))
            duplicated += len(got) - len(set(got))
            if got != list(range(1, sent[ch] + 1)) and len(bad) < 3:
                bad.append((ch, len(got), sent[ch], _missing(got, sent[ch]), state))
        duplicated += dups
        not_recovered += unrecovered
        resumes += reconnects
    slow = sum(s.close_codes.count(4001) for s in stallers)
    slow += sum(g.metric("relaycast_slow_client_disconnects_total") for g in gws)
    report_figure(
        f"chaos: published {published} messages on {len(sent)} channels; "
        f"{CLIENTS + STALLERS} clients, delivered {delivered}, lost {lost}, "
        f"duplicated {duplicated}, resumes {resumes}, not recovered {not_recovered}, "
        f"slow-client cut-offs {int(slow)}, pub/sub links killed {kills}"
    )
    assert not bad, f"wrong streams (channel, got, sent, missing, client state): {bad}"
    assert lost == 0 and duplicated == 0 and not_recovered == 0
    assert resumes >= CLIENTS // 3, "the chaos did not force reconnects"
    assert slow >= 1, "no staller was cut off as slow"
    assert kills >= 2
