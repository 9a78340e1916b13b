"""``relaycast bench history``: what metric history costs in Redis, and how fast it answers.

On a private redis-server it writes 30 days of one series through the real write path
(:meth:`~shared.state.history.HistoryStore.record`, the script that publishes): one
sample per 15 minutes for 29 days, then one every 5 s for the last day, so every tier of
the default ``history_tiers`` is as full as it ever gets. Then it measures each tier's
key with ``MEMORY USAGE`` and times ``--publishes`` queries of the last day (the 1-minute
tier: 1,440 points), each as a caller sees it: one ``query()`` with its Redis round trips.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import redis.asyncio as aioredis

from shared.localredis import LocalRedis
from shared.settings import Settings
from shared.state.history import HistoryStore
from shared.state.series import Sample
from tests.bench import report
from tests.bench.flow import Params
from tests.bench.rig import Rig

__all__ = ["history_bench"]

DAY = 86400.0


async def _run(url: str, queries: int) -> dict[str, Any]:
    settings = Settings.load({"redis_url": url})
    client = aioredis.Redis.from_url(url)
    store = HistoryStore(client, settings)
    try:
        now = time.time()
        written = 0
        started = time.perf_counter()
        for i in range(29 * 96):  # 29 days, one sample per 15 minutes
            when = now - 30 * DAY + i * 900
            await store.record("bench", [Sample(metric="load", value=i % 100)], 900, when)
            written += 1
        for i in range(int(DAY / 5)):  # the last day, one sample every 5 s
            when = now - DAY + i * 5
            await store.record("bench", [Sample(metric="load", value=i % 100)], 5, when)
            written += 1
        write_s = time.perf_counter() - started
        sizes: dict[str, int] = {}
        counts: dict[str, int] = {}
        for tier in store.tiers:
            key = store.tier_key(tier, "bench", "load")
            sizes[tier.name] = int(await client.memory_usage(key, samples=0) or 0)
            counts[tier.name] = int(await client.zcard(key))
        sizes["series hash"] = int(await client.memory_usage(store.series_key("bench"), 0) or 0)
        timings: list[float] = []
        points = 0
        for _ in range(queries):
            t0 = time.perf_counter()
            answer = await store.query("bench", "load", start=now - DAY, end=now)
            timings.append((time.perf_counter() - t0) * 1000)
            points = len(answer.points)
        timings.sort()
        return {
            "written": written,
            "write_us": round(write_s / written * 1e6, 1),
            "sizes": sizes,
            "counts": counts,
            "points": points,
            "step": answer.step,
            "latency_ms": {
                "p50": statistics.median(timings),
                "p99": timings[int(len(timings) * 0.99) - 1],
                "max": timings[-1],
            },
        }
    finally:
        await client.aclose()


def history_bench(rig: Rig, params: Params) -> dict[str, Any]:
    """Bytes per series in each tier, and the latency of a day's query."""
    queries = max(100, params.publishes // 100)
    result: dict[str, Any] = {
        "scenario": "history",
        "title": f"30 days of one metric in the default tiers; {queries} queries of the last day",
        "params": {"queries": queries},
        "machine": report.machine(rig.gateway_cpus, rig.load_cpus),
    }
    server = LocalRedis().start()
    try:
        figures = asyncio.run(_run(server.url, queries))
    finally:
        server.close()
    sizes, counts = figures["sizes"], figures["counts"]
    total = sum(sizes.values())
    result.update(
        latency_ms=figures["latency_ms"],
        history_bytes=sizes,
        history_points=counts,
        note=(
            f"{figures['points']} points at step {figures['step']:g} s per query;"
            f" {figures['written']} samples written at {figures['write_us']} µs each;"
            f" memory per series: "
            + ", ".join(f"{k} {v:,} B ({counts.get(k, '-')} points)" for k, v in sizes.items())
            + f"; {total:,} B in all, {total / 30:,.0f} B per day kept"
        ),
        problems=[] if figures["latency_ms"]["p99"] < 20 else ["p99 over 20 ms"],
    )
    return result
