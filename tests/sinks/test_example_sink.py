"""The plugin guide's example sink (``example_directory_sink.py``), driven through the public API
only: a tracker fed handler calls, a dispatcher, the sink."""

from __future__ import annotations

import json
from pathlib import Path

from autoconfig_cache.sinks import ChangeTracker, Sink, SinkDispatcher
from autoconfig_cache.stream import SnapshotSource

from .conftest import make_env
from .example_directory_sink import DirectorySink
from .test_exec_sink import expected_config


def files(folder: Path) -> dict[str, dict[str, object]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))}


async def test_the_example_sink_keeps_one_file_per_environment(tmp_path: Path) -> None:
    folder = tmp_path / "envs"
    folder.mkdir()
    (folder / "stale-environment.json").write_text("{}")  # left from an earlier run
    sink = DirectorySink(folder)
    assert isinstance(sink, Sink)
    a1, b1 = make_env(version=1), make_env(version=1)
    a2 = make_env(a1.env_id, version=2)
    async with SinkDispatcher([sink]) as dispatcher:
        tracker = ChangeTracker(dispatcher.submit)
        tracker.on_environment_added(a1)
        tracker.on_environment_added(b1)
        tracker.on_all_environments_received(SnapshotSource.STREAM)
        await dispatcher.wait_idle()
        assert files(folder) == {a1.env_id: expected_config(a1), b1.env_id: expected_config(b1)}
        tracker.on_environment_updated(a2)
        tracker.on_environment_deleted(b1)
        await dispatcher.wait_idle()
        assert dispatcher.status().dropped == 0
    assert files(folder) == {a1.env_id: expected_config(a2)}
    assert (folder / f"{a1.env_id}.json").stat().st_mode & 0o777 == 0o600


async def test_the_example_sink_refuses_an_id_that_is_no_file_name(tmp_path: Path) -> None:
    sink = DirectorySink(tmp_path)
    async with SinkDispatcher([sink]) as dispatcher:
        tracker = ChangeTracker(dispatcher.submit)
        tracker.on_environment_added(make_env("../outside"))
        tracker.on_all_environments_received(SnapshotSource.STREAM)
        await dispatcher.wait_idle()
        assert dispatcher.status().dropped == 2  # the insert and the initialized
    assert not (tmp_path.parent / "outside.json").exists()
