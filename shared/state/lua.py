"""Lua scripts that change state and publish the change in one atomic step.

A state change (a task moving on, an alert raised) and the events announcing it must
agree: nobody may see an event for a change that did not happen, or a change without its
event. Each script checks, writes and publishes inside Redis at once. Its publishes run
:data:`~shared.broker.redis_scripts.PUBLISH_LUA` itself, wrapped as a Lua function, so each event
gets its channel's next offset and its place in history exactly like any other message.

Such a script touches keys of several channels, so it needs them on one Redis server
(a single Redis or Sentinel; not Redis Cluster).
"""

from __future__ import annotations

import math
from typing import Any

from shared.broker.base import new_epoch
from shared.broker.redis_scripts import PUBLISH_LUA, channel_keys, publish_args
from shared.settings import Settings

__all__ = ["Publishes", "ttl_seconds", "with_publish"]

# publish(KEYS, ARGV) is PUBLISH_LUA verbatim: inside the function its parameters shadow
# the script's own KEYS and ARGV. publish_all runs n publishes whose keys start at
# KEYS[k] (three each) and whose arguments start at ARGV[a] (six each); ``data`` replaces
# the payload of the publish at index ``replace`` (for payloads built inside the script).
_PRELUDE = (
    "local function publish(KEYS, ARGV)\n"
    + PUBLISH_LUA
    + """
end
local function publish_all(k, a, n, replace, data)
  local last = nil
  for i = 0, n - 1 do
    local kk, aa = k + 3 * i, a + 6 * i
    local payload = ARGV[aa]
    if i == replace then payload = data end
    last = publish({KEYS[kk], KEYS[kk + 1], KEYS[kk + 2]},
                   {payload, ARGV[aa + 1], ARGV[aa + 2], ARGV[aa + 3], ARGV[aa + 4], ARGV[aa + 5]})
  end
  return last
end
"""
)


def with_publish(body: str) -> str:
    """A script whose ``body`` may call ``publish_all(k, a, n, replace, data)``."""
    return _PRELUDE + body


class Publishes:
    """KEYS and ARGV of a batch of publishes, to append after a script's own."""

    def __init__(self, settings: Settings, now: float) -> None:
        self._settings = settings
        self._now = now
        self.keys: list[str] = []
        self.args: list[Any] = []

    def add(self, channel: str, data: bytes) -> Publishes:
        """Add a publish of JSON ``data`` on ``channel`` (a payload of b'' is filled in by
        the script). Raises ValueError when ``data`` is over ``max_payload_bytes``."""
        limit = self._settings.max_payload_bytes
        if len(data) > limit:
            raise ValueError(f"the event is {len(data)} bytes; the limit is {limit}")
        options = self._settings.channel_options(channel)
        self.keys.extend(channel_keys(self._settings.key_prefix, channel))
        self.args.extend(publish_args(data, options, self._now, new_epoch()))
        return self

    @property
    def count(self) -> int:
        return len(self.keys) // 3


def ttl_seconds(value: float) -> int:
    """A TTL in whole seconds, at least one."""
    return max(1, math.ceil(value))
