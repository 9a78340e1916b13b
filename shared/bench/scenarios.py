"""The bench scenarios; each builds a :class:`~shared.bench.rig.Rig` run and returns figures.

Every scenario is bounded in time (its publish window plus a collection grace) and the
rig stops every process it started when the scenario returns or fails. Channel names
carry a run id, so numbering starts at 1 and a message's number equals its offset.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared.bench import report
from shared.bench.pubload import PublishConfig, PublishResult
from shared.bench.rig import LoadGroup, Rig
from shared.bench.wsload import LoadStats

__all__ = ["NAMESPACES", "SCENARIOS", "Params"]

NAMESPACES = json.dumps(
    [
        {"pattern": "benchplain.*", "history_size": 0, "history_ttl": 600},
        {"pattern": "bench.*", "history_size": 10000, "history_ttl": 600},
    ]
)
"""Gateway and publisher namespaces: ``bench.*`` keeps history, ``benchplain.*`` none."""


@dataclass
class Params:
    """Knobs of a scenario (the command line's flags)."""

    clients: int = 1000
    rate: float = 100_000
    """Deliveries per second offered (publish rate times subscribers per channel)."""
    duration: float = 10.0
    size: int = 200
    history: bool = True
    channels: int = 1
    """fanout: channels the clients are spread over."""
    freeze: float = 3.0
    """overload: seconds the gateway is frozen halfway through."""
    backlog: int = 1000
    heartbeat: float = 5.0
    rates: tuple[float, ...] = (25_000, 50_000, 100_000, 150_000, 200_000, 250_000, 300_000)
    p99_bound_ms: float = 30.0


def _run_id() -> str:
    return f"{os.getpid():x}{int(time.time() * 1000) % 0xFFFFFF:x}"


def _channel(params: Params, suffix: str) -> str:
    return f"{'bench' if params.history else 'benchplain'}.{_run_id()}.{suffix}"


def _settings(**extra: Any) -> dict[str, Any]:
    """Gateway settings: the bench namespaces, development mode (anonymous clients), and
    no admission limits (``handshake_rate`` would refuse a fast connect ramp)."""
    limits = {"mode": "development", "handshake_rate": 0, "max_connections": 0}
    return {"namespaces": NAMESPACES, "log_level": "warning", **limits, **extra}


def _merge(stats: list[LoadStats]) -> dict[str, Any]:
    closes: dict[str, int] = {}
    for s in stats:
        for code, n in s.closes.items():
            closes[code] = closes.get(code, 0) + n
    return {
        "received": sum(s.received for s in stats),
        "lost": sum(s.lost for s in stats),
        "duplicates": sum(s.duplicates for s in stats),
        "missing": sum(s.missing for s in stats),
        "open": sum(s.open for s in stats),
        "closes": closes,
        "reconnects": sum(s.reconnects for s in stats),
        "not_recovered": sum(s.not_recovered for s in stats),
        "load_cpu": sum(s.cpu_seconds for s in stats),
        "last_recv": max((s.last_recv for s in stats), default=0.0),
        "latency_ms": report.percentiles(s.latencies for s in stats),
    }


def _connect(rig: Rig, group: LoadGroup, result: dict[str, Any]) -> None:
    replies = group.ask("connect", timeout=300)
    connected = sum(r["connected"] for r in replies)
    seconds = max(r["seconds"] for r in replies)
    result["connections"] = connected
    result["connect_seconds"] = round(seconds, 3)
    result["connect_rate"] = round(connected / seconds) if seconds else 0
    result["connect_failed"] = sum(r["failed"] for r in replies)
    errors: dict[str, int] = {}
    for reply in replies:
        for key, n in reply.get("errors", {}).items():
            errors[key] = errors.get(key, 0) + n
    if errors:
        result["connect_errors"] = errors
    result["loaders"] = len(replies)


def _stream(
    rig: Rig,
    group: LoadGroup,
    channels: list[str],
    subscribers: int,
    params: Params,
    rate: float,
    first: int = 1,
) -> tuple[dict[str, Any], PublishResult]:
    """Publish at ``rate`` deliveries/s for ``params.duration``; collect what arrived.

    ``subscribers`` is the number of clients on each channel.
    """
    group.ask("reset")
    config = PublishConfig(
        redis_url=rig.redis_url,
        channels=channels,
        size=params.size,
        rate=rate / subscribers,
        duration=params.duration,
        first=first,
        namespaces=NAMESPACES,
    )
    pipe = rig.publisher(config)
    before = rig.metrics()
    with rig.measure() as used:
        start_wall = time.time()
        pipe.send("go")
        published: PublishResult = pipe.recv()
        stats = group.ask(
            "collect", {"last": published.last, "timeout": max(10.0, params.duration)}, 600
        )
    cpu, wall = used["cpu"], used["wall"]
    after = rig.metrics()
    merged = _merge(stats)
    received = merged["received"]
    span = max(merged["last_recv"] - start_wall, 1e-9)
    out: dict[str, Any] = {
        "offered_per_s": round(rate),
        "published": published.published,
        "publish_per_s": round(published.published / max(published.seconds, 1e-9)),
        "deliveries": received,
        "deliveries_per_s": round(received / span),
        "lost": merged["lost"],
        "duplicates": merged["duplicates"],
        "missing": merged["missing"],
        "closes": merged["closes"],
        "reconnects": merged["reconnects"],
        "latency_ms": merged["latency_ms"],
        "gateway_latency_ms": report.histogram_quantiles(before, after),
        "gateway_cpu_pct": round(100 * cpu / wall, 1),
        "gateway_waited_pct": round(100 * used["waited"] / wall, 1),
        "load_cpu_pct": round(100 * merged["load_cpu"] / wall, 1),
        "publisher_cpu_pct": round(100 * published.cpu_seconds / wall, 1),
        "broker_reconnects": after.get("relaycast_broker_reconnects_total", 0)
        - before.get("relaycast_broker_reconnects_total", 0),
    }
    if received and rig.gateways[0].pid:
        out["gateway_us_per_delivery"] = round(cpu / received * 1e6, 3)
        out["gateway_cpu_s_per_100k"] = round(cpu / received * 1e5, 4)
    problems = [f"publisher: {e}" for e in published.errors]
    for key in ("lost", "duplicates", "missing"):
        if merged[key]:
            problems.append(f"{merged[key]} messages {key}")
    if merged["not_recovered"]:
        problems.append(f"{merged['not_recovered']} resumes not recovered")
    out["problems"] = problems
    return out, published


def _begin(rig: Rig, params: Params, title: str, name: str, **settings: Any) -> dict[str, Any]:
    rig.start(_settings(**settings), fds=params.clients)
    return {
        "scenario": name,
        "title": title,
        "params": {k: v for k, v in vars(params).items() if k != "rates"},
        "machine": report.machine(rig.gateway_cpus, rig.load_cpus),
        "gateways": len(rig.gateways),
    }


def fanout(rig: Rig, params: Params) -> dict[str, Any]:
    """Every client on one channel (or spread evenly over ``params.channels`` channels)."""
    kind = "history" if params.history else "plain"
    count = max(1, min(params.channels, params.clients))
    where = f"one {kind} channel" if count == 1 else f"{count} {kind} channels"
    result = _begin(
        rig,
        params,
        f"{params.clients} clients on {where}, {params.size}-byte messages,"
        f" {params.rate:,.0f} deliveries/s offered for {params.duration:g} s",
        "fanout",
    )
    names = [_channel(params, f"fan{i}") for i in range(count)]
    group = rig.load(params.clients, names)
    rss0 = rig.gateway_rss()
    _connect(rig, group, result)
    if rss0 and result["connections"]:
        result["rss_per_conn_kb"] = round(
            (rig.gateway_rss() - rss0) / result["connections"] / 1024, 2
        )
        result["gateway_rss_mb"] = round(rig.gateway_rss() / 2**20, 1)
    flow, _ = _stream(rig, group, names, params.clients // count, params, params.rate)
    result.update(flow)
    return result


def channels(rig: Rig, params: Params) -> dict[str, Any]:
    """Every client on a channel of its own."""
    result = _begin(
        rig,
        params,
        f"{params.clients} clients, each on its own channel, {params.size}-byte messages,"
        f" {params.rate:,.0f} deliveries/s offered for {params.duration:g} s",
        "channels",
    )
    run = _run_id()
    prefix = "bench" if params.history else "benchplain"
    names = [f"{prefix}.{run}.c{i}" for i in range(params.clients)]
    group = rig.load(params.clients, names)
    _connect(rig, group, result)
    flow, _ = _stream(rig, group, names, 1, params, params.rate)
    result.update(flow)
    return result


def idle(rig: Rig, params: Params) -> dict[str, Any]:
    """Connections that only hold a subscription: memory each, and heartbeat CPU."""
    result = _begin(
        rig,
        params,
        f"{params.clients:,} idle connections, heartbeat every {params.heartbeat:g} s,"
        f" held {params.duration:g} s",
        "idle",
        heartbeat_interval=params.heartbeat,
    )
    channel = _channel(params, "idle")
    group = rig.load(params.clients, [channel], keepalive=params.heartbeat)
    time.sleep(1.0)
    rss0 = rig.gateway_rss()
    _connect(rig, group, result)
    group.ask("reset")
    time.sleep(1.0)
    rss1 = rig.gateway_rss()
    with rig.measure() as used:
        time.sleep(params.duration)
    stats = _merge(group.ask("collect", {"last": 0, "timeout": 5}))
    connections = result["connections"] or 1
    if rss0:
        result["rss_per_conn_kb"] = round((rss1 - rss0) / connections / 1024, 2)
        result["gateway_rss_mb"] = round(rss1 / 2**20, 1)
    if rig.gateways[0].pid:
        result["gateway_cpu_pct"] = round(100 * used["cpu"] / used["wall"], 2)
        result["gateway_waited_pct"] = round(100 * used["waited"] / used["wall"], 1)
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
    result = _begin(
        rig,
        params,
        f"{params.clients} clients resuming a backlog of {params.backlog} messages"
        f" ({params.size} bytes) from one channel",
        "replay",
        replay_cap=max(10_000, params.backlog),
    )
    channel = _channel(params, "replay")
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
        _connect(rig, group, result)
        stats = _merge(group.ask("collect", {"last": published.last, "timeout": 60}, 600))
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
    result = _begin(
        rig,
        params,
        f"{params.clients} clients on one channel, {params.duration:g} s per step,"
        f" p99 bound {params.p99_bound_ms:g} ms",
        "sweep",
    )
    channel = _channel(params, "sweep")
    group = rig.load(params.clients, [channel])
    _connect(rig, group, result)
    steps = []
    first = 1
    sustained = 0.0
    for rate in params.rates:
        flow, published = _stream(rig, group, [channel], params.clients, params, rate, first)
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
    result = _begin(
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
    channel = _channel(params, "over")
    group = rig.load(params.clients, [channel])
    _connect(rig, group, result)
    pids = [g.pid for g in rig.gateways if g.proc is not None and g.pid]
    freezer = threading.Timer(params.duration / 2, _freeze, (pids, params.freeze))
    freezer.start()
    try:
        flow, _ = _stream(rig, group, [channel], params.clients, params, params.rate)
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
