"""Gateways behind the real load balancer: rolling restarts lose nothing, and a new
gateway takes its share of the load.

Three gateway processes sit behind haproxy running deploy/haproxy.cfg (the compose
stack's config) on 127.0.0.1. A few hundred SDK clients connect through it, and a
publisher sends numbered messages all along.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import Callable

from shared.protocol import CloseCode
from tests.deploy.loadbalancer import SERVERS, LoadBalancer
from tests.deploy.subscribers import Crowd, spread
from tests.helpers import GatewayProcess
from tests.numbered import NumberedPublisher

CLIENTS = 300
DRAIN = 3.0
PUBLISH_INTERVAL = 0.05
MAX_AGE = 6.0


async def start_gateway(
    gateways: list[GatewayProcess], redis_url: str, port: int, **settings: object
) -> GatewayProcess:
    gateway = GatewayProcess(redis_url, port=port, **settings)
    gateways.append(gateway)
    gateway.spawn()
    await asyncio.to_thread(gateway.wait_ready)
    return gateway


async def connections(gateway: GatewayProcess) -> int:
    """Open connections on a gateway, from its /readyz (0 when it does not answer)."""
    status, body = await asyncio.to_thread(gateway.get, "/readyz")
    return int(json.loads(body)["connections"]) if status in (200, 503) and body else 0


def assert_every_message_once_in_order(crowd: Crowd, sent: int) -> None:
    expected = list(range(1, sent + 1))
    wrong = [s.numbers for s in crowd.subscribers if s.numbers != expected]
    assert not wrong, (
        f"{len(wrong)} of {len(crowd)} clients saw a wrong sequence; first: "
        f"{len(wrong[0])} messages, duplicates {len(wrong[0]) - len(set(wrong[0]))}, "
        f"missing {sorted(set(expected) - set(wrong[0]))[:10]}"
    )
    assert sum(s.lost for s in crowd.subscribers) == 0, "a resume was not recovered"
    # The SDK drops a repeated offset before the application sees it; the gateways must
    # not have sent one in the first place.
    assert sum(s.client.duplicates for s in crowd.subscribers) == 0, "a gateway sent a repeat"


async def test_rolling_every_gateway_loses_no_message_and_spreads_reconnects(
    redis_server, gateways, load_balancer: LoadBalancer, report_figure: Callable[[str], None]
):
    lb = load_balancer
    channel = "tasks.deploy.rolling"
    fleet = list(
        await asyncio.gather(
            *(
                start_gateway(gateways, redis_server.url, p, drain_seconds=DRAIN)
                for p in lb.gateway_ports
            )
        )
    )
    for server in SERVERS:
        await asyncio.to_thread(lb.wait_status, server, "UP")
    crowd = Crowd(lb.ws_url, channel, CLIENTS)
    publisher = NumberedPublisher(redis_server.url, channel, PUBLISH_INTERVAL)
    try:
        await crowd.start()
        publisher.start()
        rolls = []
        for i, server in enumerate(SERVERS):
            old = fleet[i]
            held = await connections(old)
            started = time.monotonic()
            old.signal(signal.SIGTERM)
            # It exits after its drain; the wait bounds that generously (a hang guard).
            code = await asyncio.to_thread(old.wait_exit, DRAIN + 15)
            exited = time.monotonic() - started
            assert code == 0, old.log_tail()
            fleet[i] = await start_gateway(
                gateways, redis_server.url, old.port, drain_seconds=DRAIN
            )
            await asyncio.to_thread(lb.wait_status, server, "UP")
            rolls.append((started, held, exited))
        await asyncio.sleep(0.5)
        sent = await publisher.stop()
        await crowd.wait(lambda s: len(s.numbers) >= sent, 30, "every message delivered")

        assert_every_message_once_in_order(crowd, sent)
        assert crowd.connected() == CLIENTS
        figures = []
        ends = [r[0] for r in rolls[1:]] + [time.monotonic()]
        for (started, held, exited), end in zip(rolls, ends, strict=True):
            # The clients of the drained gateway are the ones it closed with 1012 (a roll's
            # window runs until the next SIGTERM, which comes only after the replacement is
            # up: a close seen late by a busy client process still falls in its own roll).
            closed = crowd.closed_between(started, end, CloseCode.SERVICE_RESTART)
            clients = {id(sub) for sub, _ in closed}
            assert held > 0 and held * 0.95 <= len(closed) <= held * 1.05, (held, len(closed))
            assert len(clients) == len(closed), "a client was told to reconnect twice"
            # Every one of them came back, once, through the balancer (whenever its jittered
            # backoff and a busy machine let it: the end of the test bounds it generously)...
            again = [sub.resubscribes_after(t) for sub, t in closed]
            assert all(len(times) == 1 for times in again), sorted(len(t) for t in again)
            # ...spread over the drain window, not in one instant: uvicorn alone closes them
            # all at once, and the clients' first backoff (under 0.1 s) would put them all
            # in one tenth of the window. The gateway spreads the closes evenly; a busy
            # machine only batches what the clients see, so the bounds are generous: half
            # the window between the 10th and 90th percentile, at most half in any tenth.
            s = spread([times[0] for times in again], started, DRAIN)
            assert s["p10_p90"] >= 0.5 * DRAIN, s
            assert s["max_bin_share"] <= 0.5, s
            figures.append(
                f"{len(closed)}/{held} closed and back in {s['first']:.2f}-{s['last']:.2f}s "
                f"(p10-p90 {s['p10_p90']:.2f}s, "
                f"busiest {DRAIN / 10:.1f}s slice {s['max_bin_share']:.0%}, "
                f"exit {exited:.1f}s)"
            )
        report_figure(
            f"rolling restart: {CLIENTS} clients, {sent} messages, 3 gateways rolled with "
            f"{DRAIN:.0f}s drains, 0 lost/duplicated; reconnects per roll: " + "; ".join(figures)
        )
    finally:
        await publisher.stop()
        await crowd.close()


async def test_a_new_gateway_takes_a_fair_share_within_the_max_connection_age(
    redis_server, gateways, load_balancer: LoadBalancer, report_figure: Callable[[str], None]
):
    lb = load_balancer
    channel = "tasks.deploy.scale"
    settings = {
        "drain_seconds": 1,
        "max_connection_age": MAX_AGE,
        "max_connection_age_jitter": 0.5,
    }
    first = await asyncio.gather(
        *(start_gateway(gateways, redis_server.url, p, **settings) for p in lb.gateway_ports[:2])
    )
    await asyncio.to_thread(lb.wait_status, SERVERS[1], "UP")
    await asyncio.to_thread(lb.wait_status, SERVERS[2], "DOWN")
    crowd = Crowd(lb.ws_url, channel, CLIENTS)
    publisher = NumberedPublisher(redis_server.url, channel, PUBLISH_INTERVAL)
    try:
        await crowd.start()
        publisher.start()
        new = await start_gateway(gateways, redis_server.url, lb.gateway_ports[2], **settings)
        await asyncio.to_thread(lb.wait_status, SERVERS[2], "UP")
        joined = time.monotonic()
        fleet = [*first, new]
        deadline = joined + MAX_AGE + 1
        fair_at = None
        while True:
            counts = await asyncio.gather(*(connections(g) for g in fleet))
            share = counts[2] / max(1, sum(counts))
            if fair_at is None and share >= 0.3:
                fair_at = time.monotonic() - joined
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.25)
        assert share >= 0.25, f"new gateway holds {counts[2]} of {sum(counts)}: {counts}"

        sent = await publisher.stop()
        await crowd.wait(lambda s: len(s.numbers) >= sent, 30, "every message delivered")
        assert_every_message_once_in_order(crowd, sent)
        reached = f"{fair_at:.1f}s" if fair_at is not None else "never"
        report_figure(
            f"scale-out 2->3: {CLIENTS} clients, max connection age {MAX_AGE:.0f}s "
            f"(jitter 50%): new gateway reached 30% after {reached}, held {share:.0%} "
            f"({counts}) {MAX_AGE + 1:.0f}s after joining; {sent} messages, 0 lost/duplicated"
        )
    finally:
        await publisher.stop()
        await crowd.close()
