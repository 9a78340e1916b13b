"""The bench scenarios; each builds a :class:`~tests.bench.rig.Rig` run and returns figures.

Every scenario is bounded in time (its publish window plus a collection grace) and the
rig stops every process it started when the scenario returns or fails. Channel names
carry a run id, so numbering starts at 1 and a message's number equals its offset.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from typing import Any

from tests.bench.flow import (
    NAMESPACES,
    Params,
    begin,
    channel_name,
    connect,
    merge,
    run_id,
    stream,
)
from tests.bench.rig import Rig
from tests.numbered import PublishConfig, PublishResult

__all__ = ["SCENARIOS", "Params"]


def fanout(rig: Rig, params: Params) -> dict[str, Any]:
    """Every client on one channel (or spread evenly over ``params.channels`` channels)."""
    kind = "history" if params.history else "plain"
    count = max(1, min(params.channels, params.clients))
    where = f"one {kind} channel" if count == 1 else f"{count} {kind} channels"
    result = begin(
        rig,
        params,
        f"{params.clients} clients on {where}, {params.size}-byte messages,"
        f" {params.rate:,.0f} deliveries/s offered for {params.duration:g} s",
        "fanout",
    )
    names = [channel_name(params, f"fan{i}") for i in range(count)]
    group = rig.load(params.clients, names, compression=params.compression)
    rss0 = rig.gateway_rss()
    connect(rig, group, result)
    if rss0 and result["connections"]:
        result["rss_per_conn_kb"] = round(
            (rig.gateway_rss() - rss0) / result["connections"] / 1024, 2
        )
        result["gateway_rss_mb"] = round(rig.gateway_rss() / 2**20, 1)
    flow, _ = stream(rig, group, names, params.clients // count, params, params.rate)
    result.update(flow)
    return result


def channels(rig: Rig, params: Params) -> dict[str, Any]:
    """Every client on a channel of its own."""
    result = begin(
        rig,
        params,
        f"{params.clients} clients, each on its own channel, {params.size}-byte messages,"
        f" {params.rate:,.0f} deliveries/s offered for {params.duration:g} s",
        "channels",
    )
    run = run_id()
    prefix = "bench" if params.history else "benchplain"
    names = [f"{prefix}.{run}.c{i}" for i in range(params.clients)]
    group = rig.load(params.clients, names, compression=params.compression)
    connect(rig, group, result)
    flow, _ = stream(rig, group, names, 1, params, params.rate)
    result.update(flow)
    return result


def idle(rig: Rig, params: Params) -> dict[str, Any]:
    """Connections that only hold a subscription: memory each, and heartbeat CPU.

    The hold is a whole number of heartbeat intervals, so it spans as many heartbeat
    rounds as intervals wherever it starts.
    """
    hold = max(1, round(params.duration / params.heartbeat)) * params.heartbeat
    result = begin(
        rig,
        params,
        f"{params.clients:,} idle connections, heartbeat every {params.heartbeat:g} s,"
        f" held {hold:g} s",
        "idle",
        heartbeat_interval=params.heartbeat,
    )
    channel = channel_name(params, "idle")
    group = rig.load(params.clients, [channel], compression=params.compression)
    time.sleep(1.0)
    rss0 = rig.gateway_rss()
    rig.gc_mark()
    connect(rig, group, result)
    result.update({f"ramp_{k}": v for k, v in rig.gc_pauses().items()})
    group.ask("reset")
    time.sleep(1.0)
    rss1 = rig.gateway_rss()
    rig.gc_mark()
    with rig.measure() as used:
        time.sleep(hold)
    stats = merge(group.ask("collect", {"last": 0, "timeout": 5}))
    connections = result["connections"] or 1
    if rss0:
        result["rss_per_conn_kb"] = round((rss1 - rss0) / connections / 1024, 2)
        result["gateway_rss_mb"] = round(rss1 / 2**20, 1)
    if rig.gateways[0].pid:
        result["gateway_cpu_pct"] = round(100 * used["cpu"] / used["wall"], 2)
        result["gateway_waited_pct"] = round(100 * used["waited"] / used["wall"], 1)
    result.update({f"hold_{k}": v for k, v in rig.gc_pauses().items()})
    result["load_cpu_pct"] = round(100 * stats["load_cpu"] / used["wall"], 1)
    result["open"] = stats["open"]
    result["closes"] = stats["closes"]
    result["reconnects"] = stats["reconnects"]
    if stats["open"] != result["connections"]:
        result["problems"] = [f"only {stats['open']} of {result['connections']} still open"]
    return result


def replay(rig: Rig, params: Params) -> dict[str, Any]:
    """Clients that resume from the start of a backlog of ``backlog`` messages."""
    params.history = True
    result = begin(
        rig,
        params,
        f"{params.clients} clients resuming a backlog of {params.backlog} messages"
        f" ({params.size} bytes) from one channel",
        "replay",
        replay_cap=max(10_000, params.backlog),
    )
    channel = channel_name(params, "replay")
    config = PublishConfig(
        redis_url=rig.redis_url,
        channels=[channel],
        size=params.size,
        rounds=params.backlog,
        duration=0,
        namespaces=NAMESPACES,
    )
    pipe = rig.publisher(config)
    pipe.send("go")
    published: PublishResult = pipe.recv()
    group = rig.load(params.clients, [channel], since_epoch=published.epochs[channel])
    with rig.measure() as used:
        connect(rig, group, result)
        stats = merge(group.ask("collect", {"last": published.last, "timeout": 60}, 600))
    received = stats["received"]
    result.update(
        {
            "replayed": received,
            "replay_seconds": round(used["wall"], 3),
            "deliveries": received,
            "deliveries_per_s": round(received / used["wall"]),
            "lost": stats["lost"],
            "duplicates": stats["duplicates"],
            "missing": stats["missing"],
            "gateway_cpu_pct": round(100 * used["cpu"] / used["wall"], 1),
            "gateway_waited_pct": round(100 * used["waited"] / used["wall"], 1),
            "load_cpu_pct": round(100 * stats["load_cpu"] / used["wall"], 1),
        }
    )
    if received and rig.gateways[0].pid:
        result["gateway_us_per_delivery"] = round(used["cpu"] / received * 1e6, 3)
        result["gateway_kernel_us_per_delivery"] = round(used["system"] / received * 1e6, 3)
        result["gateway_cpu_s_per_100k"] = round(used["cpu"] / received * 1e5, 4)
    result["problems"] = [
        f"{stats[key]} messages {key}" for key in ("lost", "duplicates", "missing") if stats[key]
    ]
    if stats["not_recovered"]:
        result["problems"].append(f"{stats['not_recovered']} resumes not recovered")
    return result


def sweep(rig: Rig, params: Params) -> dict[str, Any]:
    """Fan-out at each rate in turn; the highest that passed (no loss, p99 under the bound).

    Every step runs, so one noisy step on a shared machine does not end the sweep.
    """
    result = begin(
        rig,
        params,
        f"{params.clients} clients on one channel, {params.duration:g} s per step,"
        f" p99 bound {params.p99_bound_ms:g} ms",
        "sweep",
    )
    channel = channel_name(params, "sweep")
    group = rig.load(params.clients, [channel])
    connect(rig, group, result)
    steps = []
    first = 1
    sustained = 0.0
    for rate in params.rates:
        flow, published = stream(rig, group, [channel], params.clients, params, rate, first)
        first = published.last + 1
        p99 = flow["latency_ms"].get("p99", float("inf"))
        flow["ok"] = (
            not flow["lost"]
            and not flow["duplicates"]
            and not flow["missing"]
            and not flow["closes"]
            and p99 <= params.p99_bound_ms
        )
        steps.append(flow)
        if flow["ok"]:
            sustained = max(sustained, flow["deliveries_per_s"])
    result["steps"] = steps
    result["sustained_per_s"] = sustained
    return result


def overload(rig: Rig, params: Params) -> dict[str, Any]:
    """Offer more than the gateway can send, with a tight broker probe; count what breaks.

    Halfway through, every gateway the rig started is frozen (SIGSTOP) for ``params.freeze``
    seconds, longer than the probe deadline: as a long GC pause or a starved CPU would.
    When it runs again its watchdog wakes late and must not take the unanswered probe for
    a dead Redis.
    """
    result = begin(
        rig,
        params,
        f"{params.clients} clients on one channel, {params.rate:,.0f} deliveries/s offered"
        f" for {params.duration:g} s, gateway frozen {params.freeze:g} s halfway;"
        " broker probe every 0.5 s, deadline 2 s",
        "overload",
        probe_interval=0.5,
        probe_timeout=2.0,
        log_level="info",  # the watchdog logs each round it does not judge at info
    )
    channel = channel_name(params, "over")
    group = rig.load(params.clients, [channel])
    connect(rig, group, result)
    pids = [g.pid for g in rig.gateways if g.proc is not None and g.pid]
    freezer = threading.Timer(params.duration / 2, _freeze, (pids, params.freeze))
    freezer.start()
    try:
        flow, _ = stream(rig, group, [channel], params.clients, params, params.rate)
    finally:
        freezer.cancel()
        freezer.join()
    result.update(flow)
    log = "\n".join(g.log_text() for g in rig.gateways)
    result["watchdog_drops"] = log.count("silently dead")
    result["watchdog_rounds_not_judged"] = log.count("not judged")
    result["note"] = (
        "ok: no broker link dropped, nothing lost"
        if not flow["broker_reconnects"] and not flow["lost"] and not flow["missing"]
        else "FAIL: the gateway lost messages or dropped its broker link under overload"
    )
    return result


def _freeze(pids: list[int], seconds: float) -> None:
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


SCENARIOS = {
    "fanout": fanout,
    "channels": channels,
    "idle": idle,
    "replay": replay,
    "sweep": sweep,
    "overload": overload,
}
