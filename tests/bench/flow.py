"""The steps every scenario shares: gateway settings, channel names, connecting the
clients, one publishing window with its figures, and the result's common fields."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any

from tests.bench import report
from tests.bench.loadspec import LoadStats
from tests.bench.rig import LoadGroup, Rig
from tests.numbered import PublishConfig, PublishResult

__all__ = [
    "NAMESPACES",
    "Params",
    "begin",
    "channel_name",
    "connect",
    "gateway_settings",
    "merge",
    "run_id",
    "stream",
]

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
    publishes: int = 200_000
    """redis: publishes per step."""
    compression: bool = False
    """fanout, channels, idle, hotpath: clients offer permessage-deflate."""
    subscribers: tuple[int, ...] = (0, 1, 4, 16)
    """redis: pub/sub connections standing in for gateways, one step each."""


def run_id() -> str:
    return f"{os.getpid():x}{int(time.time() * 1000) % 0xFFFFFF:x}"


def channel_name(params: Params, suffix: str) -> str:
    return f"{'bench' if params.history else 'benchplain'}.{run_id()}.{suffix}"


def gateway_settings(**extra: Any) -> dict[str, Any]:
    """Gateway settings: the bench namespaces, development mode (anonymous clients), and
    no admission limits (``handshake_rate`` would refuse a fast connect ramp)."""
    limits = {"mode": "development", "handshake_rate": 0, "max_connections": 0}
    return {"namespaces": NAMESPACES, "log_level": "warning", **limits, **extra}


def merge(stats: list[LoadStats]) -> dict[str, Any]:
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


def connect(rig: Rig, group: LoadGroup, result: dict[str, Any]) -> None:
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


def stream(
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
    merged = merge(stats)
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
    sent = after.get("relaycast_bytes_sent_total", 0) - before.get("relaycast_bytes_sent_total", 0)
    if received and sent:
        out["wire_bytes_per_delivery"] = round(sent / received, 1)
    if received and rig.gateways[0].pid:
        out["gateway_us_per_delivery"] = round(cpu / received * 1e6, 3)
        out["gateway_kernel_us_per_delivery"] = round(used["system"] / received * 1e6, 3)
        out["gateway_cpu_s_per_100k"] = round(cpu / received * 1e5, 4)
    problems = [f"publisher: {e}" for e in published.errors]
    for key in ("lost", "duplicates", "missing"):
        if merged[key]:
            problems.append(f"{merged[key]} messages {key}")
    if merged["not_recovered"]:
        problems.append(f"{merged['not_recovered']} resumes not recovered")
    out["problems"] = problems
    return out, published


def begin(rig: Rig, params: Params, title: str, name: str, **settings: Any) -> dict[str, Any]:
    rig.start(gateway_settings(**settings), fds=params.clients)
    return {
        "scenario": name,
        "title": title,
        "params": {k: v for k, v in vars(params).items() if k != "rates"},
        "machine": report.machine(rig.gateway_cpus, rig.load_cpus),
        "gateways": len(rig.gateways),
    }
