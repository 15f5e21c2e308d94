"""One item a store cannot take never pins the store: the rest is written, the instance stays
ready, nothing is re-synchronised for it, and the refusal is logged once and shown in
``/status`` and ``/metrics``.

A real stream server, real stores: moto for DynamoDB (which refuses items over 400 KB) and
SQLite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.stream import StreamServer
from tests.dynamodb.conftest import TABLE, MotoServer
from tests.items import env_json

from .conftest import RecordingHandler, eventually, fetch_status_and_metrics, make_manager

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def moto_process() -> Iterator[MotoServer]:
    server = MotoServer()
    server.start()
    server.create_table()
    yield server
    server.kill()


def open_dynamodb_cache(moto: MotoServer) -> AutoConfigCache:
    return AutoConfigCache.open(
        f"dynamodb://{TABLE}?region=us-east-1&endpoint={moto.endpoint}",
        cache_key="stream-refusals",
        encryption_key="enc-key-1234",
    )


async def stored_versions(cache: AutoConfigCache) -> dict[str, int]:
    load = await cache.get_all()
    return {env_id: item.version for env_id, item in load.snapshot.environments.items()}


def refusal_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "the store refused" in r.getMessage()]


async def test_an_environment_over_the_stores_item_limit_is_refused_alone_and_reported(
    server: StreamServer, moto_process: MotoServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="autoconfig_cache")
    server.set_snapshot(
        {
            "environments": {
                "e1": env_json("e1", 1),
                "big": env_json("big", 1, padding="x" * 500_000),
                "e2": env_json("e2", 1),
            },
            "filters": {},
        }
    )
    handler = RecordingHandler()
    async with (
        open_dynamodb_cache(moto_process) as cache,
        make_manager(server, handler, cache) as manager,
    ):
        await handler.wait_for(("all_received", "stream"))
        await eventually(lambda: manager.status().store_refused_records == 1, what="a refusal")
        status = manager.status()
        assert [entry.field for entry in status.store_refused] == ["env:big"]
        assert status.ready and not status.store_dirty
        assert (status.store_error_count, status.resync_count) == (0, 0)
        assert await stored_versions(cache) == {"e1": 1, "e2": 1}

        status_text, metrics_text = await fetch_status_and_metrics(manager)
        store_json = json.loads(status_text)["store"]
        assert store_json["refusedRecords"] == 1 and not store_json["resyncPending"]
        [refused] = store_json["refused"]
        assert (refused["kind"], refused["id"]) == ("environment", "big")
        assert "400 KB" in refused["reason"]
        assert "autoconfig_cache_store_refused_records_total 1" in metrics_text.splitlines()
        assert "autoconfig_cache_store_refused_records 1" in metrics_text.splitlines()

        # Every reconnect brings the whole put again: not logged, counted nor re-synchronised.
        await server.push_reconnect()
        await eventually(lambda: handler.calls.count(("all_received", "stream")) == 2)
        await eventually(lambda: manager.status().pending_writes == 0)
        await server.push_patch("/environments/e3", env_json("e3", 1))
        await eventually(lambda: _has(cache, "e3"), what="a later patch is written")
        status = manager.status()
        assert status.store_refused_records == 1 and len(refusal_lines(caplog)) == 1
        assert not status.store_dirty and status.store_error_count == 0

        # Once the environment fits, it is written and no longer listed.
        await server.push_patch("/environments/big", env_json("big", 2))
        await eventually(lambda: manager.status().store_refused == (), what="refusal resolved")
        assert await stored_versions(cache) == {"e1": 1, "e2": 1, "e3": 1, "big": 2}
        _, metrics_text = await fetch_status_and_metrics(manager)
        assert "autoconfig_cache_store_refused_records 0" in metrics_text.splitlines()


async def _has(cache: AutoConfigCache, env_id: str) -> bool:
    return env_id in await stored_versions(cache)


def nested_list_json(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_an_environment_the_cache_cannot_encode_does_not_stop_the_other_writes(
    server: StreamServer, tmp_path: Path
) -> None:
    # Nesting the stream's JSON decoder accepts and the encoder cannot walk. The whole set_all
    # used to fail, the store was marked dirty and every re-sync failed the same way: the store
    # never saw another change while /readyz said 200.
    server.set_snapshot({"environments": {"e1": env_json("e1", 1)}, "filters": {}})
    handler = RecordingHandler()
    cache = AutoConfigCache.open(
        f"sqlite://{tmp_path / 'cache.db'}", cache_key="k", encryption_key="enc-key-1234"
    )
    async with cache, make_manager(server, handler, cache) as manager:
        await handler.wait_for(("all_received", "stream"))
        deep = json.dumps(env_json("deep", 1, nested=[]))[:-1] + ', "extra": '
        deep += nested_list_json(1000) + "}"
        environments = ",".join(
            [f'"deep": {deep}', *(f'"{e}": {json.dumps(env_json(e, 1))}' for e in ("e1", "e2"))]
        )
        await server.push_event(
            "put", '{"path": "/", "data": {"environments": {' + environments + '}, "filters": {}}}'
        )
        await eventually(lambda: _has(cache, "e2"), what="the other environments are written")
        await server.push_patch("/environments/e3", env_json("e3", 1))
        await eventually(lambda: _has(cache, "e3"), what="later changes are written")
        status = manager.status()
        assert status.ready and not status.store_dirty
        assert (status.store_error_count, status.resync_count) == (0, 0)
        assert manager.get_environment("deep") is not None  # served from memory all the same
