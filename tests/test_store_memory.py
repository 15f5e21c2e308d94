"""The built-in memory store: the conformance kit plus what is specific to ``memory://``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.memory import MemoryStore, forget_shared_memory_stores
from autoconfig_cache.testing import StoreConformance


@pytest.fixture(autouse=True)
def _forget_shared_stores() -> Iterator[None]:
    yield
    forget_shared_memory_stores()


class TestPrivateMemoryStore(StoreConformance):
    """``memory://``: one private store object (multi-writer tests use tasks on it)."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        store = MemoryStore.from_spec(StoreSpec("memory://", "cache-key"))
        yield store
        await store.cache_close()


class TestSharedMemoryStore(StoreConformance):
    """``memory://NAME``: several store objects sharing one cache key."""

    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        store = MemoryStore.from_spec(StoreSpec("memory://shared", "cache-key"))
        yield store
        await store.cache_close()

    @pytest.fixture
    def store_factory(self) -> Callable[[], MemoryStore]:
        return lambda: MemoryStore.from_spec(StoreSpec("memory://shared", "cache-key"))


async def test_private_memory_stores_do_not_share_records() -> None:
    first = MemoryStore.from_spec(StoreSpec("memory://", "key"))
    second = MemoryStore.from_spec(StoreSpec("memory://", "key"))
    await first.cache_upsert(record=StoredRecord("env:a", 1, b"x"))
    assert await second.cache_get_all() == []


async def test_named_memory_stores_share_records_per_name_and_cache_key() -> None:
    writer = MemoryStore.from_spec(StoreSpec("memory://team", "key"))
    await writer.cache_upsert(record=StoredRecord("env:a", 1, b"x"))
    await writer.cache_close()
    same = MemoryStore.from_spec(StoreSpec("memory://team", "key"))
    other_key = MemoryStore.from_spec(StoreSpec("memory://team", "other-key"))
    other_name = MemoryStore.from_spec(StoreSpec("memory://other", "key"))
    assert await same.cache_get_all() == [StoredRecord("env:a", 1, b"x")]
    assert await other_key.cache_get_all() == []
    assert await other_name.cache_get_all() == []


async def test_forget_shared_memory_stores_drops_named_data() -> None:
    writer = MemoryStore.from_spec(StoreSpec("memory://team", "key"))
    await writer.cache_upsert(record=StoredRecord("env:a", 1, b"x"))
    forget_shared_memory_stores()
    assert await MemoryStore.from_spec(StoreSpec("memory://team", "key")).cache_get_all() == []


def test_memory_url_with_a_path_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="memory://NAME"):
        MemoryStore.from_spec(StoreSpec("memory://name/extra", "key"))


def test_memory_scheme_is_registered_through_the_discovery_hook() -> None:
    registry = PluginRegistry(load_entry_points=False)
    registration = registry.stores["memory"]
    assert registration.plugin_name == "memory"
    assert isinstance(registry.open_store(StoreSpec("memory://", "key")), MemoryStore)
