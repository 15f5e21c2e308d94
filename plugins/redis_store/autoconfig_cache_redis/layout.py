"""Where the Redis store keeps things.

* The data hash: key = the cache key exactly, fields ``env:<id>`` / ``filter:<id>``, values = the
  blobs exactly. This is the Relay Proxy's layout, so both can share one cache. It holds only
  live items: a Relay Proxy decodes every field of it as an item.
* The versions hash: field -> stored version (decimal), plus ``~generation``. The Relay Proxy
  never reads nor writes it.
* The tombstones hash: field -> blob of the tombstone the core wrote when the item was deleted.
  The Relay Proxy never reads nor writes it either, so a deletion it never sees cannot show up
  in its cache as a bogus item.

The companion hashes' keys must land in the same Redis Cluster slot as the data hash so that one
Lua script can update all three; see :func:`companion_key`.
"""

from __future__ import annotations

from autoconfig_cache.plugin import ConfigurationError

VERSIONS_SUFFIX = ":versions"
TOMBSTONES_SUFFIX = ":tombstones"


def hash_tag(key: str) -> str | None:
    """The Redis Cluster hash tag of ``key``, or ``None`` if the whole key is hashed.

    Redis hashes only the part between the first ``{`` and the first ``}`` after it, when that
    part is not empty.
    """
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end < 0 or end == start + 1:
        return None
    return key[start + 1 : end]


def companion_key(cache_key: str, suffix: str) -> str:
    """The key of the companion hash ``suffix`` (e.g. ``:versions``) of the data hash ``cache_key``.

    * ``cache_key`` without a hash tag and without ``}``: ``{<cache_key>}<suffix>``. Its hash
      tag is the whole cache key, so Redis Cluster puts it in the data hash's slot.
    * ``cache_key`` with a hash tag (``app{x}``): ``<cache_key><suffix>``, which keeps the same
      tag and so the same slot.
    * ``cache_key`` containing ``}`` but no valid tag (``a}b``, ``a{}b``): no companion key name
      can share its slot, so such a cache key is rejected (on every mode, so that moving to a
      cluster later does not change the layout).
    """
    if not cache_key:
        raise ConfigurationError("the cache key is empty; set a non-empty cache key")
    if hash_tag(cache_key) is not None:
        return cache_key + suffix
    if "}" in cache_key:
        raise ConfigurationError(
            f"cache key {cache_key!r} contains '}}' without forming a Redis Cluster hash tag; "
            f"the store cannot place its companion hashes in the same slot. Remove the braces "
            f"or use a proper hash tag such as 'prefix{{tag}}'"
        )
    return "{" + cache_key + "}" + suffix


def versions_key(cache_key: str) -> str:
    """The key of the versions hash that goes with the data hash ``cache_key``."""
    return companion_key(cache_key, VERSIONS_SUFFIX)


def tombstones_key(cache_key: str) -> str:
    """The key of the tombstones hash that goes with the data hash ``cache_key``."""
    return companion_key(cache_key, TOMBSTONES_SUFFIX)
