"""Asking about tasks: filtered pages, and statistics over a window.

Each read is one Lua script over the indexes of :mod:`shared.state.task_scripts` (plus
one pipelined read of the states it selects), so its cost depends on the page, not on how
many tasks Redis holds. A page's ``cursor`` is opaque: pass it back unchanged with the same
filters for the next page; a page may hold fewer than ``limit`` tasks when the filters
match few of the tasks scanned, and ``cursor`` is None only at the end. A task's kept log
is read by :mod:`shared.state.task_log`.
"""

from __future__ import annotations

import base64
import binascii
import math
import time
from collections.abc import Callable
from typing import Any, Literal

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.settings import Settings
from shared.state.task_scripts import QUERY_LUA, STATS_KEEP, STATS_LUA
from shared.state.tasks import (
    InvalidTask,
    TaskState,
    TaskStatus,
    check_id,
)

__all__ = [
    "InvalidCursor",
    "SlowTask",
    "TaskPage",
    "TaskQuery",
    "TaskStats",
    "TypeStats",
    "query",
    "redis_call",
    "stats",
    "window_bounds",
]

WINDOWS = {"hour": 3600.0, "day": 86400.0, "week": 7 * 86400.0}
"""The named statistics windows, ending now."""

SCAN_BUDGET = 5000
"""Index entries one page may scan for matches before it returns with a cursor."""
_BIN_BASE = 1.1

_decode_state = msgspec.json.Decoder(TaskState).decode


class InvalidCursor(InvalidTask):
    """A cursor that no page of this query gave out."""

    code = "invalid_cursor"


class TaskQuery(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Which tasks: every filter given must match. ``since``/``until`` bound the sort time
    (creation or last change), Unix seconds."""

    project: str | None = None
    """None: every project."""
    status: TaskStatus | None = None
    type: str | None = None
    owner: str | None = None
    tag: str | None = None
    since: float | None = None
    until: float | None = None
    sort: Literal["created", "updated"] = "created"
    """Newest first by creation (``created``) or last change (``updated``) time."""
    limit: int = 50
    cursor: str | None = None


class TaskPage(msgspec.Struct, kw_only=True):
    """One page of tasks, newest first; ``cursor`` fetches the next (None: no more)."""

    tasks: list[TaskState]
    cursor: str | None = None


class SlowTask(msgspec.Struct, kw_only=True):
    project: str
    id: str
    name: str
    type: str
    status: TaskStatus
    duration: float


class TypeStats(msgspec.Struct, kw_only=True):
    """Tasks of one type that finished in the window. Durations are seconds (paused time
    not counted; within 5%), over completed and failed tasks."""

    type: str
    completed: int = 0
    failed: int = 0
    cancelled: int = 0
    success_rate: float | None = None
    throughput_per_hour: float = 0.0
    p50: float | None = None
    p90: float | None = None
    p99: float | None = None


class TaskStats(msgspec.Struct, kw_only=True):
    """A project's (or every project's) tasks over ``since``..``until``.

    ``by_status``: tasks created in the window by their status now. ``completed``,
    ``failed``, ``cancelled``, ``success_rate`` (completed / (completed + failed)) and
    ``types``: tasks that finished in the window, counted in whole minutes. ``running``:
    running now. ``slowest``: the slowest tasks that finished in the window.
    """

    project: str | None
    since: float
    until: float
    created: int
    by_status: dict[str, int]
    running: int
    completed: int
    failed: int
    cancelled: int
    success_rate: float | None
    types: list[TypeStats]
    slowest: list[SlowTask]


def window_bounds(
    window: str | None, since: float | None = None, until: float | None = None
) -> tuple[float, float]:
    """``(since, until)`` of a named window (``hour``, ``day``, ``week``) ending now, or of
    the bounds given (a missing ``until`` is now, a missing ``since`` a day before it).

    Raises:
        InvalidTask: an unknown window name.
    """
    now = time.time()
    if since is None and until is None:
        if window not in WINDOWS:
            raise InvalidTask(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
        return now - WINDOWS[window], now
    end = now if until is None else until
    return (end - WINDOWS["day"] if since is None else since), end


RecordKey = Callable[[str, str], str]


async def redis_call(awaitable: Any) -> Any:
    """Await a Redis command; BrokerUnavailable when Redis cannot be reached."""
    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        raise BrokerUnavailable(f"redis: {exc}") from exc


def _encode_cursor(score: bytes, member: bytes) -> str:
    raw = msgspec.json.encode([score.decode(), member.decode()])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        score, member = msgspec.json.decode(raw, type=tuple[str, str])
        if not math.isfinite(float(score)) or "/" not in member:
            raise ValueError(score)
    except (ValueError, binascii.Error, msgspec.DecodeError) as exc:
        raise InvalidCursor(f"malformed cursor {cursor[:40]!r}: pass one a page gave") from exc
    return score, member


def _filters(q: TaskQuery) -> list[str]:
    sets = []
    if q.status is not None:
        sets.append(f"s:{TaskStatus(q.status).value}")
    if q.type is not None:
        sets.append(f"t:{q.type}")
    if q.owner is not None:
        sets.append(f"o:{q.owner}")
    if q.tag is not None:
        sets.append(f"g:{check_id(q.tag, 'tag')}")
    return sets


def _bound(value: float | None, default: str) -> str:
    if value is None:
        return default
    if not math.isfinite(value):
        raise InvalidTask(f"since and until are Unix seconds, got {value!r}")
    return repr(value)


async def query(
    redis: aioredis.Redis, settings: Settings, record: RecordKey, q: TaskQuery
) -> TaskPage:
    """One page of the tasks ``q`` selects.

    Raises:
        InvalidTask: a malformed filter. InvalidCursor: a malformed cursor.
    """
    if q.project is not None:
        check_id(q.project, "project")
    if not 1 <= q.limit <= 1000:
        raise InvalidTask(f"limit must be 1-1000, got {q.limit}")
    score, member = _decode_cursor(q.cursor) if q.cursor else ("", "")
    args: list[str | int] = [
        settings.key_prefix,
        "*" if q.project is None else f"p:{q.project}",
        q.sort[0],
        _bound(q.since, "-inf"),
        _bound(q.until, "+inf"),
        score,
        member,
        q.limit,
        SCAN_BUDGET,
        repr(time.time()),
        max(1, math.ceil(settings.task_ttl)),
        *_filters(q),
    ]
    reply = await redis_call(redis.register_script(QUERY_LUA)(args=args))  # EVALSHA
    members, next_score, next_member = reply[:-2], reply[-2], reply[-1]
    pipe = redis.pipeline(transaction=False)
    for m in members:
        project, _, task_id = m.decode().partition("/")
        pipe.hget(record(project, task_id), "s")
    raws = await redis_call(pipe.execute()) if members else []
    cursor = _encode_cursor(next_score, next_member) if next_member else None
    return TaskPage(tasks=[_decode_state(r) for r in raws if r is not None], cursor=cursor)


def _percentile(bins: dict[int, int], q: float) -> float | None:
    total = sum(bins.values())
    if not total:
        return None
    seen = 0
    for b in sorted(bins):
        seen += bins[b]
        if seen >= q * total:
            return round(0.001 * float(_BIN_BASE ** (b + 0.5)), 3)
    return None  # pragma: no cover - the loop reaches total


async def stats(
    redis: aioredis.Redis,
    settings: Settings,
    record: RecordKey,
    project: str | None,
    since: float,
    until: float,
) -> TaskStats:
    """Statistics of ``project`` (None: every project) over ``since``..``until``.

    Raises:
        InvalidTask: a malformed project or window.
    """
    if project is not None:
        check_id(project, "project")
    if not (math.isfinite(since) and math.isfinite(until) and since <= until):
        raise InvalidTask(f"the window must have since <= until, got {since!r}..{until!r}")
    statuses = [s.value for s in TaskStatus]
    scope = "*" if project is None else f"p:{project}"
    now = time.time()
    ttl = max(1, math.ceil(settings.task_ttl))
    # Buckets exist for STATS_KEEP seconds back, and none in the future: a window reaching
    # further costs nothing more.
    first, last = max(since, now - STATS_KEEP), min(until, now + 60)
    if first > last:
        first = last = now + 7200  # a bucket that holds nothing yet
    args: list[str | int] = [
        settings.key_prefix,
        scope,
        repr(since),
        repr(until),
        repr(now),
        ttl,
        repr(first),
        repr(last),
        *statuses,
    ]
    reply = await redis_call(redis.register_script(STATS_LUA)(args=args))
    n = len(statuses)
    by_status = {s: int(c) for s, c in zip(statuses, reply[:n], strict=True)}
    created, running, hist, slow = int(reply[n]), int(reply[n + 1]), reply[n + 2], reply[n + 3]
    types: dict[str, TypeStats] = {}
    bins: dict[str, dict[int, int]] = {}
    for field, count in zip(hist[::2], hist[1::2], strict=True):
        kind, status, b = field.decode().rsplit("\t", 2)  # a type may hold a tab
        entry = types.setdefault(kind, TypeStats(type=kind))
        setattr(entry, status, getattr(entry, status) + int(count))
        if status != "cancelled":
            per = bins.setdefault(kind, {})
            per[int(b)] = per.get(int(b), 0) + int(count)
    hours = max((until - since) / 3600, 1 / 60)
    for kind, entry in types.items():
        ended = entry.completed + entry.failed
        entry.success_rate = round(entry.completed / ended, 4) if ended else None
        entry.throughput_per_hour = round((ended + entry.cancelled) / hours, 3)
        per = bins.get(kind, {})
        entry.p50, entry.p90, entry.p99 = (_percentile(per, q) for q in (0.5, 0.9, 0.99))
    done = {
        s: sum(getattr(t, s) for t in types.values()) for s in ("completed", "failed", "cancelled")
    }
    ended = done["completed"] + done["failed"]
    return TaskStats(
        project=project,
        since=since,
        until=until,
        created=created,
        by_status=by_status,
        running=running,
        completed=done["completed"],
        failed=done["failed"],
        cancelled=done["cancelled"],
        success_rate=round(done["completed"] / ended, 4) if ended else None,
        types=sorted(types.values(), key=lambda t: t.type),
        slowest=await _slowest(redis, record, slow, since, until),
    )


async def _slowest(
    redis: aioredis.Redis, record: RecordKey, slow: list[bytes], since: float, until: float
) -> list[SlowTask]:
    ranked = sorted(zip(slow[::2], slow[1::2], strict=True), key=lambda p: -float(p[1]))[:40]
    if not ranked:
        return []
    pipe = redis.pipeline(transaction=False)
    for m, _ in ranked:
        project, _, task_id = m.decode().partition("/")
        pipe.hget(record(project, task_id), "s")
    out = []
    for (_, took), raw in zip(ranked, await redis_call(pipe.execute()), strict=True):
        if raw is None:
            continue
        s = _decode_state(raw)
        if s.finished_at is not None and since <= s.finished_at <= until:
            out.append(
                SlowTask(
                    project=s.project,
                    id=s.id,
                    name=s.name,
                    type=s.type,
                    status=s.status,
                    duration=round(float(took), 3),
                )
            )
        if len(out) == 10:
            break
    return out
