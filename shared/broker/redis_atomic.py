"""A state change and the messages announcing it, in one atomic step inside Redis.

A task moving on or an alert being raised must agree with the events that announce it:
nobody may see an event for a change that did not happen, or a change without its event.
So a state module writes a Lua ``body`` that checks and writes its own keys, and an
:class:`AtomicScript` runs it with the broker's own publish (:data:`PUBLISH_LUA`, as a
Lua function) for each message: every event gets its channel's next offset and its place
in history exactly like any other publish, and the state module never sees how.

In the body, ``KEYS`` and ``ARGV`` start with the ones the caller passed. Calling
``publish_all()`` publishes every message given to :meth:`AtomicScript.run`, in order;
``publish_all(i, data)`` publishes the ``i``-th (0-based) with ``data`` instead of its
payload, for a payload the script assembles itself.

This needs one Redis server (or a Sentinel-managed primary): such a script touches keys of
several channels, which Redis Cluster would keep on different shards. The memory broker
has no state scripts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shared.broker.base import BrokerUnavailable, new_epoch
from shared.broker.redis_scripts import PUBLISH_LUA, channel_keys, publish_args
from shared.settings import Settings

__all__ = ["AtomicScript"]

# publish(KEYS, ARGV) is PUBLISH_LUA verbatim: inside the function its parameters shadow
# the script's own KEYS and ARGV. The publishes' keys (three each) and arguments (six
# each) follow the caller's; the last ARGV is how many publishes there are.
_PRELUDE = (
    "local function publish(KEYS, ARGV)\n"
    + PUBLISH_LUA
    + """
end
local function publish_all(replace, data)
  local n = tonumber(ARGV[#ARGV])
  local k, a = #KEYS - 3 * n + 1, #ARGV - 6 * n
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


class AtomicScript:
    """A Lua ``body`` that changes state, run together with the publishes it announces."""

    def __init__(self, client: aioredis.Redis, settings: Settings, body: str) -> None:
        self._settings = settings
        self._script = client.register_script(_PRELUDE + body)

    async def run(
        self,
        keys: Sequence[str],
        args: Sequence[Any],
        publishes: Sequence[tuple[str, bytes]],
        now: float | None = None,
    ) -> Any:
        """Run the body with ``keys`` and ``args``; ``publish_all`` sends ``publishes``,
        each a (channel, JSON data) pair (data ``b""``: the body supplies it), stamped
        ``now`` (the wall clock if not given). Returns the body's reply.

        Raises:
            ValueError: a message is over ``max_payload_bytes``; nothing ran.
            BrokerUnavailable: Redis cannot be reached.
        """
        now = time.time() if now is None else now
        limit = self._settings.max_payload_bytes
        all_keys, all_args = list(keys), list(args)
        for channel, data in publishes:
            if len(data) > limit:
                raise ValueError(f"the event is {len(data)} bytes; the limit is {limit}")
            options = self._settings.channel_options(channel)
            all_keys.extend(channel_keys(self._settings.key_prefix, channel))
            all_args.extend(publish_args(data, options, now, new_epoch()))
        all_args.append(len(publishes))
        try:
            return await self._script(keys=all_keys, args=all_args)
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(f"redis: {exc}") from exc
