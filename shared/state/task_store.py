"""Task state in Redis: every change checked, written, indexed and published in one step.

A change is computed by :func:`shared.state.task_lifecycle.apply` from the state it read, then one
script (:data:`shared.state.task_scripts.WRITE_LUA`) writes it only if the task's version is
still the one read (else the change is computed again from the newer state), and in the
same step updates the task's index entries, appends a log line to the task's log, updates
its group, and publishes:

- the event on ``tasks.<project>.<id>`` and on ``tasks.<project>``;
- the new state on ``tasks.<project>.<id>@state`` (latest-value: a subscriber gets the
  current state at once, also of a task that has finished);
- the group's counts on ``tasks.<project>.group.<group>`` when they change.

A task, its log and its index entries go ``task_ttl`` seconds after its last change.
Queries, statistics and log reads are in :mod:`shared.state.task_query`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.broker.redis_atomic import AtomicScript
from shared.settings import Settings
from shared.state import task_log, task_query
from shared.state.notification_store import notify_task_finished
from shared.state.task_lifecycle import apply, create
from shared.state.task_scripts import DELETE_LUA, STATS_KEEP, WRITE_LUA
from shared.state.tasks import (
    FINAL,
    Change,
    Create,
    GroupState,
    InvalidTask,
    Log,
    LogLine,
    TaskError,
    TaskEvent,
    TaskExists,
    TaskState,
    TaskStatus,
    UnknownTask,
    check_id,
)

__all__ = [
    "TaskStore",
    "duration_bin",
    "group_channel",
    "project_channel",
    "state_channel",
    "task_channel",
]

log = logging.getLogger("relaycast.tasks")

# Attempts of one change against concurrent writers of the same task, with jittered waits.
_ATTEMPTS = 100
_GROUP_COUNTS = ("total", "completed", "failed", "cancelled", "running")
BIN_BASE = 1.1
"""Duration bins of the statistics grow by 10%: a percentile is within 5% of the truth."""

_encode = msgspec.json.Encoder().encode
_decode_state = msgspec.json.Decoder(TaskState).decode


def project_channel(project: str) -> str:
    """Events of every task of ``project``."""
    return f"tasks.{project}"


def task_channel(project: str, task_id: str) -> str:
    """Events of one task."""
    return f"tasks.{project}.{task_id}"


def state_channel(project: str, task_id: str) -> str:
    """The current state of one task (latest-value)."""
    return f"tasks.{project}.{task_id}@state"


def group_channel(project: str, group: str) -> str:
    """A group's aggregate progress (``group.changed`` events)."""
    return f"tasks.{project}.group.{group}"


def duration_bin(seconds: float) -> int:
    """The statistics bin of a duration: bin ``b`` holds ``1ms * 1.1**b`` up to the next."""
    return max(0, math.floor(math.log(max(seconds, 0.001) / 0.001, BIN_BASE)))


def duration(state: TaskState) -> float:
    """Seconds a finished task ran, pauses not counted."""
    end = state.finished_at or state.updated_at
    return max(0.0, end - (state.started_at or end) - state.paused_seconds)


class TaskStore:
    """Create, change and read tasks in Redis. Safe to share between coroutines and to run
    in many processes at once: concurrent changes of one task are serialised by version."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._write = AtomicScript(redis, settings, WRITE_LUA)
        self._delete = AtomicScript(redis, settings, DELETE_LUA)

    def _record_key(self, project: str, task_id: str) -> str:
        return f"{self.settings.key_prefix}:{{tasks.{project}}}:task:{task_id}"

    def log_key(self, project: str, task_id: str) -> str:
        """The stream holding a task's log."""
        return f"{self.settings.key_prefix}:{{tasks.{project}}}:log:{task_id}"

    def _group_key(self, project: str, group: str) -> str:
        return f"{self.settings.key_prefix}:{{tasks.{project}}}:group:{group}"

    async def create(self, change: Create) -> TaskState:
        """Create a queued task (a workflow when ``change.phases`` is set).

        Raises:
            InvalidTask: a field is malformed. TaskExists: the id is taken.
            BrokerUnavailable: Redis cannot be reached.
        """
        state, event = create(change, time.time())
        ok, _ = await self._commit(None, state, event)
        if not ok:
            raise TaskExists(f"task {state.id!r} already exists in project {state.project!r}")
        return state

    async def change(
        self, project: str, task_id: str, change: Change, known: TaskState | None = None
    ) -> TaskState:
        """Apply ``change`` to a task and publish it; return the state after it.

        ``known`` is the state the caller last saw (saves a read when still current).

        Raises:
            InvalidTask, InvalidTransition: the change is refused; nothing was published.
            UnknownTask: no such task. BrokerUnavailable: Redis cannot be reached.
        """
        state = known or await self.get(project, task_id)
        for attempt in range(_ATTEMPTS):
            new, event = apply(state, change, time.time())
            ok, current = await self._commit(state, new, event, line=change)
            if ok:
                if new is not None and new.status in FINAL and state.status not in FINAL:
                    await self._finished(new)
                return new or state
            if not current:
                raise UnknownTask(f"no task {task_id!r} in project {project!r}")
            state = _decode_state(current)  # changed meanwhile: apply to the newer state
            if attempt:
                await asyncio.sleep(random.uniform(0, 0.001 * min(attempt, 20)))
        raise TaskError(f"task {task_id!r} changes too often to apply this change; retry")

    async def get(self, project: str, task_id: str) -> TaskState:
        """The current state of a task.

        Raises:
            InvalidTask: a malformed id. UnknownTask: no such task (or it expired).
        """
        check_id(project, "project")
        check_id(task_id, "task id")
        raw = await self._call(self.redis.hget(self._record_key(project, task_id), "s"))
        state = None if raw is None else _decode_state(raw)
        if state is None or state.updated_at < time.time() - self.settings.task_ttl:
            raise UnknownTask(f"no task {task_id!r} in project {project!r}")  # or expired
        return state

    async def delete(self, project: str, task_id: str) -> TaskState:
        """Delete a task: its state, its log, its index entries and its part in the
        statistics; ``task.deleted`` goes out on its channels. Returns the last state.

        Raises:
            InvalidTask: a malformed id. UnknownTask: no such task.
        """
        check_id(project, "project")
        check_id(task_id, "task id")
        now = time.time()
        event = _encode(TaskEvent(type="task.deleted", time=now, project=project, id=task_id))
        publishes = [(task_channel(project, task_id), event), (project_channel(project), event)]
        raw = await self._delete.run(
            [], [self.settings.key_prefix, f"{project}/{task_id}"], publishes, now
        )
        if not raw:
            raise UnknownTask(f"no task {task_id!r} in project {project!r}")
        return _decode_state(raw)

    async def project_tasks(self, project: str, limit: int = 100) -> list[TaskState]:
        """States of a project's tasks, the most recently changed first."""
        page = await self.query(task_query.TaskQuery(project=project, sort="updated", limit=limit))
        return page.tasks

    async def query(self, query: task_query.TaskQuery) -> task_query.TaskPage:
        """One page of the tasks ``query`` selects (see :class:`task_query.TaskQuery`)."""
        return await task_query.query(self.redis, self.settings, self._record_key, query)

    async def stats(self, project: str | None, since: float, until: float) -> task_query.TaskStats:
        """Statistics of a project (None: all projects) over ``since``..``until``."""
        return await task_query.stats(
            self.redis, self.settings, self._record_key, project, since, until
        )

    async def log(self, project: str, task_id: str, **filters: Any) -> task_log.LogPage:
        """A page of a task's log, newest first (see :func:`task_log.read_log`)."""
        await self.get(project, task_id)
        return await task_log.read_log(self.redis, self.log_key(project, task_id), **filters)

    async def group(self, project: str, group: str) -> GroupState:
        """A group's aggregate progress.

        Raises:
            InvalidTask: a malformed id. UnknownTask: no task has this group (or it expired).
        """
        check_id(project, "project")
        check_id(group, "group id")
        raw = await self._call(self.redis.hgetall(self._group_key(project, group)))
        if not raw:
            raise UnknownTask(f"no group {group!r} in project {project!r}")
        fields = {k.decode(): v.decode() for k, v in raw.items()}
        counts = {k: int(fields.get(k, 0)) for k in _GROUP_COUNTS}
        return GroupState(
            project=project,
            group=group,
            current=fields.get("current"),
            updated_at=float(fields.get("updated_at", 0)),
            **counts,
        )

    async def _finished(self, state: TaskState) -> None:
        """The one place a task's reaching completed, failed or cancelled passes through,
        once per task, after the change is written and published: its owner, or whoever the
        notification rules name, is told (a notification that cannot be made is logged and
        leaves the change standing)."""
        log.debug("task %s/%s %s", state.project, state.id, state.status)
        await notify_task_finished(self.redis, self.settings, state)

    async def _commit(
        self, old: TaskState | None, new: TaskState | None, event: TaskEvent, line: Any = None
    ) -> tuple[bool, bytes]:
        """Write ``new`` (None: publish only, for a log line) if ``old`` is still current
        (None: the task must not exist yet)."""
        state = new or old
        assert state is not None
        now = event.time
        try:
            event_json = _encode(event)
            state_json = _encode(state)
        except (TypeError, msgspec.EncodeError) as exc:
            raise InvalidTask(f"metadata or result is not JSON-encodable: {exc}") from exc
        project, task_id = state.project, state.id
        publishes = [
            (task_channel(project, task_id), event_json),
            (project_channel(project), event_json),
        ]
        if new is not None:
            publishes.append((state_channel(project, task_id), state_json))
        delta = _group_delta(old, new)
        if delta:
            publishes.append((group_channel(project, delta["group"]), b""))
        settings = self.settings
        log_json = b""
        if isinstance(line, Log):
            log_json = _encode(
                LogLine(
                    id="",
                    time=now,
                    level=event.level or "info",
                    message=event.message or "",
                    phase=event.phase,
                    fields=event.fields,
                )
            )
        args: list[Any] = [
            settings.key_prefix,
            "" if old is None else old.version,
            "" if new is None else new.version,
            state_json,
            max(1, math.ceil(settings.task_ttl)),
            _encode(_index_entry(state)),
            "" if old is None else old.status.value,
            log_json,
            settings.task_log_lines,
            f"{max(0, int((now - settings.task_log_age) * 1000))}-0",
            _encode(delta) if delta else "",
            repr(now),
            STATS_KEEP,
            len(publishes) - 1,
        ]
        group_key = (
            self._group_key(project, delta["group"]) if delta else f"{settings.key_prefix}:-"
        )
        keys = [self._record_key(project, task_id), self.log_key(project, task_id), group_key]
        try:
            ok, current = await self._write.run(keys, args, publishes, now)
        except ValueError as exc:
            raise InvalidTask(str(exc)) from exc
        return bool(ok), current if isinstance(current, bytes) else b""

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc


def _index_entry(state: TaskState) -> dict[str, Any]:
    """What the scripts index a task by (``x`` in its record)."""
    entry: dict[str, Any] = {
        "p": state.project,
        "id": state.id,
        "c": state.created_at,
        "s": state.status.value,
        "t": state.type,
        "o": state.owner or "",
        "g": state.tags,
    }
    if state.status in FINAL:
        took = duration(state)
        entry.update(f=state.finished_at or state.updated_at, d=took, b=duration_bin(took))
    return entry


def _group_delta(old: TaskState | None, new: TaskState | None) -> dict[str, Any] | None:
    """How a change moves its group's counts (None: not at all)."""
    if new is None or new.group is None:
        return None
    if old is None:
        return {"group": new.group, "total": 1}
    if old.status is TaskStatus.QUEUED and new.status is TaskStatus.RUNNING:
        return {"group": new.group, "running": 1, "current": new.id}
    if new.status in FINAL and old.status not in FINAL:
        delta: dict[str, Any] = {"group": new.group, new.status.value: 1, "ended": new.id}
        if old.status is not TaskStatus.QUEUED:
            delta["running"] = -1
        return delta
    return None
