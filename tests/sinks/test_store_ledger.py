"""The store-backed delivery ledger against a real SQLite store: claims, restarts, takeovers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.sinks.store_ledger import StoreDeliveryLedger, deliveries_cache_key
from tests.sinks.conftest import delete, initialized, insert, make_env, update

CACHE_KEY = "ledger-test"
ENCRYPTION_KEY = "an encryption key for the ledger tests"

LedgerMaker = Callable[..., StoreDeliveryLedger]


def open_cache(path: Path, cache_key: str) -> AutoConfigCache:
    return AutoConfigCache.open(
        f"sqlite:///{path}", cache_key=cache_key, encryption_key=ENCRYPTION_KEY
    )


@pytest.fixture
async def ledgers(tmp_path: Path) -> AsyncIterator[LedgerMaker]:
    """Ledgers on one SQLite file, as instances sharing a store would have."""
    made: list[StoreDeliveryLedger] = []

    def make(claim_timeout: float = 60.0) -> StoreDeliveryLedger:
        cache = open_cache(tmp_path / "store.db", deliveries_cache_key(CACHE_KEY))
        ledger = StoreDeliveryLedger(cache, claim_timeout=claim_timeout, poll_interval=0.02)
        made.append(ledger)
        return ledger

    yield make
    for ledger in made:
        await ledger.close()


async def test_a_delivered_change_is_not_delivered_again_after_a_restart(
    ledgers: LedgerMaker,
) -> None:
    env = make_env(version=3)
    first = ledgers()
    assert await first.should_deliver("exec", insert(env))
    await first.delivered("exec", insert(env))
    restarted = ledgers()
    assert not await restarted.should_deliver("exec", insert(env))
    # Another sink has its own records; a newer version is due again.
    assert await restarted.should_deliver("vault", insert(env))
    newer = make_env(env.env_id, version=4)
    assert await restarted.should_deliver("exec", update(env, newer))


async def test_one_of_two_instances_claims_and_the_other_skips_once_delivered(
    ledgers: LedgerMaker,
) -> None:
    env = make_env(version=1)
    a, b = ledgers(), ledgers()
    assert await a.should_deliver("exec", insert(env))
    waiting = asyncio.create_task(b.should_deliver("exec", insert(env)))
    await asyncio.sleep(0.1)
    assert not waiting.done()  # b waits while a's claim stands
    await a.delivered("exec", insert(env))
    assert await asyncio.wait_for(waiting, 10) is False


async def test_a_claim_left_standing_is_taken_over_after_the_claim_timeout(
    ledgers: LedgerMaker,
) -> None:
    env = make_env(version=2)
    dead = ledgers()
    assert await dead.should_deliver("exec", insert(env))  # claimed, never settled
    survivor = ledgers(claim_timeout=0.2)
    assert await asyncio.wait_for(survivor.should_deliver("exec", insert(env)), 10)
    await survivor.delivered("exec", insert(env))
    assert not await ledgers().should_deliver("exec", insert(env))


async def test_an_insert_and_the_delete_of_the_same_version_are_each_delivered_once(
    ledgers: LedgerMaker,
) -> None:
    env = make_env(version=5)
    ledger = ledgers()
    assert await ledger.should_deliver("exec", insert(env))
    await ledger.delivered("exec", insert(env))
    assert await ledger.should_deliver("exec", delete(env))
    await ledger.delivered("exec", delete(env))
    other = ledgers()
    assert not await other.should_deliver("exec", delete(env))
    # The insert, seen late (from a cache written before the delete), is out of date.
    assert not await other.should_deliver("exec", insert(env))


async def test_initialized_is_never_claimed(ledgers: LedgerMaker) -> None:
    env = make_env()
    a, b = ledgers(), ledgers()
    assert await a.should_deliver("exec", initialized(env))
    assert await b.should_deliver("exec", initialized(env))


async def test_the_records_are_not_under_the_cache_key_of_the_data(
    ledgers: LedgerMaker, tmp_path: Path
) -> None:
    env = make_env(version=1)
    ledger = ledgers()
    await ledger.should_deliver("exec", insert(env))
    await ledger.delivered("exec", insert(env))
    async with open_cache(tmp_path / "store.db", CACHE_KEY) as data:
        assert await data.get_records() == []
    records = await ledger.cache.get_records()
    assert [record.field for record in records] == [f"exec/env:{env.env_id}"]
    assert b"delivered" not in records[0].blob  # encrypted like every record of the cache
