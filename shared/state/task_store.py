"""Task state in Redis: every change checked, written and published in one step.

A change is computed by :func:`shared.state.task_lifecycle.apply` from the state it read, then one
script writes it only if the task's version is still the one read (else the change is
computed again from the newer state), and publishes in the same step:

- the event on ``tasks.<project>.<id>`` and on ``tasks.<project>``;
- the new state on ``tasks.<project>.<id>@state`` (latest-value: a subscriber gets the
  current state at once, also of a task that has finished).

The state expires ``task_ttl`` seconds after its last change.
"""

from __future__ import annotations

import asyncio
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
from shared.state.notification_store import notify_task_finished
from shared.state.task_lifecycle import apply, create
from shared.state.tasks import (
    FINAL,
    Change,
    Create,
    InvalidTask,
    TaskError,
    TaskEvent,
    TaskExists,
    TaskState,
    UnknownTask,
    check_id,
)

__all__ = ["TaskStore", "project_channel", "state_channel", "task_channel"]

# Tasks of one project kept in its index; older ones drop out (their state still expires).
INDEX_CAP = 1000
# Attempts of one change against concurrent writers of the same task, with jittered waits.
_ATTEMPTS = 100

# KEYS: record hash, project index (then the publishes', see shared.broker.redis_atomic).
# ARGV: expected version ('' = must not exist), new version ('' = publish only), state JSON,
# ttl, task id, score, index cap.
# Returns {1, ''} when done, {0, current state JSON or ''} when the version did not match.
_WRITE_LUA = """
local current = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if current then return {0, redis.call('HGET', KEYS[1], 's')} end
elseif current ~= ARGV[1] then
  return {0, redis.call('HGET', KEYS[1], 's') or ''}
end
if ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[2], 's', ARGV[3])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  redis.call('ZADD', KEYS[2], ARGV[6], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[7])
  if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1) end
end
publish_all()
return {1, ''}
"""

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


class TaskStore:
    """Create, change and read tasks in Redis. Safe to share between coroutines and to run
    in many processes at once: concurrent changes of one task are serialised by version."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._write = AtomicScript(redis, settings, _WRITE_LUA)

    def _record_key(self, project: str, task_id: str) -> str:
        return f"{self.settings.key_prefix}:{{tasks.{project}}}:task:{task_id}"

    def _index_key(self, project: str) -> str:
        return f"{self.settings.key_prefix}:{{tasks.{project}}}:tasks"

    async def create(self, change: Create) -> TaskState:
        """Create a queued task (a workflow when ``change.phases`` is set).

        Raises:
            InvalidTask: a field is malformed. TaskExists: the id is taken.
            BrokerUnavailable: Redis cannot be reached.
        """
        state, event = create(change, time.time())
        ok, _ = await self._commit(state, event, expected=None, write=True)
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
            ok, current = await self._commit(
                new or state, event, expected=state.version, write=new is not None
            )
            if ok:
                if new is not None and new.status in FINAL and state.status not in FINAL:
                    await notify_task_finished(self.redis, self.settings, new)
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
        if raw is None:
            raise UnknownTask(f"no task {task_id!r} in project {project!r}")
        return _decode_state(raw)

    async def project_tasks(self, project: str, limit: int = 100) -> list[TaskState]:
        """States of a project's tasks, the most recently changed first."""
        check_id(project, "project")
        index = self._index_key(project)
        ids = await self._call(self.redis.zrevrange(index, 0, max(0, limit - 1)))
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for task_id in ids:
            pipe.hget(self._record_key(project, task_id.decode()), "s")
        raws = await self._call(pipe.execute())
        gone = [task_id for task_id, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            await self._call(self.redis.zrem(index, *gone))
        return [_decode_state(raw) for raw in raws if raw is not None]

    async def _commit(
        self, state: TaskState, event: TaskEvent, *, expected: int | None, write: bool
    ) -> tuple[bool, bytes]:
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
        if write:
            publishes.append((state_channel(project, task_id), state_json))
        args: list[Any] = [
            "" if expected is None else expected,
            state.version if write else "",
            state_json,
            max(1, math.ceil(self.settings.task_ttl)),
            task_id,
            repr(now),
            INDEX_CAP,
        ]
        keys = [self._record_key(project, task_id), self._index_key(project)]
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
