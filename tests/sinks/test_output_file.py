"""The output file: ldactl's shape (checked against the stream JSON), written once a complete
configuration is held, kept in step with every change, mode 0600 from creation, replaced
atomically through a temporary file in its own directory, bursts coalesced."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.models import Environment
from autoconfig_cache.sinks import OutputFileError, OutputFileSink, SinkDispatcher
from tests.secret_values import new_item_key

from .conftest import delete, eventually, initialized, insert, make_env, update
from .test_exec_sink import expected_config


def read(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


async def test_the_file_has_ldactls_shape_keyed_by_environment_id(tmp_path: Path) -> None:
    plain = make_env(version=2)
    rotating = make_env(
        version=9,
        sdkKey={
            "value": new_item_key("sdk"),
            "expiring": {"value": new_item_key("sdk"), "timestamp": 1_900_000_000_000},
        },
    )
    path = tmp_path / "environments.json"
    sink = OutputFileSink(path)
    for change in (insert(plain), insert(rotating), initialized(plain, rotating)):
        await sink.deliver(change)
    assert read(path) == {
        plain.env_id: expected_config(plain),
        rotating.env_id: expected_config(rotating),
    }
    text = path.read_text()
    assert text.startswith('{\n  "')  # pretty-printed, two spaces, as to_writer_pretty
    keys: list[list[str]] = []

    def note_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys.append([key for key, _ in pairs])
        return dict(pairs)

    json.loads(text, object_pairs_hook=note_keys)
    assert len(keys) == 6 and all(names == sorted(names) for names in keys)  # stable output


async def test_nothing_is_written_before_a_complete_configuration(tmp_path: Path) -> None:
    path = tmp_path / "environments.json"
    sink = OutputFileSink(path)
    first, second = make_env(), make_env()
    await sink.deliver(insert(first))
    assert not path.exists()  # one environment of a start-up is not the configuration
    await sink.deliver(insert(second))
    await sink.deliver(initialized(first, second))
    assert set(read(path)) == {first.env_id, second.env_id}


async def test_updates_and_deletes_after_initialized_are_written(tmp_path: Path) -> None:
    path = tmp_path / "environments.json"
    sink = OutputFileSink(path)
    kept, gone = make_env(version=1), make_env()
    await sink.deliver(initialized(kept, gone))
    newer = make_env(kept.env_id, version=2, envName="Renamed")
    await sink.deliver(update(kept, newer))
    await sink.deliver(delete(gone))
    assert read(path) == {kept.env_id: expected_config(newer)}


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that lets everything through: the mode must come from the file's creation."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


@pytest.mark.usefixtures("open_umask")
async def test_the_file_is_mode_0600_even_replacing_a_readable_one(tmp_path: Path) -> None:
    path = tmp_path / "environments.json"
    path.write_text("{}")
    path.chmod(0o644)  # as a reader-friendly earlier tool left it
    await OutputFileSink(path).deliver(initialized(make_env()))
    assert path.stat().st_mode & 0o777 == 0o600


async def test_the_temporary_file_is_in_the_target_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A system temporary directory that does not exist: a write that went through it fails.
    monkeypatch.setenv("TMPDIR", str(tmp_path / "no-such-tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    folder = tmp_path / "mounted-volume"
    folder.mkdir()
    path = folder / "environments.json"
    sink = OutputFileSink(path)
    env = make_env()
    await sink.deliver(initialized(env))
    await sink.deliver(update(env, make_env(env.env_id, version=2)))
    assert read(path)[env.env_id]["version"] == 2
    assert [p.name for p in folder.iterdir()] == ["environments.json"]  # no temporary left


async def test_a_write_that_fails_says_why_and_leaves_nothing_behind(tmp_path: Path) -> None:
    path = tmp_path / "environments.json"
    (path / "in-the-way").mkdir(parents=True)  # a directory where the file should go
    with pytest.raises(OutputFileError, match=r"cannot write the output file .*environments"):
        await OutputFileSink(path).deliver(initialized(make_env()))
    assert [p.name for p in tmp_path.iterdir()] == ["environments.json"]  # no temporary left
    assert path.is_dir()


async def test_a_reader_polling_the_file_never_sees_a_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "environments.json"
    envs = [make_env(version=1) for _ in range(150)]  # a file of some size: ~60 KB
    sink = OutputFileSink(path)
    await sink.deliver(initialized(*envs))
    stop = threading.Event()
    reads: list[int] = []
    bad: list[str] = []

    def poll() -> None:
        while not stop.is_set():
            try:
                with open(path, encoding="utf-8") as file:
                    text = file.read()
                reads.append(len(json.loads(text)))
            except (ValueError, OSError) as exc:
                bad.append(f"{type(exc).__name__}: {exc}")

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        async with SinkDispatcher([sink]) as dispatcher:
            current = {env.env_id: env for env in envs}
            for version in range(2, 6):
                for env_id, env in list(current.items()):
                    newer = make_env(env_id, version)
                    dispatcher.submit(update(env, newer))
                    current[env_id] = newer
            await dispatcher.wait_idle()
            assert dispatcher.status().delivered == 600
    finally:
        stop.set()
        reader.join()
    assert bad == []
    assert reads and set(reads) == {150}
    assert {entry["version"] for entry in read(path).values()} == {5}


class GatedOutputFile(OutputFileSink):
    """Records each write; the second one waits until the test opens the gate (a slow disk)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.gate = threading.Event()
        self.writes: list[set[str]] = []

    def _write_snapshot(self, environments: dict[str, Environment]) -> None:
        self.writes.append(set(environments))
        if len(self.writes) == 2:
            self.gate.wait(30)
        super()._write_snapshot(environments)


async def test_a_burst_during_a_write_is_coalesced_into_one_write_of_the_latest_state(
    tmp_path: Path,
) -> None:
    sink = GatedOutputFile(tmp_path / "environments.json")
    first, slow = make_env(), make_env()
    burst = [make_env() for _ in range(9)]
    async with SinkDispatcher([sink], concurrency=16) as dispatcher:
        dispatcher.submit(initialized(first))
        dispatcher.submit(insert(slow))  # its write waits at the gate
        await eventually(lambda: len(sink.writes) == 2, what="the second write started")
        for env in burst:
            dispatcher.submit(insert(env))
        # All ten deliveries running: one writing, nine waiting for it.
        await eventually(lambda: dispatcher.status().in_flight == 10, what="the burst waiting")
        sink.gate.set()
        await dispatcher.wait_idle()
        assert dispatcher.status().delivered == 11
    everything = {first.env_id, slow.env_id} | {env.env_id for env in burst}
    # One write for the nine changes of the burst, with the latest state.
    assert sink.writes == [{first.env_id}, {first.env_id, slow.env_id}, everything]
    assert set(read(sink.path)) == everything
