"""The change tracker: handler calls in, changes out (previous states filled in, sources told
apart); then wired to a real stream manager, local stream server and cache."""

from __future__ import annotations

from typing import Any

import pytest

from autoconfig_cache.models import Snapshot
from autoconfig_cache.sinks import Change, ChangeKind, ChangeSource, ChangeTracker
from autoconfig_cache.stream import SnapshotSource, StreamServer
from tests.items import env_json, filter_json
from tests.stream.conftest import AUTOCONFIG_KEY, CountingStore, make_cache, make_manager

from .conftest import eventually, make_env


def summary(changes: list[Change]) -> list[tuple[Any, ...]]:
    """Each change as (kind, env id, version, previous version, source)."""
    return [
        (
            str(c.kind),
            c.env_id,
            c.version,
            None if c.previous is None else c.previous.version,
            str(c.source),
        )
        for c in changes
    ]


def test_handler_calls_become_changes_with_previous_states() -> None:
    changes: list[Change] = []
    tracker = ChangeTracker(changes.append)
    a1, b1 = make_env("env-a", 1), make_env("env-b", 1)
    tracker.on_environment_added(a1)
    tracker.on_environment_added(b1)
    tracker.on_all_environments_received(SnapshotSource.STREAM)
    a2 = make_env("env-a", 2)
    tracker.on_environment_updated(a2)
    tracker.on_environment_deleted(b1)
    assert summary(changes) == [
        ("insert", "env-a", 1, None, "stream"),
        ("insert", "env-b", 1, None, "stream"),
        ("initialized", None, None, None, "stream"),
        ("update", "env-a", 2, 1, "stream"),
        ("delete", "env-b", 1, None, "stream"),
    ]
    assert changes[3].previous is a1
    assert dict(changes[2].environments or {}) == {"env-a": a1, "env-b": b1}
    assert dict(tracker.environments) == {"env-a": a2}


def test_the_first_batch_waits_for_its_source() -> None:
    changes: list[Change] = []
    tracker = ChangeTracker(changes.append)
    tracker.on_environment_added(make_env("env-a", 1))
    assert changes == []  # from the cache or the stream? not known yet
    tracker.on_all_environments_received(SnapshotSource.CACHE)
    tracker.on_environment_updated(make_env("env-a", 2))  # later changes: the stream's
    tracker.on_all_environments_received(SnapshotSource.STREAM)
    assert summary(changes) == [
        ("insert", "env-a", 1, None, "cache"),
        ("initialized", None, None, None, "cache"),
        ("update", "env-a", 2, 1, "stream"),
        ("initialized", None, None, None, "stream"),
    ]


def test_initialized_holds_the_set_of_its_time() -> None:
    changes: list[Change] = []
    tracker = ChangeTracker(changes.append)
    tracker.on_environment_added(make_env("env-a"))
    tracker.on_all_environments_received(SnapshotSource.STREAM)
    tracker.on_environment_added(make_env("env-b"))
    assert set(changes[1].environments or {}) == {"env-a"}


def test_an_update_of_an_unseen_environment_is_an_insert() -> None:
    changes: list[Change] = []
    tracker = ChangeTracker(changes.append)
    tracker.on_all_environments_received(SnapshotSource.STREAM)
    tracker.on_environment_updated(make_env("env-a", 3))
    assert summary(changes)[1] == ("insert", "env-a", 3, None, "stream")


def test_a_change_must_fit_its_kind() -> None:
    env = make_env("env-a")
    with pytest.raises(ValueError, match="previous"):
        Change(ChangeKind.UPDATE, env)
    with pytest.raises(ValueError, match="environments"):
        Change(ChangeKind.INITIALIZED)
    with pytest.raises(ValueError, match="another environment"):
        Change(ChangeKind.UPDATE, env, previous=make_env("env-b"))


@pytest.fixture
async def server() -> Any:
    srv = StreamServer({}, autoconfig_key=AUTOCONFIG_KEY)
    await srv.start()
    yield srv
    await srv.close()


async def test_wired_to_a_stream_manager_cache_changes_are_marked_and_stream_ones_follow(
    server: StreamServer,
) -> None:
    cached = {
        "environments": {"e1": env_json("e1", 10), "e2": env_json("e2", 20)},
        "filters": {"f1": filter_json(5)},
    }
    streamed = {"environments": {"e1": env_json("e1", 11), "e3": env_json("e3", 1)}}
    store = CountingStore()
    cache = make_cache(store)
    snapshot, problems = Snapshot.from_put_data(cached)
    assert not problems
    await cache.set_all(snapshot)
    server.set_snapshot(streamed)
    server.hold_put()  # LaunchDarkly is slow to answer: the cache serves first
    changes: list[Change] = []
    tracker = ChangeTracker(changes.append)
    async with make_manager(server, tracker, cache):
        await eventually(lambda: len(changes) == 3, what="the cached configuration")
        assert sorted(summary(changes[:2])) == [
            ("insert", "e1", 10, None, "cache"),
            ("insert", "e2", 20, None, "cache"),
        ]
        assert summary(changes[2:]) == [("initialized", None, None, None, "cache")]
        server.release_put()
        await eventually(lambda: len(changes) == 7, what="the stream's put")
        assert sorted(summary(changes[3:6])) == [
            ("delete", "e2", 20, None, "stream"),
            ("insert", "e3", 1, None, "stream"),
            ("update", "e1", 11, 10, "stream"),
        ]
        final = changes[6]
        assert final.kind is ChangeKind.INITIALIZED and final.source is ChangeSource.STREAM
        assert sorted(final.environments or {}) == ["e1", "e3"]  # filters are not delivered
        await server.push_delete("/environments/e3", 2)
        await eventually(lambda: len(changes) == 8, what="the stream's delete")
        assert summary(changes[7:]) == [("delete", "e3", 1, None, "stream")]
