"""The local AutoConfig stream server: authorization, control endpoints, command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import aiohttp

from autoconfig_cache.stream import ServerSentEvent, StreamClient, StreamServer
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
