"""Scenarios of key rotation that must keep working, shared by the SQLite and Redis tests.

A record loaded under a previous encryption key is re-encrypted under the current key by the
next *ordinary* write of the whole snapshot (``set_all`` without ``rewrite_unchanged``), even
when no item changed: the stores skip records whose version they already hold, so only the
facade's repair after a load makes that write reach them. Whether it did is checked
independently of the cache that wrote: a second cache holding only the new key must read every
record, and each ``v2`` record's header must name the new key's id.

The same holds for a process whose cache read never finished: the stream's put won the race and
cancelled it, so no load found the old key; the manager reads the store after the put's write
and has the records rewritten (:func:`rotate_by_stream_put_that_won_the_race`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache, Snapshot, StorageFormat
from autoconfig_cache.codec import KeyRing
from autoconfig_cache.plugin import RegisterStore, Store, StoredRecord, StoreSpec, hookimpl
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.stream import StreamServer
from tests.items import env_json, filter_json
from tests.secret_values import known_secret
from tests.stream.conftest import (
    AUTOCONFIG_KEY,
    RecordingHandler,
    eventually,
    make_manager,
    put_versions,
    versions,
)
from tests.wrapped_store import WrappedStore

OLD_KEY = known_secret("rotation-old-encryption-key")
NEW_KEY = known_secret("rotation-new-encryption-key")

FORMATS = [StorageFormat.V2, StorageFormat.RELAY]


def put_data() -> dict[str, Any]:
    """What the stream sends and the store holds: environments and a filter, random keys."""
    return {
        "environments": {"e1": env_json("e1", 3), "e2": env_json("e2", 7)},
        "filters": {"f1": filter_json(2)},
    }


def snapshot_of(data: dict[str, Any]) -> Snapshot:
    """The snapshot of put data (which must be valid)."""
    snapshot, problems = Snapshot.from_put_data(data)
    assert not problems
    return snapshot


def open_rotated(url: str, cache_key: str, fmt: StorageFormat) -> AutoConfigCache:
    """A cache that encrypts with the new key and still decrypts with the old one."""
    return AutoConfigCache.open(
        url,
        cache_key=cache_key,
        encryption_key=NEW_KEY,
        previous_encryption_keys=[OLD_KEY],
        format=fmt,
    )


async def seed_under_old_key(
    url: str, cache_key: str, fmt: StorageFormat, data: dict[str, Any]
) -> None:
    """Store ``data`` encrypted under the old key, and check that the new key cannot read it
    (else the checks after the put would prove nothing)."""
    async with AutoConfigCache.open(
        url, cache_key=cache_key, encryption_key=OLD_KEY, format=fmt
    ) as old:
        await old.set_all(snapshot_of(data))
    async with AutoConfigCache.open(
        url, cache_key=cache_key, encryption_key=NEW_KEY, format=fmt
    ) as new_only:
        before = await new_only.get_all()
    assert len(before.report.skipped) == len(put_versions(data)), before.report.skipped


async def assert_stored_under_new_key_only(
    url: str, cache_key: str, fmt: StorageFormat, data: dict[str, Any]
) -> None:
    """Every stored record decrypts with the new key alone, and holds ``data``'s versions."""
    async with AutoConfigCache.open(
        url, cache_key=cache_key, encryption_key=NEW_KEY, format=fmt
    ) as new_only:
        result = await new_only.get_all()
        records = await new_only.get_records()
        key_ids = {new_only.codec.key_id_of(record) for record in records}
    assert result.report.skipped == ()
    assert versions(result.snapshot) == put_versions(data)
    if fmt is StorageFormat.V2:
        assert key_ids == {KeyRing.from_strings(NEW_KEY).current.key_id_hex}


async def rotate_by_ordinary_set_all(url: str, cache_key: str, fmt: StorageFormat) -> None:
    """Load under the rotated keys, write the same snapshot back without
    ``rewrite_unchanged``: every record ends under the new key."""
    data = put_data()
    await seed_under_old_key(url, cache_key, fmt, data)
    async with open_rotated(url, cache_key, fmt) as cache:
        loaded = await cache.get_all()
        assert len(loaded.report.stale_key_fields) == len(put_versions(data))
        await cache.set_all(loaded.snapshot)
    await assert_stored_under_new_key_only(url, cache_key, fmt, data)


async def rotate_by_identical_stream_put(
    url: str, cache_key: str, fmt: StorageFormat, server: StreamServer
) -> None:
    """A manager serves the old-key cache, then the stream sends a put identical to it: the
    put's write re-encrypts every record under the new key."""
    data = put_data()
    await seed_under_old_key(url, cache_key, fmt, data)
    server.set_snapshot(data)
    server.hold_put()  # the cache is loaded first: that load is what finds the old key
    handler = RecordingHandler()
    async with (
        open_rotated(url, cache_key, fmt) as cache,
        make_manager(server, handler, cache) as manager,
    ):
        await handler.wait_for(("all_received", "cache"))
        assert manager.status().last_successful_write_at is None  # nothing written back
        server.release_put()
        stream_done = await handler.wait_for(("all_received", "stream"))
        # The put is identical: no item changed, so the handler heard of nothing else.
        assert handler.calls[stream_done - 1] == ("all_received", "cache")
        await eventually(
            lambda: manager.status().last_successful_write_at is not None,
            what="the put's write",
        )
        assert not manager.status().store_dirty
    await assert_stored_under_new_key_only(url, cache_key, fmt, data)


GATED_SCHEME = "firstreadgated"


class FirstReadGatedStore(WrappedStore):
    """A real store whose first read waits until cancelled (a store slower than the stream), or
    fails at once (``fail``: a store down at start).

    Every other call, later reads included, goes straight to the store it wraps.
    """

    store_name = "first-read-gated store"

    def __init__(self, inner: Store, *, fail: bool) -> None:
        super().__init__(inner)
        self._fail = fail
        self.first_read_started = asyncio.Event()
        self.first_read_cancelled = False
        self.reads = 0

    @hookimpl
    async def cache_get_all(self) -> list[StoredRecord]:
        self.reads += 1
        if self.reads == 1:
            self.first_read_started.set()
            if self._fail:
                raise ConnectionError("the store is down (first read of the test)")
            try:
                await asyncio.Event().wait()  # never answers: only a cancellation ends it
            except asyncio.CancelledError:
                self.first_read_cancelled = True
                raise
        return await super().cache_get_all()


class FirstReadGatedPlugin:
    """Registers ``firstreadgated://``: a :class:`FirstReadGatedStore` over the store at ``url``."""

    def __init__(self, url: str, registry: PluginRegistry, *, fail: bool) -> None:
        self._factory = registry.stores[url.split(":", 1)[0]].factory
        self._url = url
        self._fail = fail

    @hookimpl
    def autoconfig_cache_register_stores(self, register: RegisterStore) -> None:
        register([GATED_SCHEME], self._open, description="a store whose first read never answers")

    def _open(self, spec: StoreSpec) -> FirstReadGatedStore:
        return FirstReadGatedStore(
            self._factory(StoreSpec(self._url, spec.cache_key)), fail=self._fail
        )


async def stored_under_new_key_only(
    url: str, cache_key: str, fmt: StorageFormat, data: dict[str, Any]
) -> bool:
    """Whether :func:`assert_stored_under_new_key_only` holds now."""
    try:
        await assert_stored_under_new_key_only(url, cache_key, fmt, data)
    except AssertionError:
        return False
    return True


async def rotate_by_stream_put_that_won_the_race(
    url: str, cache_key: str, fmt: StorageFormat, server: StreamServer, *, read_fails: bool = False
) -> None:
    """The store is slower than the stream: a put identical to the old-key cache cancels the
    cache read, so no load found the old key. Every record still ends under the new key.

    ``read_fails``: the cache read fails instead (the store was down at start), with the same
    outcome.
    """
    data = put_data()
    await seed_under_old_key(url, cache_key, fmt, data)
    registry = PluginRegistry()
    registry.register(FirstReadGatedPlugin(url, registry, fail=read_fails), name="first-read-gated")
    server.set_snapshot(data)
    handler = RecordingHandler()
    async with (
        AutoConfigCache.open(
            f"{GATED_SCHEME}://",
            cache_key=cache_key,
            encryption_key=NEW_KEY,
            previous_encryption_keys=[OLD_KEY],
            format=fmt,
            registry=registry,
        ) as cache,
        make_manager(server, handler, cache) as manager,
    ):
        store = cache.store
        assert isinstance(store, FirstReadGatedStore)
        await asyncio.wait_for(store.first_read_started.wait(), 10)
        await handler.wait_for(("all_received", "stream"))
        if read_fails:
            assert manager.status().store_error_count >= 1
        else:
            assert store.first_read_cancelled and manager.status().cache_read_cancelled
        assert ("all_received", "cache") not in handler.calls
        await eventually(
            lambda: stored_under_new_key_only(url, cache_key, fmt, data),
            what="every record rewritten under the new key",
        )
        assert not manager.status().store_dirty


@pytest.fixture
async def stream_server() -> AsyncIterator[StreamServer]:
    """A local AutoConfig stream server on loopback."""
    server = StreamServer({}, autoconfig_key=AUTOCONFIG_KEY)
    await server.start()
    yield server
    await server.close()
