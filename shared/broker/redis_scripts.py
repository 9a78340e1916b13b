"""Lua scripts that make a publish, and a history read, one atomic step in Redis.

Both take KEYS = meta hash, stream (and publish: the pub/sub channel, declared as a key
so that Redis Cluster routes all three to one shard by their shared hash tag).
"""

from __future__ import annotations

import math

from shared.channels import ChannelOptions

__all__ = [
    "HISTORY_LUA",
    "PUBLISH_LUA",
    "RENEW_EPOCH_LUA",
    "SHARDED_PUBLISH_LUA",
    "channel_keys",
    "meta_ttl",
    "publish_args",
]


def channel_keys(prefix: str, channel: str) -> tuple[str, str, str]:
    """(meta hash, stream, pub/sub channel) of ``channel``; they share the hash tag."""
    base = f"{prefix}:{{{channel}}}"
    return f"{base}:m", f"{base}:s", base


def publish_args(
    data: bytes | str, options: ChannelOptions, time: float, epoch: str
) -> tuple[bytes | str | int, ...]:
    """ARGV of :data:`PUBLISH_LUA`."""
    return (
        data,
        repr(time),
        options.history_size,
        math.ceil(options.history_ttl),
        meta_ttl(options),
        epoch,
    )


# A stream's epoch and offset outlive its messages, so that a client coming back after
# a quiet hour is told "nothing was missed" rather than "history lost".
MIN_META_TTL = 86400


def meta_ttl(options: ChannelOptions) -> int:
    """Seconds a channel's position is kept after its last publish."""
    return max(MIN_META_TTL, 2 * math.ceil(options.history_ttl))


# ARGV: data, time, history_size, history_ttl, meta_ttl, candidate epoch
# Returns {offset, epoch}.
PUBLISH_LUA = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  epoch = ARGV[6]
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'e', epoch, 'o', 0)
end
local offset = redis.call('HINCRBY', KEYS[1], 'o', 1)
redis.call('EXPIRE', KEYS[1], ARGV[5])
local size = tonumber(ARGV[3])
if size > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', size, offset .. '-0', 'd', ARGV[1], 't', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[4])
  -- The age bound: drop entries older than history_ttl, a few per publish (bounded work).
  local cutoff = tonumber(ARGV[2]) - tonumber(ARGV[4])
  for _ = 1, 8 do
    local oldest = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
    if #oldest == 0 or tonumber(oldest[1][2][4]) >= cutoff then break end
    redis.call('XDEL', KEYS[2], oldest[1][1])
  end
end
-- shared.protocol.Publication, array-like: {offset, epoch, data, time}
redis.call('PUBLISH', KEYS[3], cmsgpack.pack({offset, epoch, ARGV[1], tonumber(ARGV[2])}))
return {offset, epoch}
"""

# The same publish for Redis Cluster: SPUBLISH keeps the message inside the shard that owns
# the channel's slot, instead of broadcasting it over the cluster bus to every node.
SHARDED_PUBLISH_LUA = PUBLISH_LUA.replace("redis.call('PUBLISH'", "redis.call('SPUBLISH'")
assert SHARDED_PUBLISH_LUA != PUBLISH_LUA

# ARGV: since offset ('' for the newest entries), limit, candidate epoch,
# PROVISIONAL_POSITION_TTL. Returns {offset, epoch, entries}; entries oldest first after
# `since`, else newest first. A channel without a position gets one that expires soon,
# and nothing else: no stream is read or written for it.
HISTORY_LUA = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if not epoch then
  redis.call('HSET', KEYS[1], 'e', ARGV[3], 'o', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return {0, ARGV[3], {}}
end
local offset = tonumber(redis.call('HGET', KEYS[1], 'o'))
local limit = tonumber(ARGV[2])
local entries = {}
if limit > 0 then
  if ARGV[1] == '' then
    entries = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', limit)
  else
    entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1] .. '-0', '+', 'COUNT', limit)
  end
end
return {offset, epoch, entries}
"""

# ARGV: the stale epoch, a candidate new epoch, meta_ttl
# Returns {offset, epoch}: the new epoch if the stale one was current, else the current one.
RENEW_EPOCH_LUA = """
local epoch = redis.call('HGET', KEYS[1], 'e')
if (not epoch) or epoch == ARGV[1] then
  epoch = ARGV[2]
  redis.call('HSET', KEYS[1], 'e', epoch)
  redis.call('HSETNX', KEYS[1], 'o', 0)
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return {tonumber(redis.call('HGET', KEYS[1], 'o')), epoch}
"""
