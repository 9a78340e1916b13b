"""Alerts in Redis: the active ones, the recently resolved, and their events.

An alert is identified while active by its fingerprint ``<rule>@<host>``: raising is a
set-if-absent on it, so any number of alert processes evaluating the same rules raise
each alert once. Its ``id`` (``<rule>@<host>:<raised at, ms>``) names that one occurrence
for its whole life. Each raise or resolve, in one script:

- changes ``rc:alerts:active`` / ``rc:alerts:recent`` (the newest ``alerts_recent`` kept);
- publishes an :class:`AlertEvent` on ``alerts``;
- publishes the :class:`AlertsState` (every active alert and the recent ones) on
  ``alerts@state``, a latest-value channel: a new subscriber gets it at once.

An alert resolved by hand is silenced: it is not raised again until its condition has
cleared (or a day has passed).
"""

from __future__ import annotations

import time
from typing import Any, Literal

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.broker.redis_atomic import AtomicScript
from shared.settings import Settings

__all__ = [
    "ALERTS_CHANNEL",
    "STATE_CHANNEL",
    "Alert",
    "AlertEvent",
    "AlertSilenced",
    "AlertStore",
    "AlertsState",
    "UnknownAlert",
    "decode_state",
    "evaluate_channel",
]

ALERTS_CHANNEL = "alerts"
STATE_CHANNEL = "alerts@state"
SILENCE_SECONDS = 86400
# Active alerts listed in one alerts@state message (all stay in Redis and in the API).
STATE_ACTIVE_CAP = 500


def evaluate_channel(prefix: str) -> str:
    """The Redis pub/sub channel (not a Relaycast channel) on which alerts processes hear
    "evaluate now"."""
    return f"{prefix}:alerts:evaluate"


class UnknownAlert(LookupError):
    """No active alert with this id."""


class Alert(msgspec.Struct, kw_only=True):
    """One alert occurrence. Times are seconds since the epoch."""

    id: str
    rule: str
    host: str
    severity: str
    status: Literal["active", "resolved"] = "active"
    message: str
    metric: str
    op: str
    threshold: float
    clear: float
    value: float
    """The metric's value when the alert was raised."""
    raised_at: float
    resolved_at: float | None = None
    resolved_by: Literal["auto", "manual", "service"] | None = None
    resolved_value: float | None = None
    """The metric's value when the condition cleared (automatic resolution)."""
    note: str | None = None

    @property
    def fingerprint(self) -> str:
        return f"{self.rule}@{self.host}"


class AlertEvent(msgspec.Struct, kw_only=True):
    """Published on ``alerts``: ``type`` is ``alert.raised`` or ``alert.resolved``."""

    type: str
    time: float
    alert: Alert


class AlertSilenced(msgspec.Struct, kw_only=True, tag="alert.silenced", tag_field="type"):
    """Published on ``alerts`` when a rule or an alert is silenced: who, and until when."""

    time: float
    rule: str = ""
    fingerprint: str = ""
    until: float
    by: str


class AlertsState(msgspec.Struct, kw_only=True):
    """Published on ``alerts@state``: active alerts (oldest first), recent resolved ones
    (newest first)."""

    active: list[Alert]
    recent: list[Alert]
    time: float


# snapshot(): the AlertsState JSON, assembled from the stored alert JSON without decoding it.
# KEYS 1-4: active hash, order zset, recent list, silence key (raise/resolve).
_SNAPSHOT = f"""
local function snapshot(now)
  local fps = redis.call('ZRANGE', KEYS[2], 0, {STATE_ACTIVE_CAP - 1})
  local active = {{}}
  if #fps > 0 then
    for _, v in ipairs(redis.call('HMGET', KEYS[1], unpack(fps))) do
      if v then table.insert(active, v) end
    end
  end
  local recent = redis.call('LRANGE', KEYS[3], 0, -1)
  return '{{"active":[' .. table.concat(active, ',') .. '],"recent":[' ..
    table.concat(recent, ',') .. '],"time":' .. now .. '}}'
end
"""

# ARGV: fingerprint, alert JSON, raise time, now; publishes: event, state.
# Returns {1, ''} raised; {0, current JSON} already active; {0, ''} silenced.
_RAISE_LUA = (
    _SNAPSHOT
    + """
if redis.call('EXISTS', KEYS[4]) == 1 or redis.call('EXISTS', KEYS[5]) == 1 then
  return {0, ''}
end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if current then return {0, current} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
publish_all(1, snapshot(ARGV[4]))
return {1, ''}
"""
)

# ARGV: fingerprint, expected current JSON, resolved JSON, recent kept, now,
# silence seconds ('' = none); publishes: event, state. Returns 1 done, 0 not active.
_RESOLVE_LUA = (
    _SNAPSHOT
    + """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('LPUSH', KEYS[3], ARGV[3])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[4]) - 1)
if ARGV[6] ~= '' then redis.call('SET', KEYS[4], '1', 'EX', ARGV[6]) end
publish_all(1, snapshot(ARGV[5]))
return 1
"""
)

# ARGV: now; publishes: state.
_STATE_LUA = (
    _SNAPSHOT
    + """
publish_all(0, snapshot(ARGV[1]))
return 1
"""
)

# ARGV: the silence key, milliseconds; publishes: the alert.silenced event.
_SILENCE_LUA = """
redis.call('SET', ARGV[1], '1', 'PX', ARGV[2])
publish_all()
return 1
"""

_encode = msgspec.json.Encoder().encode
_decode_alert = msgspec.json.Decoder(Alert).decode
_decode_state = msgspec.json.Decoder(AlertsState).decode


class AlertStore:
    """Raise, resolve and read alerts in Redis; shared by alert processes and the API."""

    def __init__(self, redis: aioredis.Redis, settings: Settings) -> None:
        self.redis = redis
        self.settings = settings
        prefix = settings.key_prefix
        self._active = f"{prefix}:alerts:active"
        self._order = f"{prefix}:alerts:order"
        self._recent = f"{prefix}:alerts:recent"
        self._raise = AtomicScript(redis, settings, _RAISE_LUA)
        self._resolve = AtomicScript(redis, settings, _RESOLVE_LUA)
        self._state = AtomicScript(redis, settings, _STATE_LUA)
        self._silence = AtomicScript(redis, settings, _SILENCE_LUA)

    def _keys(self, fingerprint: str = "-") -> list[str]:
        prefix = self.settings.key_prefix
        rule = fingerprint.partition("@")[0]
        silence = f"{prefix}:alerts:silence:{fingerprint}"
        rule_silence = f"{prefix}:alerts:silence-rule:{rule}"
        return [self._active, self._order, self._recent, silence, rule_silence]

    async def active(self) -> dict[str, tuple[bytes, Alert]]:
        """Active alerts by fingerprint, each with its stored JSON (for :meth:`resolve`)."""
        raw: dict[bytes, bytes] = await _call(self.redis.hgetall(self._active))
        return {fp.decode(): (value, _decode_alert(value)) for fp, value in raw.items()}

    async def raise_alert(self, alert: Alert) -> tuple[bool, Alert | None]:
        """Raise ``alert`` unless its fingerprint is active or silenced.

        Returns (True, alert) when raised here; (False, the active alert) when another
        process raised it first; (False, None) when it is silenced.
        """
        now = time.time()
        publishes = _publishes(AlertEvent(type="alert.raised", time=now, alert=alert))
        args = [alert.fingerprint, _encode(alert), repr(alert.raised_at), repr(now)]
        raised, current = await self._raise.run(self._keys(alert.fingerprint), args, publishes, now)
        if raised:
            return True, alert
        return False, _decode_alert(current) if current else None

    async def resolve(self, stored: bytes, resolved: Alert, *, silence: bool = False) -> bool:
        """Resolve the active alert whose stored JSON is ``stored`` (from :meth:`active`).

        False when it is no longer active as stored (resolved elsewhere meanwhile).
        """
        now = time.time()
        event = AlertEvent(type="alert.resolved", time=now, alert=resolved)
        args: list[Any] = [
            resolved.fingerprint,
            stored,
            _encode(resolved),
            self.settings.alerts_recent,
            repr(now),
            SILENCE_SECONDS if silence else "",
        ]
        keys = self._keys(resolved.fingerprint)
        done = await self._resolve.run(keys, args, _publishes(event), now)
        return bool(done)

    async def resolve_by_id(self, alert_id: str, note: str | None = None) -> Alert:
        """Resolve an active alert by hand; it stays silenced until its condition clears.

        Raises:
            UnknownAlert: no active alert has this id.
        """
        for _ in range(10):
            for stored, alert in (await self.active()).values():
                if alert.id == alert_id:
                    resolved = msgspec.structs.replace(
                        alert,
                        status="resolved",
                        resolved_at=time.time(),
                        resolved_by="manual",
                        note=note,
                    )
                    if await self.resolve(stored, resolved, silence=True):
                        return resolved
                    break  # changed meanwhile: look again
            else:
                break
        raise UnknownAlert(f"no active alert {alert_id!r}")

    async def resolve_fingerprint(self, fingerprint: str, note: str | None = None) -> Alert:
        """Resolve the active alert ``<rule>@<source>`` as its service does: not silenced,
        so it can be raised again at once.

        Raises:
            UnknownAlert: no active alert has this fingerprint.
        """
        for _ in range(10):
            found = (await self.active()).get(fingerprint)
            if found is None:
                break
            stored, alert = found
            resolved = msgspec.structs.replace(
                alert, status="resolved", resolved_at=time.time(), resolved_by="service", note=note
            )
            if await self.resolve(stored, resolved):
                return resolved
        raise UnknownAlert(f"no active alert {fingerprint!r}")

    async def silence(
        self, *, rule: str = "", fingerprint: str = "", seconds: float, by: str
    ) -> AlertSilenced:
        """Keep a rule (every subject) or one alert's fingerprint from being raised for
        ``seconds``, and log it on ``alerts`` (``alert.silenced``, with who)."""
        now = time.time()
        key = self._keys(f"{rule}@-")[4] if rule else self._keys(fingerprint)[3]
        event = AlertSilenced(
            time=now, rule=rule, fingerprint=fingerprint, until=now + seconds, by=by
        )
        args = [key, max(1, int(seconds * 1000))]
        await self._silence.run([], args, [(ALERTS_CHANNEL, _encode(event))], now)
        return event

    async def clear_silence(self, fingerprints: list[str]) -> None:
        """The conditions of these fingerprints cleared: they may be raised again."""
        if fingerprints:
            await _call(self.redis.delete(*(self._keys(fp)[3] for fp in fingerprints)))

    async def state(self) -> AlertsState:
        """Active alerts (oldest first) and the recent resolved ones (newest first)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.zrange(self._order, 0, -1)
        pipe.hgetall(self._active)
        pipe.lrange(self._recent, 0, -1)
        order, active, recent = await _call(pipe.execute())
        return AlertsState(
            active=[_decode_alert(active[fp]) for fp in order if fp in active],
            recent=[_decode_alert(raw) for raw in recent],
            time=time.time(),
        )

    async def publish_state(self) -> None:
        """Publish the current :class:`AlertsState` on ``alerts@state`` (for a process that
        starts, so that the channel has a value even before the first alert)."""
        now = time.time()
        await self._state.run(self._keys(), [repr(now)], [(STATE_CHANNEL, b"")], now)


async def _call(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        raise BrokerUnavailable(f"redis: {exc}") from exc


def _publishes(event: AlertEvent) -> list[tuple[str, bytes]]:
    """The event, and the state (which the script assembles)."""
    return [(ALERTS_CHANNEL, _encode(event)), (STATE_CHANNEL, b"")]


def decode_state(raw: bytes | str) -> AlertsState:
    """Parse an ``alerts@state`` message."""
    return _decode_state(raw)
