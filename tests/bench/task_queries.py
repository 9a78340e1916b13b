"""``relaycast bench tasks``: task queries and statistics over many tasks in one Redis.

Seeds ``--tasks`` tasks (default 100,000) through the task library, so each one has its
state, index entries, events and channel history exactly as in production: 5 types, 50
owners, a tag on one in ten, 70% completed, 10% failed, 5% cancelled, 5% running, the rest
queued. Then times, end to end from Python, pages of 50 under several filters (the first
page and one further by cursor) and a day's statistics of the project, and reports
p50/p99 of each and the Redis memory per task: in all (state, indexes, statistics, and
the history of the task's channels), of its state record, and of the indexes and
statistics.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from publisher.tasks import Tasks
from shared.localredis import LocalRedis
from shared.settings import Settings
from shared.state.task_query import TaskQuery
from shared.state.tasks import TaskStatus
from tests.bench import report
from tests.bench.rig import Rig
from tests.bench.scenarios import Params

__all__ = ["task_queries"]

PROJECT = "bench"
TYPES = ("build", "test", "deploy", "transcode", "pipeline")
ROUNDS = 200
BOUND_MS = 50.0


async def _seed(tasks: Tasks, count: int) -> None:
    rng = random.Random(7)

    async def one(i: int) -> None:
        task = await tasks.create(
            PROJECT,
            id=f"t{i}",
            type=TYPES[i % len(TYPES)],
            owner=f"user{rng.randrange(50)}",
            tags=["nightly"] if i % 10 == 0 else [],
        )
        fate = rng.random()
        if fate < 0.95:
            await task.start()
        if fate < 0.70:
            await task.complete()
        elif fate < 0.80:
            await task.fail("exit 1")
        elif fate < 0.85:
            await task.cancel()

    for start in range(0, count, 40):
        await asyncio.gather(*(one(i) for i in range(start, min(count, start + 40))))


async def _time(call: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    samples = []
    for _ in range(ROUNDS):
        begin = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - begin) * 1000)
    samples.sort()
    return {
        "p50": round(statistics.median(samples), 2),
        "p99": round(samples[int(len(samples) * 0.99) - 1], 2),
        "max": round(samples[-1], 2),
    }


async def _measure(url: str, count: int) -> dict[str, Any]:
    settings = Settings.load({"redis_url": url})
    with redis.Redis.from_url(url) as client:
        before = int(client.info("memory")["used_memory"])
    async with Tasks(settings=settings) as tasks:
        begin = time.monotonic()
        await _seed(tasks, count)
        seeded = time.monotonic() - begin
        with redis.Redis.from_url(url) as client:
            after = int(client.info("memory")["used_memory"])
            record = client.memory_usage(f"rc:{{tasks.{PROJECT}}}:task:t1", samples=0) or 0
            index = sum(
                client.memory_usage(key, samples=0) or 0
                for key in client.scan_iter(match="rc:tasks:ix:*", count=1000)
            )
        store = tasks.store
        second = await store.query(
            TaskQuery(project=PROJECT, status=TaskStatus.COMPLETED, limit=50)
        )
        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "page: project, status=completed": lambda: store.query(
                TaskQuery(project=PROJECT, status=TaskStatus.COMPLETED, limit=50)
            ),
            "page 2 by cursor": lambda: store.query(
                TaskQuery(
                    project=PROJECT, status=TaskStatus.COMPLETED, limit=50, cursor=second.cursor
                )
            ),
            "page: owner + type": lambda: store.query(
                TaskQuery(project=PROJECT, owner="user7", type="deploy", limit=50)
            ),
            "page: all projects, failed + tag": lambda: store.query(
                TaskQuery(status=TaskStatus.FAILED, tag="nightly", limit=50)
            ),
            "page: by last change": lambda: store.query(
                TaskQuery(project=PROJECT, sort="updated", limit=50)
            ),
            "stats: project, day": lambda: tasks.stats(PROJECT, window="day"),
        }
        timings = {name: await _time(call) for name, call in queries.items()}
    return {
        "seed_seconds": round(seeded, 1),
        "bytes_per_task": round((after - before) / count),
        "record_bytes": record,
        "index_bytes_per_task": round(index / count),
        "timings_ms": timings,
    }


def task_queries(rig: Rig, params: Params, count: int) -> dict[str, Any]:
    """Filtered pages and a day's statistics over ``count`` tasks; p99 must stay under
    50 ms each."""
    if not rig.redis_url:
        rig.redis = LocalRedis().start()
        rig.redis_url = rig.redis.url
    measured = asyncio.run(_measure(rig.redis_url, count))
    slow = [n for n, t in measured["timings_ms"].items() if t["p99"] >= BOUND_MS]
    return {
        "scenario": "tasks",
        "title": f"{count:,} tasks in one Redis: pages of 50 and a day's statistics,"
        f" {ROUNDS} calls each, timed from Python",
        "params": {"tasks": count, "rounds": ROUNDS},
        "machine": report.machine(None, None),
        **measured,
        "problems": [f"{name}: p99 over {BOUND_MS:g} ms" for name in slow],
    }
