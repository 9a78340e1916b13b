"""The Lua of the task store: each task change, deletion, query and statistics read is one
script, so the indexes below never disagree with the states they point at.

Keys (``rc`` is ``key_prefix``; ``<m>`` is a task's member ``<project>/<id>``)::

    rc:{tasks.<p>}:task:<id>      hash: v version, s state JSON, x index entry JSON
    rc:{tasks.<p>}:log:<id>       stream: the task's log (bounded by lines and age)
    rc:{tasks.<p>}:group:<g>      hash: a group's counts and current task
    rc:tasks:ix:<scope>:c         zset <m> by creation time   (scope: * or p:<project>)
    rc:tasks:ix:<scope>:u         zset <m> by last change time
    rc:tasks:ix:<scope>:s:<status>, t:<type>, o:<owner>, g:<tag>
                                  zsets <m> by creation time: the filters of a query
    rc:tasks:ix:<scope>:h:<hour>, m:<minute>
                                  hashes "<type>\\t<status>\\t<bin>" -> tasks that finished
                                  then, by duration bin (statistics)
    rc:tasks:ix:<scope>:slow:<hour>
                                  zset <m> by duration: the 20 slowest finished that hour

A task is indexed in both scopes. Tasks whose last change is older than ``task_ttl`` are
removed (state, log, index entries) a few at a time by every write and read, so nothing
points at a task that is gone. Statistics buckets outlive tasks (:data:`STATS_KEEP`).

The scripts name index keys they work out themselves, beyond the ones passed in ``KEYS``:
like every task script they need one Redis server (or Sentinel's primary), not a Cluster.
"""

from __future__ import annotations

__all__ = ["DELETE_LUA", "QUERY_LUA", "STATS_KEEP", "STATS_LUA", "WRITE_LUA"]

STATS_KEEP = 8 * 86400
"""Seconds the statistics buckets are kept: a week's window, and a day of margin."""

# Helpers every script starts with. ARGV[1] of every script is the key prefix.
_COMMON = """
local R = ARGV[1]
local function ix(scope, name) return R .. ':tasks:ix:' .. scope .. ':' .. name end
local function record(p, id) return R .. ':{tasks.' .. p .. '}:task:' .. id end
local function logkey(p, id) return R .. ':{tasks.' .. p .. '}:log:' .. id end
local function scopes(x) return {'*', 'p:' .. x.p} end
local function filters(x, scope)
  local sets = {ix(scope, 'c'), ix(scope, 's:' .. x.s), ix(scope, 't:' .. x.t)}
  if x.o ~= '' then sets[#sets + 1] = ix(scope, 'o:' .. x.o) end
  for _, tag in ipairs(x.g) do sets[#sets + 1] = ix(scope, 'g:' .. tag) end
  return sets
end
local function uncount(x, m)
  if not x.f then return end
  local field = x.t .. '\\t' .. x.s .. '\\t' .. x.b
  for _, scope in ipairs(scopes(x)) do
    for _, key in ipairs({ix(scope, 'h:' .. math.floor(x.f / 3600)),
                          ix(scope, 'm:' .. math.floor(x.f / 60))}) do
      if redis.call('HEXISTS', key, field) == 1 then
        if redis.call('HINCRBY', key, field, -1) <= 0 then redis.call('HDEL', key, field) end
      end
    end
    redis.call('ZREM', ix(scope, 'slow:' .. math.floor(x.f / 3600)), m)
  end
end
-- Remove task <m> with its log and index entries; its state JSON, or false if unknown.
local function drop(m, forget_stats)
  local p, id = string.match(m, '^([^/]+)/(.+)$')
  local key = record(p, id)
  local raw = redis.call('HMGET', key, 's', 'x')
  redis.call('ZREM', ix('*', 'u'), m)
  if not raw[2] then return false end
  local x = cjson.decode(raw[2])
  for _, scope in ipairs(scopes(x)) do
    for _, set in ipairs(filters(x, scope)) do redis.call('ZREM', set, m) end
    redis.call('ZREM', ix(scope, 'u'), m)
  end
  if forget_stats then uncount(x, m) end
  redis.call('DEL', key, logkey(p, id))
  return raw[1]
end
local function sweep(now, ttl, n)
  local old = redis.call('ZRANGEBYSCORE', ix('*', 'u'), '-inf', now - ttl, 'LIMIT', 0, n)
  for _, m in ipairs(old) do drop(m, false) end
end
"""

# KEYS: record, log stream, group hash ('' key name when none), then the publishes'.
# ARGV: prefix, expected version ('' = must not exist), new version ('' = no state
# change), state JSON, ttl, index entry JSON, old status ('' on create), log line JSON
# (''), log max lines, log min id, group delta JSON (''), now, stats keep.
# Returns {1, ''} when done, {0, current state JSON or ''} when the version did not match.
WRITE_LUA = (
    _COMMON
    + """
local now, ttl, keep = tonumber(ARGV[12]), tonumber(ARGV[5]), tonumber(ARGV[13])
local x = cjson.decode(ARGV[6])
local m = x.p .. '/' .. x.id
local changed = redis.call('ZSCORE', ix('*', 'u'), m)
if changed and tonumber(changed) < now - ttl then drop(m, false) end  -- expired: gone
local current = redis.call('HGET', KEYS[1], 'v')
if ARGV[2] == '' then
  if current then return {0, redis.call('HGET', KEYS[1], 's')} end
elseif current ~= ARGV[2] then
  return {0, redis.call('HGET', KEYS[1], 's') or ''}
end
if ARGV[3] ~= '' then
  redis.call('HSET', KEYS[1], 'v', ARGV[3], 's', ARGV[4], 'x', ARGV[6])
  for _, scope in ipairs(scopes(x)) do
    if ARGV[7] ~= x.s then
      if ARGV[7] ~= '' then redis.call('ZREM', ix(scope, 's:' .. ARGV[7]), m) end
      for _, set in ipairs(filters(x, scope)) do redis.call('ZADD', set, x.c, m) end
    end
    redis.call('ZADD', ix(scope, 'u'), now, m)
    if x.f and ARGV[7] ~= x.s then  -- it has just finished: count it
      local hour = math.floor(x.f / 3600)
      local field = x.t .. '\\t' .. x.s .. '\\t' .. x.b
      for _, key in ipairs({ix(scope, 'h:' .. hour), ix(scope, 'm:' .. math.floor(x.f / 60))}) do
        redis.call('HINCRBY', key, field, 1)
        redis.call('EXPIRE', key, keep)
      end
      local slow = ix(scope, 'slow:' .. hour)
      redis.call('ZADD', slow, x.d, m)
      redis.call('ZREMRANGEBYRANK', slow, 0, -21)
      redis.call('EXPIRE', slow, keep)
    end
  end
end
if ARGV[8] ~= '' then
  redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[9], '*', 'l', ARGV[8])
  redis.call('XTRIM', KEYS[2], 'MINID', ARGV[10])
  redis.call('EXPIRE', KEYS[2], ttl)
end
sweep(now, ttl, 10)
if ARGV[11] ~= '' then
  local d = cjson.decode(ARGV[11])
  for _, name in ipairs({'total', 'completed', 'failed', 'cancelled', 'running'}) do
    if d[name] then redis.call('HINCRBY', KEYS[3], name, d[name]) end
  end
  if d.current then redis.call('HSET', KEYS[3], 'current', d.current)
  elseif d.ended and redis.call('HGET', KEYS[3], 'current') == d.ended then
    redis.call('HDEL', KEYS[3], 'current')
  end
  redis.call('HSET', KEYS[3], 'updated_at', ARGV[12])
  redis.call('EXPIRE', KEYS[3], ttl)
  local g = {project = x.p, group = d.group, updated_at = now}
  local raw = redis.call('HGETALL', KEYS[3])
  for i = 1, #raw, 2 do
    if raw[i] == 'current' then g.current = raw[i + 1]
    elseif raw[i] ~= 'updated_at' then g[raw[i]] = tonumber(raw[i + 1]) end
  end
  local event = cjson.encode({type = 'group.changed', time = now, project = x.p,
                              group = d.group, state = g})
  publish_all(tonumber(ARGV[14]), event)
else
  publish_all()
end
return {1, ''}
"""
)

# ARGV: prefix, member, now. The publishes announce the deletion.
# Returns the deleted state JSON, or false when there was no such task (nothing published).
DELETE_LUA = (
    _COMMON
    + """
local raw = drop(ARGV[2], true)
if not raw then return false end
publish_all()
return raw
"""
)

# ARGV: prefix, scope, sort ('c' or 'u'), low bound, high bound, cursor score (''), cursor
# member, limit, scan budget, now, ttl, then filter set names (s:<status>, t:<type>, ...).
# Walks the smallest fitting set newest first, keeping members found in every filter set.
# Returns {members..., next score, next member} ('' '' when nothing is left).
QUERY_LUA = (
    _COMMON
    + """
sweep(tonumber(ARGV[10]), tonumber(ARGV[11]), 20)
local scope, sort = ARGV[2], ARGV[3]
local driver = ix(scope, sort)
local checks = {}
local best = redis.call('ZCARD', driver)
for i = 12, #ARGV do
  local set = ix(scope, ARGV[i])
  local n = redis.call('ZCARD', set)
  if n == 0 then return {'', ''} end
  if sort == 'c' and n < best then
    if driver ~= ix(scope, 'c') then checks[#checks + 1] = driver end
    driver, best = set, n
  else
    checks[#checks + 1] = set
  end
end
local low, high = ARGV[4], ARGV[5]
local cscore, cmember = ARGV[6], ARGV[7]
if cscore ~= '' then high = cscore end
local limit, budget = tonumber(ARGV[8]), tonumber(ARGV[9])
local found, offset, scanned = {}, 0, 0
local last_score, last_member = '', ''
while scanned < budget do
  local batch = redis.call('ZREVRANGEBYSCORE', driver, high, low, 'WITHSCORES',
                           'LIMIT', offset, 200)
  if #batch == 0 then
    found[#found + 1] = ''
    found[#found + 1] = ''
    return found
  end
  offset = offset + #batch / 2
  for i = 1, #batch, 2 do
    local m, score = batch[i], batch[i + 1]
    local skip = cscore ~= '' and tonumber(score) == tonumber(cscore) and m >= cmember
    if not skip then
      scanned = scanned + 1
      local ok = true
      for _, set in ipairs(checks) do
        if not redis.call('ZSCORE', set, m) then ok = false break end
      end
      last_score, last_member = score, m
      if ok then
        found[#found + 1] = m
        if #found >= limit then
          found[#found + 1] = score
          found[#found + 1] = m
          return found
        end
      end
      if scanned >= budget then break end
    end
  end
end
found[#found + 1] = last_score
found[#found + 1] = last_member
return found
"""
)

# ARGV: prefix, scope, from, to, now, ttl, bucket from, bucket to (the window within the
# buckets kept: at most STATS_KEEP seconds of them), statuses...
# Returns {counts by status (in the order given), created, running now,
#          {histogram field, count, ...}, {slow member, duration, ...}}.
STATS_LUA = (
    _COMMON
    + """
sweep(tonumber(ARGV[5]), tonumber(ARGV[6]), 20)
local scope, from, to = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out = {}
for i = 9, #ARGV do out[#out + 1] = redis.call('ZCOUNT', ix(scope, 's:' .. ARGV[i]), from, to) end
out[#out + 1] = redis.call('ZCOUNT', ix(scope, 'c'), from, to)
out[#out + 1] = redis.call('ZCARD', ix(scope, 's:running'))
local merged = {}
local function add(key)
  local raw = redis.call('HGETALL', key)
  for i = 1, #raw, 2 do merged[raw[i]] = (merged[raw[i]] or 0) + tonumber(raw[i + 1]) end
end
local bfrom, bto = tonumber(ARGV[7]), tonumber(ARGV[8])
local minute, last = math.floor(bfrom / 60), math.floor(bto / 60)
while minute <= last do
  if minute % 60 == 0 and minute + 59 <= last then
    add(ix(scope, 'h:' .. minute / 60))
    minute = minute + 60
  else
    add(ix(scope, 'm:' .. minute))
    minute = minute + 1
  end
end
local hist = {}
for field, n in pairs(merged) do
  if n > 0 then hist[#hist + 1] = field; hist[#hist + 1] = n end
end
out[#out + 1] = hist
local slow = {}
for hour = math.floor(bfrom / 3600), math.floor(bto / 3600) do
  local top = redis.call('ZREVRANGE', ix(scope, 'slow:' .. hour), 0, 19, 'WITHSCORES')
  for i = 1, #top do slow[#slow + 1] = top[i] end
end
out[#out + 1] = slow
return out
"""
)
