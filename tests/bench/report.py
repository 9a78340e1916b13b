"""Figures of a bench run: percentiles, the human table, JSON lines for the record.

A result is a flat ``dict`` (JSON-ready) with the keys :func:`table` knows; a scenario
fills what it measured and leaves the rest out.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import os
import platform
import subprocess
import sys
from array import array
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "check_recordable",
    "histogram_quantiles",
    "machine",
    "percentiles",
    "record",
    "source_state",
    "table",
]

_BUCKET = "relaycast_publish_to_send_seconds_bucket"


def percentiles(samples: Iterable[bytes]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds of ``array('d')`` sample bytes from every process."""
    values = array("d")
    for chunk in samples:
        values.frombytes(chunk)
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * 1000, 2)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "max": round(ordered[-1] * 1000, 2)}


def histogram_quantiles(
    before: Mapping[str, float], after: Mapping[str, float]
) -> dict[str, float]:
    """p50/p99 (ms, bucket upper bounds) of the gateway's publish-to-send histogram."""
    buckets: list[tuple[float, float]] = []
    for name, value in after.items():
        if name.startswith(_BUCKET + "{"):
            le = name.split('le="', 1)[1].split('"', 1)[0]
            bound = float("inf") if le == "+Inf" else float(le)
            buckets.append((bound, value - before.get(name, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return {}
    total = buckets[-1][1]
    out = {}
    for label, q in (("p50", 0.5), ("p99", 0.99)):
        bound = next(b for b, count in buckets if count >= q * total)
        out[label] = bound * 1000 if bound != float("inf") else float("inf")
    return out


def machine(gateway_cpus: list[int] | None, load_cpus: list[int] | None) -> dict[str, Any]:
    """What the figures came from."""
    model = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # uvicorn runs the gateways on uvloop when this interpreter has it (loop="auto").
        "event_loop": "uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        "gateway_cpus": gateway_cpus,
        "load_cpus": load_cpus,
    }


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _ms(lat: Mapping[str, float]) -> str:
    return "  ".join(f"{k} {v:.1f} ms" for k, v in lat.items())


def table(result: Mapping[str, Any]) -> str:
    """The human summary of one result."""
    lines = [f"{result['scenario']}: {result.get('title', '')}"]

    def row(label: str, text: str) -> None:
        lines.append(f"  {label:<18}{text}")

    if "connections" in result:
        text = f"{_n(result['connections'])} open"
        if result.get("connect_seconds"):
            text += (
                f", made in {result['connect_seconds']:.2f} s"
                f" ({_n(result.get('connect_rate', 0))}/s)"
            )
        if result.get("connect_failed"):
            text += f", {result['connect_failed']} failed"
        row("connections", text)
    if "deliveries" in result:
        text = f"{_n(result['deliveries'])} ({_n(result.get('deliveries_per_s', 0))}/s"
        if result.get("offered_per_s"):
            text += f" of {_n(result['offered_per_s'])}/s offered"
        row("deliveries", text + ")")
        row(
            "loss",
            f"lost {result.get('lost', 0)}  duplicates {result.get('duplicates', 0)}"
            f"  missing at end {result.get('missing', 0)}",
        )
    if result.get("closes"):
        closes = ", ".join(f"{code}: {n}" for code, n in sorted(result["closes"].items()))
        row("closed by gateway", f"{closes} (reconnected and resumed: {result['reconnects']})")
    if result.get("latency_ms"):
        row("latency", _ms(result["latency_ms"]))
    if result.get("gateway_latency_ms"):
        row("gateway histogram", _ms(result["gateway_latency_ms"]) + " (bucket bounds)")
    if "gateway_us_per_delivery" in result:
        row(
            "gateway CPU",
            f"{result['gateway_us_per_delivery']:.2f} µs per delivery"
            f" ({result.get('gateway_kernel_us_per_delivery', 0):.2f} of them in the kernel;"
            f" {result['gateway_cpu_s_per_100k']:.3f} s per 100k),"
            f" {result['gateway_cpu_pct']:.0f}% of a core",
        )
    elif "gateway_cpu_pct" in result:
        row("gateway CPU", f"{result['gateway_cpu_pct']:.2f}% of a core")
    if "gateway_waited_pct" in result:
        row(
            "gateway starved",
            f"{result['gateway_waited_pct']:.0f}% of the time runnable but waiting for its CPU"
            " (other work on the machine; high values make every figure unreliable)",
        )
    if "rss_per_conn_kb" in result:
        row(
            "gateway memory",
            f"{result['rss_per_conn_kb']:.2f} KB RSS per connection"
            f" ({result['gateway_rss_mb']:.1f} MB total)",
        )
    for phase in ("ramp", "hold"):
        if f"{phase}_gc_collections" in result:
            row(
                f"gc pauses ({phase})",
                f"{result[f'{phase}_gc_collections']} collections,"
                f" longest {result[f'{phase}_gc_max_ms']:.1f} ms,"
                f" {result[f'{phase}_gc_total_ms']:.0f} ms in all;"
                f" CPU: longest {result[f'{phase}_gc_cpu_max_ms']:.1f} ms,"
                f" {result[f'{phase}_gc_cpu_total_ms']:.0f} ms in all;"
                f" {result[f'{phase}_gc_full_collections']} full,"
                f" longest {result[f'{phase}_gc_full_max_ms']:.1f} ms",
            )
    if "load_cpu_pct" in result:
        row(
            "load processes",
            f"{result['load_cpu_pct']:.0f}% of a core over {result.get('loaders', '?')} processes"
            f" (publisher {result.get('publisher_cpu_pct', 0):.0f}%)",
        )
    for key, label in (
        ("broker_reconnects", "broker reconnects"),
        ("watchdog_rounds_not_judged", "probe rounds late"),
        ("watchdog_drops", "probe link drops"),
        ("replayed", "replayed"),
        ("replay_seconds", "replay time"),
        ("sustained_per_s", "sustained"),
        ("ceiling_per_s", "load ceiling"),
        ("note", "note"),
    ):
        if key in result:
            row(label, str(result[key]))
    if result.get("steps"):
        for step in result["steps"]:
            lat = step.get("latency_ms", {})
            row(
                f"  {_n(step['offered_per_s'])}/s",
                f"got {_n(step['deliveries_per_s'])}/s  p99 {lat.get('p99', float('nan')):.1f} ms"
                f"  lost {step['lost']}  {'ok' if step['ok'] else 'FAIL'}",
            )
    for step in result.get("redis_steps", []):
        text = (
            f"{_n(step['publishes_per_s'])} publishes/s, {_n(step['deliveries_per_s'])}"
            f" deliveries/s; Redis {step['redis_cpu_share']:.0%} of a core,"
            f" {step['redis_us_per_publish']} µs per publish"
        )
        if "redis_us_per_delivery" in step:
            text += f" ({step['redis_us_per_delivery']} µs per delivery)"
        row(f"  {step['subscribers']} subscribed", text)
    if "timings_ms" in result:
        parts = (
            f"state: {result['record_bytes']:,}; indexes and statistics:"
            f" {result.get('index_bytes_per_task', 0):,}; the rest is channel history"
        )
        row("memory", f"{result['bytes_per_task']:,} bytes per task in all ({parts})")
        for name, t in result["timings_ms"].items():
            row("", f"{name}: p50 {t['p50']} ms, p99 {t['p99']} ms, max {t['max']} ms")
    if result.get("problems"):
        row("PROBLEMS", "; ".join(result["problems"]))
    return "\n".join(lines)


ROOT = Path(__file__).resolve().parents[2]
"""The checkout the bench runs from."""


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def source_state(record_path: str | Path | None = None) -> tuple[str, list[str]]:
    """The checkout's commit (short; empty outside git) and the tracked files that differ
    from it, the record file itself aside: appending to the record must not make the next
    run's figures look as if they came from changed code."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "", []
    status = _git("status", "--porcelain", "--untracked-files=no") or ""
    skip = None
    if record_path is not None:
        with contextlib.suppress(ValueError):
            skip = Path(record_path).resolve().relative_to(ROOT).as_posix()
    changed = [line[3:] for line in status.splitlines() if line[3:] != skip]
    return head.strip(), changed


def check_recordable(record_path: str | Path) -> str | None:
    """Why figures may not go into the record from this tree, or None when they may.

    A line of the record names the commit its figures came from, so the tree must be
    that commit: commit first, then measure."""
    commit, changed = source_state(record_path)
    if not commit:
        return f"{ROOT} is not a git checkout, so the record could not name a commit"
    if changed:
        return f"uncommitted changes ({', '.join(changed[:5])}): commit them first"
    return None


def record(result: Mapping[str, Any], path: str | Path, gateway_source: str | None = None) -> None:
    """Append ``result`` to a JSON-lines file (the record under version control), with the
    commit it came from, whether the tree was exactly that commit (``clean``), and the
    source tree the gateways ran from when it was another one."""
    commit, changed = source_state(path)
    line = dict(result)
    line.setdefault("time", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    line.setdefault("commit", commit)
    line.setdefault("clean", not changed)
    if gateway_source:
        line.setdefault("gateway_source", gateway_source)
    with open(path, "a") as out:
        out.write(json.dumps(line, sort_keys=True) + "\n")


def dump(result: Mapping[str, Any]) -> None:
    """Write ``result`` as one JSON line on stdout."""
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
