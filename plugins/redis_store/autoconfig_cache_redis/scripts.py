"""Lua scripts that make every write of the Redis store atomic and version-guarded.

Every script takes ``KEYS[1]`` = the data hash (the cache key, Relay Proxy layout: live items
only), ``KEYS[2]`` = the versions hash (field -> stored version) and ``KEYS[3]`` = the tombstones
hash (field -> tombstone blob). The three keys hash to the same Redis Cluster slot (see
:func:`autoconfig_cache_redis.layout.companion_key`), so each script runs on one node.

A field is stored in at most one of the data and tombstones hashes; the scripts move it from one
to the other as an item is deleted and comes back. Its stored version is:

* absent when neither hash has the field (a versions entry without either is stale, e.g. left
  behind when a Relay Proxy deleted the whole data hash);
* unknown when the data hash has the field but the versions hash does not: a Relay Proxy wrote
  it. Any write replaces it, as the Relay Proxy itself would;
* unknown too when both the data and the tombstones hash have the field. These scripts never
  leave a field in both, so a Relay Proxy wrote the item back (its ``put`` or ``upsert``) after
  this store recorded its deletion: the Relay Proxy's item is what both readers see, and the
  tombstone no longer describes it;
* unknown too when the versions hash holds something other than decimal digits, or a number
  above ``MAX_STORED_VERSION`` (2**54 - 1): not a version this project writes, so damaged or
  someone else's. Treating it as unknown lets the next write replace it, where comparing with
  it (``2**70``, say) would block the item for good;
* otherwise the number in the versions hash.

Every script that changes something sets the versions hash's ``~generation`` field to a random
token chosen by the client. ``set_all`` uses it for an optimistic check: it reads the state,
computes the diff on the client and sends only what changed; the script refuses (returns -1)
when the generation or the number of fields moved in between, and the client retries.
"""

from __future__ import annotations

from autoconfig_cache.plugin import MAX_STORED_VERSION

#: Field of the versions hash holding the token of the last change (never an item field,
#: which always starts with ``env:`` or ``filter:``).
GENERATION_FIELD = "~generation"

# Versions are compared as canonical decimal strings (length first, then text), not as Lua
# numbers: Lua numbers are doubles, which cannot tell 2**53 from 2**53 + 1.
_COMMON = (
    f"local MAX_STORED = '{MAX_STORED_VERSION}'\n"
    + """
local function newer(a, b)
  -- true when decimal string a is greater than decimal string b (both canonical)
  if #a ~= #b then
    return #a > #b
  end
  return a > b
end
local function stored_state(field)
  -- Returns version, deleted. version: false = no such field; '' = unknown (written by someone
  -- else); else canonical digits. deleted: true when the field is held as a tombstone.
  local live = redis.call('HEXISTS', KEYS[1], field) == 1
  local tombstone = redis.call('HEXISTS', KEYS[3], field) == 1
  if not live and not tombstone then
    return false, false
  end
  if live and tombstone then
    return '', false
  end
  local v = redis.call('HGET', KEYS[2], field)
  if not v or not string.match(v, '^%d+$') then
    return '', tombstone
  end
  v = (string.gsub(v, '^0+(%d)', '%1'))
  if newer(v, MAX_STORED) then
    return '', tombstone
  end
  return v, tombstone
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
local function write(field, version, blob, deleted)
  -- A live item goes to the data hash, a tombstone to the tombstones hash; never both.
  if deleted then
    redis.call('HDEL', KEYS[1], field)
    redis.call('HSET', KEYS[3], field, blob)
  else
    redis.call('HSET', KEYS[1], field, blob)
    redis.call('HDEL', KEYS[3], field)
  end
  redis.call('HSET', KEYS[2], field, version)
end
local function remove(field)
  -- 1 if an item or a tombstone was removed, else 0; the versions entry goes either way.
  local removed = redis.call('HDEL', KEYS[1], field) + redis.call('HDEL', KEYS[3], field)
  redis.call('HDEL', KEYS[2], field)
  if removed > 0 then
    return 1
  end
  return 0
end
"""
)

#: ARGV: field, version, blob, deleted ('1' | '0'), token. Returns 1 if written, 0 if a same or
#: newer version is there (item or tombstone alike).
UPSERT = (
    _COMMON
    + """
local field = ARGV[1]
if not should_write((stored_state(field)), ARGV[2], false) then
  return 0
end
write(field, ARGV[2], ARGV[3], ARGV[4] == '1')
redis.call('HSET', KEYS[2], '~generation', ARGV[5])
return 1
"""
)

#: ARGV: field, version, token. Removes the item or the tombstone. Returns 1 if removed, 0 if
#: absent or stored at >= version.
DELETE = (
    _COMMON
    + """
local field = ARGV[1]
local stored = stored_state(field)
if stored and stored ~= '' and not newer(ARGV[2], stored) then
  return 0
end
-- An absent field removes nothing (0), but remove() still drops its stale versions entry.
if remove(field) == 0 then
  return 0
end
redis.call('HSET', KEYS[2], '~generation', ARGV[3])
return 1
"""
)

#: ARGV: mode ('diff' | 'full'), rewrite_unchanged ('1' | '0'), token, expected generation
#: ('' when absent), expected number of fields of the data and tombstones hashes together, n,
#: then n x (field, version, blob, deleted), m, then m fields: to delete in diff mode; in full
#: mode, to keep as they are (records the store refused), every other field it was not sent
#: being deleted.
#: A record is written when should_write says so; a tombstone also when the data hash holds the
#: field at the same version (a 0.1 tombstone, which moves to the tombstones hash).
#: Returns {written, deleted}, or -1 when (diff mode) the hashes changed since the client read
#: them.
SET_ALL = (
    _COMMON
    + """
local mode = ARGV[1]
local rewrite = ARGV[2] == '1'
if mode == 'diff' then
  local generation = redis.call('HGET', KEYS[2], '~generation') or ''
  local fields = redis.call('HLEN', KEYS[1]) + redis.call('HLEN', KEYS[3])
  if generation ~= ARGV[4] or fields ~= tonumber(ARGV[5]) then
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
  local wants_tombstone = ARGV[i + 3] == '1'
  keep[field] = true
  local stored, stored_tombstone = stored_state(field)
  -- A tombstone at the version of an item in the data hash is the same deletion, written there
  -- by 0.1: rewriting it moves it out of the Relay Proxy's view. (Never the reverse: a tombstone
  -- outranks an item at the same version.)
  local relocate = wants_tombstone and not stored_tombstone
  if should_write(stored, ARGV[i + 1], rewrite or relocate) then
    write(field, ARGV[i + 1], ARGV[i + 2], wants_tombstone)
    written = written + 1
  end
  i = i + 4
end
local m = tonumber(ARGV[i])
if mode == 'diff' then
  for j = i + 1, i + m do
    deleted = deleted + remove(ARGV[j])
  end
else
  for j = i + 1, i + m do
    keep[ARGV[j]] = true
  end
  for _, key in ipairs({KEYS[1], KEYS[3]}) do
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if not keep[field] then
        deleted = deleted + remove(field)
      end
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
