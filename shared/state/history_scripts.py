"""The Lua of the metric history store (:mod:`shared.state.history`): writing a batch
of samples into every tier is the same script as publishing it, so history and the live
value never disagree; reading a range picks the finest tier that fits in one round trip.
"""

from __future__ import annotations

__all__ = ["HISTORY_LUA", "HOST_LUA", "RANGE_LUA", "SOURCE_LUA"]

# KEYS: [1] the source's series hash, [2] the sources sorted set, then one key per tier
# for each series. ARGV: [1] source, [2] time (s), [3] cap, [4] tiers, then (step ms,
# kept ms) per tier, then the series count, then (id, info JSON, value) per series.
# write_history() returns nil when written, {have, new} when the cap refuses the batch.
HISTORY_LUA = """
local function write_history()
  local t = tonumber(ARGV[2])
  local tms = math.floor(t * 1000)
  local cap, nt = tonumber(ARGV[3]), tonumber(ARGV[4])
  local steps, keeps, longest = {}, {}, 0
  for j = 1, nt do
    steps[j], keeps[j] = tonumber(ARGV[3 + 2 * j]), tonumber(ARGV[4 + 2 * j])
    if keeps[j] > longest then longest = keeps[j] end
  end
  local base = 5 + 2 * nt
  local ns = tonumber(ARGV[base])
  local new = 0
  for i = 0, ns - 1 do
    new = new + 1 - redis.call('HEXISTS', KEYS[1], ARGV[base + 1 + 3 * i])
  end
  local have = redis.call('HLEN', KEYS[1])
  if new > 0 and have + new > cap then return {have, new} end
  for i = 0, ns - 1 do
    local a = base + 1 + 3 * i
    redis.call('HSET', KEYS[1], ARGV[a], ARGV[a + 1])
    local v = tonumber(ARGV[a + 2])
    for j = 1, nt do
      local key, step = KEYS[2 + i * nt + j], steps[j]
      if step == 0 then
        redis.call('ZADD', key, tms, string.format('%d,', tms) .. ARGV[a + 2])
      else
        local b = tms - tms % step
        local lo, hi, sum, n = v, v, v, 1
        local old = redis.call('ZRANGEBYSCORE', key, b, b, 'LIMIT', 0, 1)[1]
        if old then
          local _, olo, ohi, osum, on =
            string.match(old, '^([^,]*),([^,]*),([^,]*),([^,]*),([^,]*)$')
          lo, hi = math.min(lo, tonumber(olo)), math.max(hi, tonumber(ohi))
          sum, n = sum + tonumber(osum), n + tonumber(on)
          redis.call('ZREM', key, old)
        end
        redis.call('ZADD', key, b, string.format('%d,%.17g,%.17g,%.17g,%d', b, lo, hi, sum, n))
      end
      redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. string.format('%d', tms - keeps[j]))
      redis.call('PEXPIRE', key, keeps[j])
    end
  end
  redis.call('PEXPIRE', KEYS[1], longest)
  redis.call('ZADD', KEYS[2], t, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (t - longest / 1000))
  return nil
end
"""

# After the history ARGV: the host hash key is KEYS[#KEYS - 3 * publishes], the snapshot
# is the published payload. Stores it as the host's newest and publishes it.
HOST_LUA = (
    HISTORY_LUA
    + """
local refused = write_history()
if refused then return {0, refused[1], refused[2]} end
local last = publish_all()
redis.call('HSET', KEYS[#KEYS - 3], ARGV[1], ARGV[#ARGV - 6])
return {1, last[1], last[2]}
"""
)

# Publishes every series of the source (its hash's values) as one message; the message's
# head (source, time, interval) is the ARGV before the publish's own.
SOURCE_LUA = (
    HISTORY_LUA
    + """
local refused = write_history()
if refused then return {0, refused[1], refused[2]} end
local head = ARGV[#ARGV - 7]
local message = head .. table.concat(redis.call('HVALS', KEYS[1]), ',') .. ']}'
local last = publish_all(0, message)
return {1, last[1], last[2]}
"""
)

# One round trip per query. KEYS: the source's series hash, then the candidate tiers'
# keys, finest first. ARGV: series id, from, to (ms), most points, then per tier its
# expected points (-1: count them, for the raw tier). Returns {0, source known} for an
# unknown series, {2} when no tier fits, else {1, info, tier (1-based), points}: one JSON
# array of arrays (members are comma-separated numbers), which msgspec decodes in C
# instead of a thousand strings parsed one by one.
RANGE_LUA = """
local info = redis.call('HGET', KEYS[1], ARGV[1])
if not info then return {0, redis.call('EXISTS', KEYS[1])} end
local most = tonumber(ARGV[4])
for j = 2, #KEYS do
  local n = tonumber(ARGV[3 + j])
  if n < 0 then n = redis.call('ZCOUNT', KEYS[j], ARGV[2], ARGV[3]) end
  if n <= most then
    local members = redis.call('ZRANGEBYSCORE', KEYS[j], ARGV[2], ARGV[3])
    return {1, info, j - 1, '[[' .. table.concat(members, '],[') .. ']]'}
  end
end
return {2}
"""
