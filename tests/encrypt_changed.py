"""Scenarios of "encrypt only what changed", shared by the SQLite and Redis tests.

``AutoConfigCache.set_all`` hands the store every item of the snapshot, each as a record whose
blob is encoded and encrypted only when the store reads it; the store reads the blobs of the
records it writes. So a put identical to what is stored costs no encryption and no write, one
changed item costs one of each, a rewrite of unchanged records (key rotation) still costs them
all, and what is stale is decided by the store, never by a memory of the facade: a record
deleted behind the cache's back is written again by the next put.

Encryptions are counted by an encryption plugin that only counts (it returns ``None``, so the
built-in AES-256-GCM codec still encrypts); writes by the store's ``records_written`` probe.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.codec.formats import EncryptionContext
from autoconfig_cache.errors import PartialWriteError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.models import Environment, Snapshot
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.storebase import StoreBase
from tests.items import env_json

#: Items in each scenario's snapshot.
COUNT = 40

CACHE_KEY = "encrypt-changed"
KEY = "encrypt-only-what-changed"

StoreOpener = Callable[[], StoreBase]


class CountingEncryption:
    """Notes the field of every encryption and leaves the work to the built-in codec; notes
    the write errors the cache reports.

    :param unencodable: fields whose encryption raises ``ValueError``, which the codec takes
        for an item that cannot be encoded (as it does a string UTF-8 cannot hold).
    """

    def __init__(self, unencodable: frozenset[str] = frozenset()) -> None:
        self.encrypted: list[str] = []
        self.unencodable = unencodable
        self.write_errors: list[BaseException] = []

    @hookimpl
    def cache_encrypt(self, plaintext: bytes, context: EncryptionContext) -> bytes | None:
        if context.field in self.unencodable:
            raise ValueError("this test's item cannot be encoded")
        self.encrypted.append(context.field)
        return None  # the built-in AES-256-GCM codec encrypts it

    @hookimpl
    def autoconfig_cache_on_write_error(self, operation: str, error: BaseException) -> None:
        self.write_errors.append(error)


def open_counted(
    store: StoreBase, counter: CountingEncryption, *, key: str = KEY, previous: str | None = None
) -> AutoConfigCache:
    """A cache on ``store`` whose encryptions ``counter`` counts."""
    registry = PluginRegistry(load_entry_points=False)
    registry.register(counter, name="counting-encryption")
    keys = KeyRing.from_strings(key, () if previous is None else (previous,))
    return AutoConfigCache(store, cache_key=CACHE_KEY, keys=keys, registry=registry)


def snapshot(versions: dict[str, int]) -> Snapshot:
    """Environments ``env_id -> version`` (their keys are random, as the stream's are)."""
    return Snapshot(
        {env_id: Environment.from_json(env_json(env_id, v)) for env_id, v in versions.items()},
        {},
    )


def initial_versions() -> dict[str, int]:
    return {f"e{index}": 1 for index in range(COUNT)}


async def stored_versions(store: StoreBase) -> dict[str, int]:
    """What a cache holding the key loads from ``store``: item id -> version."""
    async with AutoConfigCache(
        store, cache_key=CACHE_KEY, keys=KeyRing.from_strings(KEY)
    ) as reader:
        result = await reader.get_all()
    assert not result.report.skipped, result.report.skipped
    return {env_id: item.version for env_id, item in result.snapshot.environments.items()}


async def seed(open_store: StoreOpener, put: Snapshot) -> None:
    """Write ``put`` through a cache of its own (as another process, earlier, did)."""
    async with open_counted(open_store(), CountingEncryption()) as writer:
        await writer.set_all(put)


async def identical_put_costs_nothing(open_store: StoreOpener) -> None:
    """A restarted process loads the cache, then the stream's put holds the same items."""
    put = snapshot(initial_versions())
    await seed(open_store, put)
    counter = CountingEncryption()
    store = open_store()
    async with open_counted(store, counter) as cache:
        await cache.get_all()
        written = store.records_written
        await cache.set_all(put)
        assert counter.encrypted == []
        assert store.records_written - written == 0
        # The same again, in the process that wrote (no load in between).
        await cache.set_all(put)
        assert counter.encrypted == []
        assert store.records_written - written == 0
    assert await stored_versions(open_store()) == initial_versions()


async def one_changed_item_costs_one_encryption(open_store: StoreOpener) -> None:
    versions = initial_versions()
    await seed(open_store, snapshot(versions))
    counter = CountingEncryption()
    store = open_store()
    async with open_counted(store, counter) as cache:
        await cache.get_all()
        versions["e7"] = 2
        written = store.records_written
        await cache.set_all(snapshot(versions))
        assert counter.encrypted == ["env:e7"]
        assert store.records_written - written == 1
    assert await stored_versions(open_store()) == versions


async def rewrite_unchanged_encrypts_every_item(open_store: StoreOpener) -> None:
    """Key rotation's write: every record is re-encrypted and rewritten, changed or not."""
    put = snapshot(initial_versions())
    await seed(open_store, put)
    counter = CountingEncryption()
    store = open_store()
    async with open_counted(store, counter) as cache:
        await cache.get_all()
        written = store.records_written
        await cache.set_all(put, rewrite_unchanged=True)
        assert sorted(counter.encrypted) == sorted(f"env:{env_id}" for env_id in put.environments)
        assert store.records_written - written == COUNT


async def out_of_band_delete_is_repaired_by_the_next_put(
    open_store: StoreOpener, delete_out_of_band: Callable[[str], None]
) -> None:
    """The store, not a memory of what the facade wrote, decides what the put must write."""
    put = snapshot(initial_versions())
    counter = CountingEncryption()
    store = open_store()
    async with open_counted(store, counter) as cache:
        await cache.set_all(put)
        assert len(counter.encrypted) == COUNT
        delete_out_of_band("env:e3")
        assert "e3" not in await stored_versions(open_store())
        counter.encrypted.clear()
        await cache.set_all(put)
        assert counter.encrypted == ["env:e3"]
    assert await stored_versions(open_store()) == initial_versions()


async def unencodable_item_is_refused_alone(open_store: StoreOpener) -> None:
    """An item found unencodable when the store reads its blob: refused alone, the others
    written, what the store held for it kept."""
    versions = initial_versions()
    await seed(open_store, snapshot(versions))
    counter = CountingEncryption(unencodable=frozenset({"env:e5"}))
    store = open_store()
    async with open_counted(store, counter) as cache:
        changed = {**versions, "e1": 2, "e5": 2, "new": 1}
        with pytest.raises(PartialWriteError) as raised:
            await cache.set_all(snapshot(changed))
        assert [entry.field for entry in raised.value.refused] == ["env:e5"]
        assert "cannot be encoded" in raised.value.refused[0].reason
        assert [entry.field for entry in cache.refusals.current] == ["env:e5"]
        assert sorted(counter.encrypted) == ["env:e1", "env:new"]
        assert counter.write_errors == []  # a refused item, not a failed write
    assert await stored_versions(open_store()) == {**changed, "e5": 1}
