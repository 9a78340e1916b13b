"""Notifications in Redis: kept per user (bounded), announced on the user's channel, and
queued for the project's sinks.

A notification is written and announced on ``notifications.<user>`` in one script, so a
live reader and a later list agree. Marking read and deleting announce themselves the same
way (``notification.read``, ``notification.deleted``, each with the unread count after it).
A user keeps the newest ``notify_keep`` for at most ``notify_age`` seconds: older ones are
neither listed nor counted, and go from Redis at the user's next write (a new
notification, a read, a delete).
Each sink of the notification's project gets a :class:`Delivery` record and an entry on
the delivery stream, which ``relaycast notify`` consumes: nothing here waits for a sink,
so a sink that is down slows neither the notification nor the task that caused it.

:func:`notify_task_finished` is what the task store calls when a task ends.
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.broker.redis_atomic import AtomicScript
from shared.settings import Settings
from shared.state.notifications import (
    Delivery,
    InvalidNotification,
    NewNotification,
    Notification,
    NotifyRule,
    SinkList,
    UnknownNotification,
    check_user,
    user_channel,
)
from shared.state.tasks import TaskState, check_id

__all__ = ["DELIVERY_CAP", "NotificationStore", "notify_task_finished", "queue_key"]

log = logging.getLogger("relaycast.notifications")

DELIVERY_CAP = 1000
"""Delivery records kept per project; older ones drop out."""
QUEUE_CAP = 100_000
"""Entries the delivery stream keeps (approximately); a stalled consumer loses the oldest."""

# KEYS: items hash, order zset, unread set. Drops the notifications scored before ``cutoff``
# (a thousand ids a call: unpack has a limit, and a user back after a month may have more).
_EXPIRE_LUA = """
local function expire(cutoff)
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff)
  for i = 1, #old, 1000 do
    local last = math.min(i + 999, #old)
    redis.call('HDEL', KEYS[1], unpack(old, i, last))
    redis.call('SREM', KEYS[3], unpack(old, i, last))
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. cutoff) end
end
"""

# KEYS: items hash, order zset, unread set. ARGV: id, JSON, score, cap, cutoff.
_CREATE_LUA = (
    _EXPIRE_LUA
    + """
expire(ARGV[5])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[1])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('SREM', KEYS[3], unpack(old))
end
local unread = redis.call('SCARD', KEYS[3])
publish_all(0, '{"type":"notification.created","unread":' .. unread
  .. ',"notification":' .. ARGV[2] .. '}')
return unread
"""
)

# KEYS: items hash, order zset, unread set. ARGV: id ('' = every one), cutoff. -1: no such id.
_READ_LUA = (
    _EXPIRE_LUA
    + """
expire(ARGV[2])
if ARGV[1] == '' then
  redis.call('DEL', KEYS[3])
elseif redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return -1
else
  redis.call('SREM', KEYS[3], ARGV[1])
end
local event = {type='notification.read', unread=redis.call('SCARD', KEYS[3])}
if ARGV[1] ~= '' then event['id'] = ARGV[1] end
publish_all(0, cjson.encode(event))
return event['unread']
"""
)

# KEYS: items hash, order zset, unread set. ARGV: id, cutoff. -1: no such id.
_DELETE_LUA = (
    _EXPIRE_LUA
    + """
expire(ARGV[2])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return -1 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
local unread = redis.call('SCARD', KEYS[3])
publish_all(0, cjson.encode({type='notification.deleted', id=ARGV[1], unread=unread}))
return unread
"""
)

# KEYS: order zset, unread set. ARGV: cutoff. The unread ones scored from ``cutoff`` on.
_UNREAD_LUA = """
local count = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local score = redis.call('ZSCORE', KEYS[1], id)
  if score and tonumber(score) >= tonumber(ARGV[1]) then count = count + 1 end
end
return count
"""

_encode = msgspec.json.Encoder().encode
_decode_notification = msgspec.json.Decoder(Notification).decode
_decode_rule = msgspec.json.Decoder(NotifyRule).decode
_decode_sinks = msgspec.json.Decoder(SinkList).decode
_decode_delivery = msgspec.json.Decoder(Delivery).decode

_TYPES = {"completed": "success", "failed": "error", "cancelled": "warning"}


def queue_key(settings: Settings) -> str:
    """The Redis stream of deliveries waiting for ``relaycast notify``."""
    return f"{settings.key_prefix}:notify:queue"


class NotificationStore:
    """Create, read, mark and delete notifications; project rules and sinks; deliveries."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        self._create = AtomicScript(redis, settings, _CREATE_LUA)
        self._read = AtomicScript(redis, settings, _READ_LUA)
        self._delete = AtomicScript(redis, settings, _DELETE_LUA)
        self._unread = redis.register_script(_UNREAD_LUA)

    def _user_keys(self, user: str) -> list[str]:
        base = f"{self.settings.key_prefix}:{{{user_channel(check_user(user))}}}"
        return [f"{base}:items", f"{base}:order", f"{base}:unread"]

    def _key(self, *parts: str) -> str:
        return ":".join((self.settings.key_prefix, "notify", *parts))

    def _cutoff(self, now: float | None = None) -> int:
        """The score (ms) of the oldest notification still kept at ``now``."""
        now = time.time() if now is None else now
        return max(0, int((now - self.settings.notify_age) * 1000))

    # --- a user's notifications ----------------------------------------------------------

    async def create(self, new: NewNotification, now: float | None = None) -> Notification:
        """Keep ``new``, announce it on the user's channel, queue it for the project's sinks.
        ``now`` is its time (default: the wall clock).

        Raises:
            InvalidNotification: a malformed field. BrokerUnavailable: Redis is unreachable.
        """
        new.check()
        if new.project is not None:
            check_id(new.project, "project")
        if new.task_id is not None:
            check_id(new.task_id, "task id")
        now = time.time() if now is None else now
        note = Notification(
            id=f"{int(now * 1000):x}-{secrets.token_hex(4)}",
            created_at=now,
            **msgspec.structs.asdict(new),
        )
        raw = _encode(note)
        keys = self._user_keys(new.user)
        args = [note.id, raw, int(now * 1000), self.settings.notify_keep, self._cutoff(now)]
        try:
            await self._create.run(keys, args, [(user_channel(new.user), b"")], now)
        except ValueError as exc:
            raise InvalidNotification(str(exc)) from exc
        if new.project is not None:
            await self._enqueue(note, raw, await self.sinks(new.project))
        return note

    async def notifications(
        self, user: str, limit: int = 50, unread_only: bool = False
    ) -> list[Notification]:
        """``user``'s notifications, newest first (``read`` as it stands now), none older
        than ``notify_age``."""
        items, order, unread_key = self._user_keys(user)
        start, num = (None, None) if unread_only else (0, limit)
        ids = await self._call(
            self.redis.zrevrangebyscore(order, "+inf", self._cutoff(), start=start, num=num)
        )
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        pipe.hmget(items, ids)
        pipe.smismember(unread_key, ids)
        raws, unread = await self._call(pipe.execute())
        found = []
        for raw, is_unread in zip(raws, unread, strict=True):
            if raw is None or (unread_only and not is_unread):
                continue
            note = _decode_notification(raw)
            note.read = not is_unread
            found.append(note)
        return found[:limit]

    async def unread(self, user: str) -> int:
        """How many of ``user``'s notifications (``notify_age`` old at most) are unread."""
        _, order, unread_key = self._user_keys(user)
        return int(await self._call(self._unread(keys=[order, unread_key], args=[self._cutoff()])))

    async def mark_read(self, user: str, notification_id: str | None = None) -> int:
        """Mark one notification (or, with None, every one) read; the unread count after.

        Raises:
            UnknownNotification: no such notification of this user.
        """
        return await self._change(self._read, user, notification_id or "")

    async def delete(self, user: str, notification_id: str) -> int:
        """Delete one notification; the unread count after.

        Raises:
            UnknownNotification: no such notification of this user.
        """
        return await self._change(self._delete, user, notification_id)

    async def _change(self, script: AtomicScript, user: str, notification_id: str) -> int:
        if len(notification_id) > 64:
            raise UnknownNotification(f"no notification {notification_id[:64]!r} of {user!r}")
        keys = self._user_keys(user)
        args = [notification_id, self._cutoff()]
        result = int(await script.run(keys, args, [(user_channel(user), b"")]))
        if result < 0:
            raise UnknownNotification(f"no notification {notification_id!r} of {user!r}")
        return result

    # --- rules and sinks -------------------------------------------------------------------

    async def set_rule(self, project: str, rule: NotifyRule, task_id: str | None = None) -> None:
        """Set who is notified when a task of ``project`` (or the one task) ends. A task's
        rule is kept as long as a task's state (``task_ttl``)."""
        check_id(project, "project")
        rule.check()
        if task_id is None:
            await self._call(self.redis.set(self._key("rule", project), _encode(rule)))
        else:
            ttl = max(1, int(self.settings.task_ttl))
            key = self._key("rule", project, check_id(task_id))
            await self._call(self.redis.set(key, _encode(rule), ex=ttl))

    async def rule(self, project: str, task_id: str | None = None) -> NotifyRule:
        """The rule that applies: the task's, else the project's, else the default."""
        check_id(project, "project")
        keys = [self._key("rule", project)]
        if task_id is not None:
            keys.insert(0, self._key("rule", project, check_id(task_id)))
        for raw in await self._call(self.redis.mget(keys)):
            if raw is not None:
                return _decode_rule(raw)
        return NotifyRule()

    async def set_sinks(self, project: str, sinks: SinkList) -> None:
        """Replace ``project``'s sinks (checked; URLs are checked by the caller too)."""
        check_id(project, "project")
        names = set()
        for sink in sinks.sinks:
            sink.check()
            if sink.name in names:
                raise InvalidNotification(f"sink {sink.name!r} is listed twice")
            names.add(sink.name)
        if len(sinks.sinks) > 20:
            raise InvalidNotification("a project has at most 20 sinks")
        await self._call(self.redis.set(self._key("sinks", project), _encode(sinks)))

    async def sinks(self, project: str) -> SinkList:
        raw = await self._call(self.redis.get(self._key("sinks", check_id(project, "project"))))
        return SinkList() if raw is None else _decode_sinks(raw)

    # --- deliveries ------------------------------------------------------------------------

    async def _enqueue(self, note: Notification, raw: bytes, sinks: SinkList) -> None:
        if not sinks.sinks or note.project is None:
            return
        pipe = self.redis.pipeline(transaction=False)
        for sink in sinks.sinks:
            delivery = Delivery(
                id=f"{note.id}.{sink.name}",
                notification_id=note.id,
                user=note.user,
                project=note.project,
                sink=sink.name,
                kind=sink.kind,
                created_at=note.created_at,
                updated_at=note.created_at,
            )
            self._record(pipe, delivery)
            fields: Any = {"n": raw, "s": _encode(sink), "d": _encode(delivery)}
            pipe.xadd(queue_key(self.settings), fields, maxlen=QUEUE_CAP, approximate=True)
        await self._call(pipe.execute())

    def _record(self, pipe: Any, delivery: Delivery) -> None:
        records = self._key("deliveries", delivery.project)
        order = records + ":order"
        pipe.hset(records, delivery.id, _encode(delivery))
        pipe.zadd(order, {delivery.id: delivery.created_at})
        pipe.eval(_TRIM_LUA, 2, records, order, DELIVERY_CAP)

    async def record(self, delivery: Delivery) -> None:
        """Store where ``delivery`` stands now (``relaycast notify`` after each attempt)."""
        pipe = self.redis.pipeline(transaction=False)
        self._record(pipe, delivery)
        await self._call(pipe.execute())

    async def deliveries(self, project: str, limit: int = 100) -> list[Delivery]:
        """``project``'s recent deliveries, newest first."""
        records = self._key("deliveries", check_id(project, "project"))
        ids = await self._call(self.redis.zrevrange(records + ":order", 0, limit - 1))
        if not ids:
            return []
        raws = await self._call(self.redis.hmget(records, ids))
        return [_decode_delivery(raw) for raw in raws if raw is not None]

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc


# KEYS: records hash, order zset. ARGV: cap.
_TRIM_LUA = """
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[1])
if extra > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
return 0
"""


async def notify_task_finished(redis: aioredis.Redis, settings: Settings, task: TaskState) -> None:
    """Notify whom the task's rule names (default: its owner, on completion and failure)
    that ``task`` ended. Never raises: the task's end is already published, and a
    notification that cannot be made is logged, not turned into the task's error."""
    try:
        store = NotificationStore(redis, settings)
        rule = await store.rule(task.project, task.id)
        outcome = str(task.status)
        if outcome not in rule.on:
            return
        users = rule.users if rule.users is not None else [task.owner] if task.owner else []
        detail = task.error if outcome == "failed" else task.message
        for user in users:
            await store.create(
                NewNotification(
                    user=user,
                    title=f"{task.name[:150]} {outcome}",
                    body=(detail or "")[:4000],
                    type=_TYPES[outcome],  # type: ignore[arg-type]
                    priority=rule.priority or ("high" if outcome == "failed" else "normal"),
                    project=task.project,
                    task_id=task.id,
                    link=f"/api/tasks/{task.project}/{task.id}",
                )
            )
    except (BrokerUnavailable, InvalidNotification, ValueError) as exc:
        log.warning("task %s/%s ended; notifying failed: %s", task.project, task.id, exc)
