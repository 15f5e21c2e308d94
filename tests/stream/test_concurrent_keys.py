"""Concurrent keys on the stream: a malformed credential set in a ``patch`` keeps the previous state
and restarts the stream, in a ``put`` only that environment is left out; no credential value ever
reaches the logs or ``/status`` in clear.

Everything runs against the local stream server over loopback and the real cache facade.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from autoconfig_cache.stream import StreamServer
from tests.items import concurrent_env_json, credential_values

from .conftest import (
    CountingStore,
    RecordingHandler,
    eventually,
    fetch_status_and_metrics,
    make_cache,
    make_manager,
)
from .conftest import stored_snapshot as stored


def malformed(env_id: str, version: int) -> dict[str, Any]:
    """A well-formed environment but for its credential set: ``sdkKey.value`` is not among the
    ``sdkKeys`` values, which the Relay Proxy v9 refuses."""
    data = concurrent_env_json(env_id, version)
    data["sdkKeys"] = data["sdkKeys"][1:]
    return data


async def patch_without_changing_the_server(server: StreamServer, env: dict[str, Any]) -> None:
    """Send a patch that the server does not apply to what it serves to new connections (so
    the put after a reconnect carries what "LaunchDarkly" really holds)."""
    body = {"path": f"/environments/{env['envID']}", "data": env}
    assert await server.push_event("patch", json.dumps(body)) == 1


def assert_no_credential(text: str, *envs: dict[str, Any]) -> None:
    for env in envs:
        for value in credential_values(env):
            assert value not in text


async def test_a_patch_with_a_malformed_set_keeps_the_previous_state_and_restarts_the_stream(
    server: StreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    good = concurrent_env_json("e1", 1)
    server.set_snapshot({"environments": {"e1": good}})
    store = CountingStore()
    handler = RecordingHandler()
    with caplog.at_level(logging.DEBUG, logger="autoconfig_cache"):
        async with make_manager(server, handler, make_cache(store)) as manager:
            await handler.wait_for(("all_received", "stream"))
            bad = malformed("e1", 2)
            await patch_without_changing_the_server(server, bad)
            # The restart: a second connection, and its put applied.
            await eventually(lambda: server.connection_count == 2, what="a new connection")
            await eventually(lambda: handler.calls.count(("all_received", "stream")) == 2)
            env = manager.get_environment("e1")
            assert env is not None and env.version == 1 and env.raw == good
            assert [c for c in handler.calls if c[0] != "all_received"] == [("env_added", "e1", 1)]
            await eventually(lambda: manager.status().pending_writes == 0, what="writes done")
            assert (await stored(store)).environments["e1"].raw == good  # v2 never stored
            status_error = manager.status().stream_error or ""
    assert "patch event refused" in caplog.text and "'sdkKey.value'" in caplog.text
    assert_no_credential(caplog.text + status_error, good, bad)


async def test_the_replay_of_a_refused_version_is_applied_after_the_restart(
    server: StreamServer,
) -> None:
    server.set_snapshot({"environments": {"e1": concurrent_env_json("e1", 1)}})
    handler = RecordingHandler()
    async with make_manager(server, handler) as manager:
        await handler.wait_for(("all_received", "stream"))
        fixed = concurrent_env_json("e1", 2)
        server.set_snapshot({"environments": {"e1": fixed}})  # what the next put carries
        await patch_without_changing_the_server(server, malformed("e1", 2))
        # The refusal recorded no version, so the same version arriving in the put is applied.
        await handler.wait_for(("env_updated", "e1", 2))
        env = manager.get_environment("e1")
        assert env is not None and env.raw == fixed


async def test_a_put_with_a_malformed_set_keeps_that_environment_and_the_connection(
    server: StreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    e1, e2 = concurrent_env_json("e1", 1), concurrent_env_json("e2", 1)
    server.set_snapshot({"environments": {"e1": e1, "e2": e2}})
    handler = RecordingHandler()
    with caplog.at_level(logging.WARNING, logger="autoconfig_cache"):
        async with make_manager(server, handler) as manager:
            await handler.wait_for(("all_received", "stream"))
            bad, e2_next = malformed("e1", 2), concurrent_env_json("e2", 2)
            await server.push_put({"environments": {"e1": bad, "e2": e2_next}})
            await handler.wait_for(("env_updated", "e2", 2))
            await eventually(lambda: handler.calls.count(("all_received", "stream")) == 2)
            env = manager.get_environment("e1")
            assert env is not None and env.raw == e1  # kept as known, not deleted
            assert ("env_deleted", "e1", 1) not in handler.calls
            assert server.connection_count == 1  # the same data would come back: no restart
    assert "put event: ignoring an item" in caplog.text
    assert_no_credential(caplog.text, e1, bad)


async def test_debug_logs_never_show_a_concurrent_key(
    server: StreamServer, caplog: pytest.LogCaptureFixture
) -> None:
    first = concurrent_env_json("e9", 1)
    server.set_snapshot({"environments": {"e9": first}})
    handler = RecordingHandler()
    second = concurrent_env_json("e9", 2)
    with caplog.at_level(logging.DEBUG, logger="autoconfig_cache"):
        async with make_manager(server, handler, make_cache(CountingStore())):
            await handler.wait_for(("all_received", "stream"))
            await server.push_patch("/environments/e9", second)
            await handler.wait_for(("env_updated", "e9", 2))
    assert "e9" in caplog.text  # the changes were logged ...
    assert_no_credential(caplog.text, first, second)  # ... never with a key in clear


async def test_status_and_metrics_never_show_a_concurrent_key(server: StreamServer) -> None:
    env = concurrent_env_json("e1", 1)
    server.set_snapshot({"environments": {"e1": env}})
    handler = RecordingHandler()
    async with make_manager(server, handler) as manager:
        await handler.wait_for(("all_received", "stream"))
        status_text, metrics_text = await fetch_status_and_metrics(manager)
    document = json.loads(status_text)
    assert document["environments"]["e1"]["sdkKey"] == "****" + env["sdkKey"]["value"][-4:]
    assert_no_credential(status_text + metrics_text, env)
