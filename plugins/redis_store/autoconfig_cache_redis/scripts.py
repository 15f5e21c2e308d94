"""Lua scripts that make every write of the Redis store atomic and version-guarded.

Every script takes ``KEYS[1]`` = the data hash (the cache key, Relay Proxy layout) and
``KEYS[2]`` = the companion versions hash (field -> item version). Both keys hash to the same
Redis Cluster slot (see :func:`autoconfig_cache_redis.layout.versions_key`), so each script runs
on one node.

The stored version of a field is:

* absent when the data hash lacks the field (a versions entry without data is stale, e.g. left
  behind when a Relay Proxy deleted the whole hash);
* unknown when the data hash has the field but the versions hash does not: a Relay
  Proxy wrote it. Any write replaces it, as the Relay Proxy itself would;
* otherwise the number in the versions hash.

Every script that changes something sets the versions hash's ``~generation`` field to a random
token chosen by the client. ``set_all`` uses it for an optimistic check: it reads the state,
computes the diff on the client and sends only what changed; the script refuses (returns -1)
when the generation or the number of fields moved in between, and the client retries.
"""

from __future__ import annotations

#: Field of the versions hash holding the token of the last change (never an item field,
#: which always starts with ``env:`` or ``filter:``).
GENERATION_FIELD = "~generation"

# Versions are compared as canonical decimal strings (length first, then text), not as Lua
# numbers: Lua numbers are doubles, which cannot tell 2**53 from 2**53 + 1.
_STORED_VERSION = """
local function newer(a, b)
  -- true when decimal string a is greater than decimal string b (both canonical)
  if #a ~= #b then
    return #a > #b
  end
  return a > b
end
local function stored_version(field)
  -- false: no such field; '': field written by someone else (unknown version); else digits
  if redis.call('HEXISTS', KEYS[1], field) == 0 then
    return false
  end
  local v = redis.call('HGET', KEYS[2], field)
  if not v or not string.match(v, '^%d+$') then
    return ''
  end
  local canonical = string.gsub(v, '^0+(%d)', '%1')
  return canonical
end
local function should_write(stored, version, rewrite)
  if stored == false or stored == '' then
    return true
  end
  if rewrite and stored == version then
    return true
  end
  return newer(version, stored)
end
"""

#: ARGV: field, version, blob, token. Returns 1 if written, 0 if a same or newer version is there.
UPSERT = (
    _STORED_VERSION
    + """
local field = ARGV[1]
if not should_write(stored_version(field), ARGV[2], false) then
  return 0
end
redis.call('HSET', KEYS[1], field, ARGV[3])
redis.call('HSET', KEYS[2], field, ARGV[2], '~generation', ARGV[4])
return 1
"""
)

#: ARGV: field, version, token. Returns 1 if deleted, 0 if absent or stored at >= version.
DELETE = (
    _STORED_VERSION
    + """
local field = ARGV[1]
local stored = stored_version(field)
if stored == false then
  redis.call('HDEL', KEYS[2], field)
  return 0
end
if stored ~= '' and not newer(ARGV[2], stored) then
  return 0
end
redis.call('HDEL', KEYS[1], field)
redis.call('HDEL', KEYS[2], field)
redis.call('HSET', KEYS[2], '~generation', ARGV[3])
return 1
"""
)

#: ARGV: mode ('diff' | 'full'), rewrite_unchanged ('1' | '0'), token, expected generation
#: ('' when absent), expected number of data fields, n, then n x (field, version, blob),
#: m, then m fields to delete (diff mode only; full mode deletes every field it was not sent).
#: Returns {written, deleted}, or -1 when (diff mode) the hash changed since the client read it.
SET_ALL = (
    _STORED_VERSION
    + """
local mode = ARGV[1]
local rewrite = ARGV[2] == '1'
if mode == 'diff' then
  local generation = redis.call('HGET', KEYS[2], '~generation') or ''
  if generation ~= ARGV[4] or redis.call('HLEN', KEYS[1]) ~= tonumber(ARGV[5]) then
    return -1
  end
end
local n = tonumber(ARGV[6])
local written = 0
local deleted = 0
local keep = {}
local i = 7
for _ = 1, n do
  local field = ARGV[i]
  keep[field] = true
  if should_write(stored_version(field), ARGV[i + 1], rewrite) then
    redis.call('HSET', KEYS[1], field, ARGV[i + 2])
    redis.call('HSET', KEYS[2], field, ARGV[i + 1])
    written = written + 1
  end
  i = i + 3
end
if mode == 'diff' then
  local m = tonumber(ARGV[i])
  for j = i + 1, i + m do
    deleted = deleted + redis.call('HDEL', KEYS[1], ARGV[j])
    redis.call('HDEL', KEYS[2], ARGV[j])
  end
else
  for _, field in ipairs(redis.call('HKEYS', KEYS[1])) do
    if not keep[field] then
      deleted = deleted + redis.call('HDEL', KEYS[1], field)
      redis.call('HDEL', KEYS[2], field)
    end
  end
  for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
    if field ~= '~generation' and not keep[field] then
      redis.call('HDEL', KEYS[2], field)
    end
  end
end
if written + deleted > 0 then
  redis.call('HSET', KEYS[2], '~generation', ARGV[3])
end
return {written, deleted}
"""
)

#: Marker returned by SET_ALL when the optimistic check failed.
STALE = -1
