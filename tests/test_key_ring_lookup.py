"""The key ring's lookup by key id, which every ``v2`` record of a load goes through."""

from __future__ import annotations

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.stores.memory import MemoryStore
from tests.items import env_json

CURRENT = "key-ring-lookup-current"
OLD = "key-ring-lookup-old"


def cache_under(name: str, keys: KeyRing) -> AutoConfigCache:
    # Store objects sharing one dictionary by name, as processes share one server.
    return AutoConfigCache(MemoryStore(name, "lookup"), cache_key="lookup", keys=keys)


def snapshot() -> Snapshot:
    return Snapshot({"e": Environment.from_json(env_json("e", 1))}, {})


def test_by_id_finds_each_configured_key_and_nothing_else() -> None:
    ring = KeyRing.from_strings(CURRENT, [OLD])
    assert ring.by_id(ring.current.key_id) is ring.current
    assert ring.by_id(ring.previous[0].key_id) is ring.previous[0]
    assert ring.by_id(KeyRing.from_strings("another").current.key_id) is None


async def test_a_key_listed_again_as_previous_is_still_the_current_key() -> None:
    # The same string twice gives two equal keys with one id: the current one must answer,
    # or every record written under it would be reported stale and rewritten on each put.
    async with cache_under("listed-again", KeyRing.from_strings(CURRENT)) as cache:
        await cache.set_all(snapshot())
    keys = KeyRing.from_strings(CURRENT, [OLD, CURRENT])
    async with cache_under("listed-again", keys) as cache:
        load = await cache.get_all()
    assert load.report.skipped == ()
    assert load.report.stale_key_fields == ()


async def test_a_record_under_a_previous_key_is_found_and_reported_stale() -> None:
    async with cache_under("previous", KeyRing.from_strings(OLD)) as cache:
        await cache.set_all(snapshot())
    async with cache_under("previous", KeyRing.from_strings(CURRENT, [OLD])) as cache:
        load = await cache.get_all()
    assert set(load.snapshot.environments) == {"e"}
    assert load.report.stale_key_fields == ("env:e",)
