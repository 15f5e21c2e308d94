"""The local AutoConfig stream server: authorization, control endpoints, command line."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp

from autoconfig_cache.models import Snapshot
from autoconfig_cache.stream import ServerSentEvent, StreamClient, StreamServer
from autoconfig_cache.stream.server import load_snapshot
from tests.items import env_json
from tests.services import free_port

from .conftest import AUTOCONFIG_KEY, FAST, eventually


async def test_stream_without_the_key_is_401(server: StreamServer) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{server.uri}/relay_auto_config") as response,
    ):
        assert response.status == 401
    assert server.rejected_count == 1 and server.connection_count == 0


async def test_control_endpoints_drive_connected_clients(server: StreamServer) -> None:
    events: list[ServerSentEvent] = []

    async def collect(event: ServerSentEvent) -> None:
        events.append(event)

    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    task = asyncio.create_task(client.run(collect))
    try:
        await eventually(lambda: len(events) == 1)
        headers = {"Authorization": AUTOCONFIG_KEY}
        async with aiohttp.ClientSession(headers=headers) as session:
            body = {"path": "/environments/e1", "data": env_json("e1", 2)}
            async with session.post(f"{server.uri}/control/patch", json=body) as response:
                assert response.status == 200 and (await response.json())["sent"] == 1
            await eventually(lambda: len(events) == 2)
            assert events[1].type == "patch" and json.loads(events[1].data) == body
            async with session.get(f"{server.uri}/control/state") as response:
                assert (await response.json())["environments"] == 1
            async with session.post(f"{server.uri}/control/reject", json={"status": 503}):
                pass
            assert server.reject_with == 503
        async with (
            aiohttp.ClientSession() as anonymous,
            anonymous.post(f"{server.uri}/control/drop") as response,
        ):
            assert response.status == 401
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_command_line_serves_a_snapshot_file(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps({"environments": {"e1": env_json("e1", 4)}, "filters": {}}))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autoconfig_cache.stream",
        "--snapshot",
        str(snapshot),
        "--port",
        str(port),
        env={**os.environ, "AUTOCONFIG_KEY": AUTOCONFIG_KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        assert f"127.0.0.1:{port}" in banner and AUTOCONFIG_KEY not in banner
        events: list[ServerSentEvent] = []

        async def collect(event: ServerSentEvent) -> None:
            events.append(event)

        client = StreamClient(f"http://127.0.0.1:{port}", AUTOCONFIG_KEY, backoff=FAST)
        task = asyncio.create_task(client.run(collect))
        try:
            await eventually(lambda: len(events) == 1)
            assert json.loads(events[0].data)["data"]["environments"]["e1"]["version"] == 4
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        proc.terminate()
        await proc.wait()


async def test_command_line_without_a_key_exits_with_a_message() -> None:
    env = {k: v for k, v in os.environ.items() if k != "AUTOCONFIG_KEY"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autoconfig_cache.stream",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"AUTOCONFIG_KEY" in err


async def _first_put_of_command_line(*args: str) -> tuple[dict[str, Any], list[str]]:
    """Start ``python -m autoconfig_cache.stream ARGS`` on a free port; return the ``put`` data
    a client receives first and the lines the server printed before it."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autoconfig_cache.stream",
        *args,
        "--port",
        str(port),
        env={**os.environ, "AUTOCONFIG_KEY": AUTOCONFIG_KEY},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        printed = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in "12"]
        events: list[ServerSentEvent] = []

        async def collect(event: ServerSentEvent) -> None:
            events.append(event)

        client = StreamClient(f"http://127.0.0.1:{port}", AUTOCONFIG_KEY, backoff=FAST)
        task = asyncio.create_task(client.run(collect))
        try:
            await eventually(lambda: len(events) == 1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        assert events[0].type == "put"
        data: dict[str, Any] = json.loads(events[0].data)["data"]
        return data, printed
    finally:
        proc.terminate()
        await proc.wait()


async def test_command_line_sample_serves_n_generated_environments() -> None:
    data, printed = await _first_put_of_command_line("--sample", "7")
    environments = data["environments"]
    assert len(environments) == 7
    assert len(set(environments)) == 7 and len(data["filters"]) == 2
    assert "7 environment(s)" in printed[1]
    for env_id, env in environments.items():
        assert env["envID"] == env_id and env["version"] == 1
        # Fake keys shaped like LaunchDarkly's: "sdk-" / "mob-" and a UUID.
        assert re.fullmatch(
            r"sdk-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", env["sdkKey"]["value"]
        )
        assert re.fullmatch(r"mob-[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}", env["mobKey"])
    # Deterministic: another server started the same way serves the same ids and keys.
    again, _ = await _first_put_of_command_line("--sample", "7")
    assert again == data


async def test_command_line_without_data_says_it_serves_an_empty_configuration() -> None:
    data, printed = await _first_put_of_command_line()
    assert data == {"environments": {}, "filters": {}}
    assert "empty configuration" in printed[1] and "--sample N" in printed[1]


async def test_command_line_sample_needs_a_positive_count() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "autoconfig_cache.stream",
        "--sample",
        "0",
        env={**os.environ, "AUTOCONFIG_KEY": AUTOCONFIG_KEY},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2 and b"--sample: must be at least 1" in err


def test_the_snapshot_file_shown_in_docs_stream_md_is_valid_put_data(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "stream.md").read_text()
    section = text[text.index("A snapshot file is the `data` of a `put`") :]
    start = section.index("```json\n") + len("```json\n")
    block = section[start : section.index("\n```", start)]
    snapshot_file = tmp_path / "snapshot.json"
    snapshot_file.write_text(block)
    snapshot, problems = Snapshot.from_put_data(load_snapshot(snapshot_file))
    assert problems == []
    assert len(snapshot.environments) == 1 and len(snapshot.filters) == 1
