"""The store contract: checked at registration, typed, and compatible with stores written for 0.1.

A store written against the 0.1 guide (a plain class, ``@hookimpl`` from
``autoconfig_cache.hookspecs``, a ``cache_key`` attribute, a factory registered through
``autoconfig_cache_register_stores``) and its 0.1 kit test module keep working; the only change
they see is a DeprecationWarning saying to subclass ``StoreBase``.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import uuid
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

# Only 0.1 import paths in the legacy store and its test module below.
from autoconfig_cache import AutoConfigCache, Environment, KeyRing, Snapshot
from autoconfig_cache.errors import (
    PluginContractError,
    StoreClosedError,
    StoreConflictError,
    StoreContractError,
    UnknownHookError,
)
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.testing import StoreConformance
from tests.items import env_json
from tests.secret_values import known_secret

KEY = known_secret("contract-test-encryption-key")
ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# A store written for autoconfig-cache 0.1, as its guide described it
# ---------------------------------------------------------------------------------------------

_legacy_data: dict[str, dict[str, StoredRecord]] = {}
_legacy_lock = threading.Lock()


class LegacyStore:
    """A 0.1-style store: no base class, its own closed flag, records in a shared dict."""

    def __init__(self, cache_key: str) -> None:
        self.cache_key = cache_key
        with _legacy_lock:
            self._records = _legacy_data.setdefault(cache_key, {})
        self._closed = False

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> LegacyStore:
        return cls(spec.cache_key)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreClosedError("legacy store")

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        self._check_open()
        with _legacy_lock:
            return list(self._records.values())

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        self._check_open()
        with _legacy_lock:
            wanted = {record.field for record in records}
            for field in [field for field in self._records if field not in wanted]:
                del self._records[field]
            for record in records:
                current = self._records.get(record.field)
                if (
                    current is None
                    or current.version < record.version
                    or (rewrite_unchanged and current.version == record.version)
                ):
                    self._records[record.field] = record

    @hookimpl
    async def cache_upsert(self, record: StoredRecord) -> bool:
        self._check_open()
        with _legacy_lock:
            current = self._records.get(record.field)
            if current is not None and current.version >= record.version:
                return False
            self._records[record.field] = record
            return True

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        self._check_open()
        with _legacy_lock:
            current = self._records.get(field)
            if current is None or current.version >= version:
                return False
            del self._records[field]
            return True

    @hookimpl
    async def cache_clear(self) -> None:
        self._check_open()
        with _legacy_lock:
            self._records.clear()

    @hookimpl
    async def cache_close(self) -> None:
        self._closed = True


class LegacyPlugin:
    """The 0.1 registration: a factory under a scheme."""

    @hookimpl
    def autoconfig_cache_register_stores(self, register: Any) -> None:
        register(["legacy"], LegacyStore.from_spec, description="a store written for 0.1")


@pytest.fixture(autouse=True)
def _forget_legacy_data() -> Iterator[None]:
    yield
    with _legacy_lock:
        _legacy_data.clear()


class TestLegacyStoreConformance(StoreConformance):
    """The 0.1 kit test module of that store, unchanged: ``store`` and ``store_factory``."""

    @pytest_asyncio.fixture
    async def store(self) -> AsyncIterator[LegacyStore]:
        store = LegacyStore.from_spec(StoreSpec("legacy://", f"conformance-{uuid.uuid4().hex}"))
        yield store
        await store.cache_close()

    @pytest.fixture
    def store_factory(self, store: LegacyStore) -> Callable[[], LegacyStore]:
        return lambda: LegacyStore.from_spec(StoreSpec("legacy://", store.cache_key))


async def test_a_store_written_for_0_1_runs_through_the_cache_with_a_deprecation_warning() -> None:
    registry = PluginRegistry(load_entry_points=False)
    registry.register(LegacyPlugin(), name="legacy")
    assert registry.stores["legacy"].description == "a store written for 0.1"
    with pytest.warns(DeprecationWarning, match="subclass autoconfig_cache.plugin.StoreBase"):
        cache = AutoConfigCache.open(
            "legacy://", cache_key="legacy-key", encryption_key=KEY, registry=registry
        )
    async with cache:
        await cache.set_all(
            Snapshot(
                environments={
                    env_id: Environment.from_json(env_json(env_id, version))
                    for env_id, version in {"a": 3, "b": 1}.items()
                },
                filters={},
            )
        )
        loaded = await cache.get_all()
    assert sorted(loaded.snapshot.environments) == ["a", "b"]
    assert loaded.snapshot.environments["a"].version == 3
    assert sorted(_legacy_data["legacy-key"]) == ["env:a", "env:b"]


def test_a_store_base_subclass_raises_no_deprecation_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        cache_on(MemoryStore())


# ---------------------------------------------------------------------------------------------
# Validation at registration
# ---------------------------------------------------------------------------------------------


def cache_on(store: object, registry: PluginRegistry | None = None) -> AutoConfigCache:
    return AutoConfigCache(
        store,
        cache_key="k",
        keys=KeyRing.from_strings(KEY),
        registry=registry or PluginRegistry(load_entry_points=False),
    )


class MisspeltHookStore(MemoryStore):
    @hookimpl
    async def cache_create_storag(self) -> None:
        """Misspelt: would never be called."""


class UnmarkedHookStore(MemoryStore):
    async def cache_upsert(self, record: StoredRecord) -> bool:  # no @hookimpl
        return await super().cache_upsert(record)


class IncompleteStore:
    cache_key = "k"

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        return []

    @hookimpl
    async def cache_close(self) -> None:
        pass


def test_a_misspelt_store_hook_is_an_error_naming_it_and_the_likely_hook() -> None:
    with pytest.raises(UnknownHookError) as caught:
        cache_on(MisspeltHookStore())
    message = str(caught.value)
    assert "'cache_create_storag'" in message
    assert "did you mean 'cache_create_storage'" in message


def test_a_misspelt_hook_of_a_registered_plugin_is_an_error_and_it_is_not_registered() -> None:
    class Observer:
        @hookimpl
        def autoconfig_cache_on_lod(self, report: object) -> None:
            pass

    registry = PluginRegistry(load_entry_points=False)
    with pytest.raises(UnknownHookError, match="'autoconfig_cache_on_lod'") as caught:
        registry.register(Observer(), name="observer")
    assert caught.value.plugin == "observer"
    assert registry.pm.get_plugin("observer") is None


def test_an_unmarked_store_method_is_an_error_naming_the_class_and_the_method() -> None:
    with pytest.raises(StoreContractError) as caught:
        cache_on(UnmarkedHookStore())
    message = str(caught.value)
    assert "UnmarkedHookStore" in message
    assert "cache_upsert" in message
    assert "@hookimpl" in message


def test_a_store_lacking_required_hooks_is_an_error_naming_them() -> None:
    with pytest.raises(StoreContractError) as caught:
        cache_on(IncompleteStore())
    message = str(caught.value)
    assert "IncompleteStore" in message
    for hook in ("cache_set_all", "cache_upsert", "cache_delete", "cache_clear"):
        assert hook in message
    assert "cache_get_all" not in message.split("hook(s)", 1)[1].split(";")[0]


def test_create_storage_is_optional_for_a_store() -> None:
    cache_on(LegacyStore("k"))  # implements every required hook but cache_create_storage


class StrayStoreAnswer:
    """Answers create_storage as if it were the store (what once hit ``memory://``)."""

    @hookimpl
    async def cache_create_storage(self) -> None:
        pass


def test_a_plugin_answering_a_store_hook_is_refused_at_registration() -> None:
    registry = PluginRegistry(load_entry_points=False)
    with pytest.raises(StoreConflictError) as caught:
        registry.register(StrayStoreAnswer(), name="stray")
    assert caught.value.plugin == "stray"
    assert "cache_create_storage" in str(caught.value)
    assert "wrapper=True" in str(caught.value)
    assert registry.pm.get_plugin("stray") is None


def test_a_second_store_answering_plugin_in_a_cache_is_an_error_naming_it() -> None:
    registry = PluginRegistry(load_entry_points=False)
    # Bypassing the registry's own check, as an embedding application could.
    registry.pm.register(StrayStoreAnswer(), name="stray")
    with pytest.raises(StoreConflictError, match="'stray'"):
        cache_on(MemoryStore(), registry)


def test_a_wrapper_of_a_store_hook_is_accepted() -> None:
    class Timing:
        @hookimpl(wrapper=True)
        def cache_get_all(self) -> Any:
            return (yield)

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Timing(), name="timing")
    cache_on(MemoryStore(), registry)


def test_contract_errors_are_configuration_errors_of_the_package() -> None:
    from autoconfig_cache.errors import AutoConfigCacheError, ConfigurationError

    for error in (UnknownHookError, StoreContractError, StoreConflictError):
        assert issubclass(error, PluginContractError)
    assert issubclass(PluginContractError, ConfigurationError)
    assert issubclass(PluginContractError, AutoConfigCacheError)


# ---------------------------------------------------------------------------------------------
# The typed contract: mypy checks each store against the Store protocol
# ---------------------------------------------------------------------------------------------

_TYPED = """
from collections.abc import Sequence

from autoconfig_cache.plugin import Store, StoreBase, StoredRecord, hookimpl
from autoconfig_cache.stores.memory import MemoryStore
from autoconfig_cache.stores.null import NullStore
from autoconfig_cache.stores.sqlite import SQLiteStore
from autoconfig_cache_dynamodb.store import DynamoDBStore
from autoconfig_cache_redis.store import RedisStore

stores: list[type[Store]] = [MemoryStore, NullStore, SQLiteStore, RedisStore, DynamoDBStore]


class NoUpsert(StoreBase):
    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        return []

    @hookimpl
    async def cache_set_all(self, records: Sequence[StoredRecord], rewrite_unchanged: bool) -> None:
        pass

    @hookimpl
    async def cache_delete(self, field: str, version: int) -> bool:
        return False

    @hookimpl
    async def cache_clear(self) -> None:
        pass


broken: type[Store] = NoUpsert  # BROKEN
"""


def test_mypy_checks_every_built_in_store_against_the_store_protocol(tmp_path: Path) -> None:
    source = tmp_path / "typed_stores.py"
    source.write_text(textwrap.dedent(_TYPED))
    broken_line = next(
        number
        for number, line in enumerate(source.read_text().splitlines(), 1)
        if line.endswith("# BROKEN")
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(source)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    # Every store passes; the one error is the class without cache_upsert (so mypy did check).
    assert errors, result.stdout + result.stderr
    assert all(f"typed_stores.py:{broken_line}:" in line for line in errors), result.stdout
