"""Metrics snapshots in Redis: the newest one of every host, and who needs them.

Each metrics process writes its host's newest snapshot (JSON) into ``rc:metrics:hosts``
and publishes it on ``metrics.host.<host>``; one of them at a time also publishes the
fleet summary on ``metrics.fleet``. Alerts processes read the hash, and keep
``rc:metrics:demand`` alive so that metrics processes sample at full rate for them even
when no dashboard listens.
"""

from __future__ import annotations

import re
from typing import Any

from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable
from shared.broker.redis_url import AsyncCommandClient

__all__ = [
    "FLEET_CHANNEL",
    "demand_key",
    "fleet_lock_key",
    "host_channel",
    "host_name",
    "hosts_key",
    "read_host",
    "read_hosts",
]

FLEET_CHANNEL = "metrics.fleet"
_HOST_PREFIX = "metrics.host."
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_\-.:@]")


def host_name(raw: str) -> str:
    """``raw`` made fit for a channel name: other characters become ``-``, at most 100."""
    name = _NOT_ALLOWED.sub("-", raw.strip())[:100]
    if not name:
        raise ValueError("a host name needs at least one character")
    return name


def host_channel(host: str) -> str:
    """The latest-value channel of one host's metrics."""
    return _HOST_PREFIX + host


def hosts_key(prefix: str) -> str:
    return f"{prefix}:metrics:hosts"


def demand_key(prefix: str) -> str:
    return f"{prefix}:metrics:demand"


def fleet_lock_key(prefix: str) -> str:
    return f"{prefix}:metrics:fleet"


async def read_hosts(redis: AsyncCommandClient, prefix: str) -> dict[str, bytes]:
    """The newest snapshot (JSON) of every host that reported."""
    raw: dict[bytes, bytes] = await _call(redis.hgetall(hosts_key(prefix)))
    return {host.decode(): value for host, value in raw.items()}


async def read_host(redis: AsyncCommandClient, prefix: str, host: str) -> bytes | None:
    """The newest snapshot (JSON) of ``host``, or None."""
    value: bytes | None = await _call(redis.hget(hosts_key(prefix), host))
    return value


async def _call(awaitable: Any) -> Any:
    try:
        return await awaitable
    except (RedisError, OSError) as exc:
        raise BrokerUnavailable(f"redis: {exc}") from exc
