"""``Service.start`` reads the cache while the status port is being bound (issue 14, "Start
faster"), and a port in use still fails fast and leaves nothing running.

In-process, against a real SQLite store; the stream URI points where nothing listens, so the
only data is the cache's. Nothing is timed: the first test records whether the status port
accepted connections at the moment the manager asked the store for its data.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from autoconfig_cache import Environment, Snapshot
from autoconfig_cache.cache import LoadResult
from autoconfig_cache.config import Config
from autoconfig_cache.demo.data import environment_json
from autoconfig_cache.errors import PortInUseError, StoreClosedError
from autoconfig_cache.service.runner import Service
from tests.cli.conftest import clean_environ
from tests.service.conftest import AUTOCONFIG_KEY
from tests.services import free_port

CACHE_KEY = "start-order"


def _config(tmp_path: Path, port: int) -> Config:
    return Config.load(
        environ=clean_environ(
            {
                "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
                "AUTO_CONFIG_CACHE_STORE": f"sqlite://{tmp_path / 'cache.db'}",
                "AUTO_CONFIG_CACHE_KEY": CACHE_KEY,
                "STREAM_URI": f"http://127.0.0.1:{free_port()}",  # nothing listens there
                "AUTO_CONFIG_CACHE_BIND_ADDRESS": "127.0.0.1",
                "PORT": str(port),
            }
        )
    )


def _accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


async def _seed(config: Config) -> None:
    env = Environment.from_json(environment_json("env-start-order", version=1))
    async with config.open_cache() as cache:
        await cache.create_storage()
        await cache.set_all(Snapshot(environments={env.env_id: env}))


async def test_the_cache_is_read_while_the_status_port_is_bound(tmp_path: Path) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    await _seed(config)
    service = Service(config)
    bound_when_read: list[bool] = []
    get_all = service.cache.get_all

    async def observed_get_all() -> LoadResult:
        bound_when_read.append(_accepts(port))
        return await get_all()

    service.cache.get_all = observed_get_all  # type: ignore[method-assign]
    try:
        await service.start()
        # The read began during start(), before the port was bound; start() returned bound.
        assert bound_when_read == [False]
        assert _accepts(port)
        await asyncio.wait_for(service.manager.wait_ready(), 30)
        assert service.manager.status().source == "cache"
    finally:
        await service.close()


async def test_a_port_in_use_fails_start_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = _config(tmp_path, port)
        await _seed(config)
        service = Service(config)
        with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is already in use"):
            await service.start()
    assert service.cache.closed
    with pytest.raises(StoreClosedError):
        await service.cache.get_all()
    # The manager's tasks (cache read, stream, writer) were cancelled and awaited, and the
    # cache's data never reached the manager.
    assert asyncio.all_tasks() == {asyncio.current_task()}
    assert not service.manager.ready.is_set()
