"""Two behaviours that must survive any optimisation of the write and start-up paths.

* A record loaded under a previous encryption key is re-encrypted under the current key by the
  next ordinary put, without ``rewrite_unchanged``: "write only what changed" must count a
  stale key as a change, also when the put won the race against the cache read (on SQLite here;
  on Redis in ``tests/redis/test_rotation_on_put.py``).
* A cache read that finishes after the stream's put, because the store ignored the
  cancellation, is discarded: its older data is never applied over the put.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from autoconfig_cache import AutoConfigCache, StorageFormat
from autoconfig_cache.plugin import (
    RegisterStore,
    Store,
    StoredRecord,
    StoreSpec,
    hookimpl,
)
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.stream import SnapshotSource, StreamServer
from tests.items import env_json
from tests.key_rotation import (
    FORMATS,
    rotate_by_identical_stream_put,
    rotate_by_ordinary_set_all,
    rotate_by_stream_put_that_won_the_race,
    snapshot_of,
    stream_server,
)
from tests.secret_values import known_secret
from tests.stream.conftest import RecordingHandler, eventually, make_manager, put_versions, versions
from tests.wrapped_store import WrappedStore

__all__ = ["stream_server"]  # a fixture: imported to be used by name


KEY = known_secret("must-not-change-encryption-key")


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'cache.db'}"


# ---- a record under a previous key is re-encrypted by the next ordinary put ---------------------


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_ordinary_set_all_reencrypts_records_loaded_under_a_previous_key(
    tmp_path: Path, fmt: StorageFormat
) -> None:
    await rotate_by_ordinary_set_all(sqlite_url(tmp_path), "rotation", fmt)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_identical_stream_put_reencrypts_records_loaded_under_a_previous_key(
    tmp_path: Path, fmt: StorageFormat, stream_server: StreamServer
) -> None:
    await rotate_by_identical_stream_put(sqlite_url(tmp_path), "rotation", fmt, stream_server)


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_stream_put_that_cancelled_the_cache_read_reencrypts_records_under_a_previous_key(
    tmp_path: Path, fmt: StorageFormat, stream_server: StreamServer
) -> None:
    await rotate_by_stream_put_that_won_the_race(
        sqlite_url(tmp_path), "rotation", fmt, stream_server
    )


@pytest.mark.parametrize("fmt", FORMATS, ids=str)
async def test_stream_put_after_a_failed_cache_read_reencrypts_records_under_a_previous_key(
    tmp_path: Path, fmt: StorageFormat, stream_server: StreamServer
) -> None:
    await rotate_by_stream_put_that_won_the_race(
        sqlite_url(tmp_path), "rotation", fmt, stream_server, read_fails=True
    )


# ---- a cache read that answers after the put is discarded ---------------------------------------

CACHED = {"environments": {"e1": env_json("e1", 10), "cache-only": env_json("cache-only", 1)}}
STREAM = {"environments": {"e1": env_json("e1", 11), "e3": env_json("e3", 1)}}
CACHE_KEY = "late-read"
LATE_SCHEME = "latesqlite"


class LateReadStore(WrappedStore):
    """A SQLite store whose reads answer late and cannot be cancelled.

    ``cache_get_all`` reads the records, then holds its answer until the test sets
    :attr:`release`; a cancellation meanwhile is ignored (counted), as a client library that
    cannot interrupt a request does. Writes go straight to the SQLite store.
    """

    store_name = "late-read store"

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.answer_ready = asyncio.Event()
        self.release = asyncio.Event()
        self.cancellations_ignored = 0

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        return await self._track(self._late_get_all())

    async def _late_get_all(self) -> list[StoredRecord]:
        records = await self._inner.cache_get_all()
        self.answer_ready.set()
        while not self.release.is_set():
            try:
                await self.release.wait()
            except asyncio.CancelledError:
                # Swallowed on purpose: the store this stands for cannot be interrupted.
                self.cancellations_ignored += 1
        return records


class LateReadPlugin:
    """Registers ``latesqlite://``: a :class:`LateReadStore` over the SQLite file ``path``."""

    def __init__(self, path: Path, registry: PluginRegistry) -> None:
        self._sqlite = registry.stores["sqlite"].factory
        self._url = f"sqlite://{path}"

    @hookimpl
    def autoconfig_cache_register_stores(self, register: RegisterStore) -> None:
        register([LATE_SCHEME], self._open, description="SQLite with late, uncancellable reads")

    def _open(self, spec: StoreSpec) -> LateReadStore:
        return LateReadStore(self._sqlite(StoreSpec(self._url, spec.cache_key)))


async def test_a_cache_read_answering_after_the_put_is_discarded(
    tmp_path: Path, stream_server: StreamServer
) -> None:
    path = tmp_path / "cache.db"
    async with AutoConfigCache.open(
        f"sqlite://{path}", cache_key=CACHE_KEY, encryption_key=KEY
    ) as seeder:
        await seeder.set_all(snapshot_of(CACHED))
    registry = PluginRegistry(load_entry_points=False)
    registry.register(LateReadPlugin(path, registry), name="late-read")
    stream_server.set_snapshot(STREAM)
    stream_server.hold_put()
    handler = RecordingHandler()
    async with (
        AutoConfigCache.open(
            f"{LATE_SCHEME}://", cache_key=CACHE_KEY, encryption_key=KEY, registry=registry
        ) as cache,
        make_manager(stream_server, handler, cache) as manager,
    ):
        store = cache.store
        assert isinstance(store, LateReadStore)
        await asyncio.wait_for(store.answer_ready.wait(), 10)  # the old data is read, held back
        stream_server.release_put()
        put_done = await handler.wait_for(("all_received", "stream"))
        assert store.cancellations_ignored >= 1  # the put cancelled the read, in vain
        assert manager.status().cache_read_cancelled

        store.release.set()  # the read answers now, after the put was applied
        await eventually(
            lambda: (
                manager.status().cache_result_discarded
                or ("all_received", "cache") in handler.calls
            ),
            what="the late cache result handled",
        )
        assert handler.since(put_done) == []  # nothing of the cache's data reached the handler
        assert manager.source is SnapshotSource.STREAM
        assert versions(manager.snapshot()) == put_versions(STREAM)
        assert manager.status().cache_result_discarded
