"""The exec sink, with real hook processes: what a hook receives in both modes (checked against
the environment's stream JSON, field by field), what it does not receive (secrets in argv, our own
secrets), its output in our log, failures, retries and a hook that hangs."""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.models import Environment
from autoconfig_cache.secrets import mask
from autoconfig_cache.sinks import (
    ChangeSource,
    ExecMode,
    ExecSink,
    HookFailedError,
    PermanentDeliveryError,
    RetryPolicy,
    SinkDispatcher,
)
from tests.secret_values import known_secret, new_item_key

from .conftest import (
    NoWait,
    Recorder,
    delete,
    eventually,
    initialized,
    insert,
    make_env,
    update,
)

OUR_AUTOCONFIG_KEY = known_secret("rel-exec-sink-test-autoconfig-key")
OUR_ENCRYPTION_KEY = known_secret("exec-sink-test-encryption-key")
OUR_STORE_PASSWORD = known_secret("exec-sink-test-redis-password")

#: The per-environment variable suffixes ldactl's source sets (tarqd/ldactl ldactl/src/main.rs,
#: set_event_env_vars), written out here rather than taken from the implementation.
LDACTL_SUFFIXES = (
    "PROJECT_KEY",
    "PROJECT_NAME",
    "ENV_ID",
    "ENV_KEY",
    "ENV_NAME",
    "MOBILE_KEY",
    "SDK_KEY",
    "ENV_VERSION",
    "ENV_DEFAULT_TTL",
    "ENV_SECURE_MODE",
)


def expected_variables(prefix: str, env: Environment) -> dict[str, str]:
    """The ten variables of ``env``, read from its stream JSON (not from the model)."""
    raw = env.raw
    return {
        f"{prefix}PROJECT_KEY": raw["projKey"],
        f"{prefix}PROJECT_NAME": raw["projName"],
        f"{prefix}ENV_ID": raw["envID"],
        f"{prefix}ENV_KEY": raw["envKey"],
        f"{prefix}ENV_NAME": raw["envName"],
        f"{prefix}MOBILE_KEY": raw["mobKey"],
        f"{prefix}SDK_KEY": raw["sdkKey"]["value"],
        f"{prefix}ENV_VERSION": str(raw["version"]),
        f"{prefix}ENV_DEFAULT_TTL": str(raw["defaultTtl"]),
        f"{prefix}ENV_SECURE_MODE": {True: "true", False: "false"}[raw["secureMode"]],
    }


def expected_config(env: Environment) -> dict[str, Any]:
    """ldactl's EnvironmentConfig JSON of ``env`` (tarqd/ldactl ldactl/src/messages.rs), built
    from the stream JSON."""
    raw = env.raw
    expiring = raw["sdkKey"].get("expiring")
    return {
        "envId": raw["envID"],
        "envKey": raw["envKey"],
        "envName": raw["envName"],
        "mobKey": raw["mobKey"],
        "projKey": raw["projKey"],
        "projName": raw["projName"],
        "sdkKey": {
            "value": raw["sdkKey"]["value"],
            "expiring": None
            if expiring is None
            else {"value": expiring["value"], "expiresAt": expiring["timestamp"]},
        },
        "defaultTtl": raw["defaultTtl"],
        "secureMode": raw["secureMode"],
        "version": raw["version"],
    }


def documented_fields(env: Environment) -> dict[str, str]:
    """The top-level fields of ldactl's docs/CUSTOM_HOOKS.md ("JSON Mode Hook Structure")."""
    raw = env.raw
    return {
        "projectKey": raw["projKey"],
        "environmentKey": raw["envKey"],
        "environmentId": raw["envID"],
        "mobileKey": raw["mobKey"],
        "sdkKey": raw["sdkKey"]["value"],
    }


def sink_for(recorder: Recorder, mode: ExecMode = ExecMode.ENV, **kwargs: Any) -> ExecSink:
    environ = {"PATH": os.environ.get("PATH", ""), "HOOK_SETTING": "kept"}
    environ.update(kwargs.pop("environ", {}))
    return ExecSink(recorder.argv(), mode=mode, environ=environ, **kwargs)


# ---- env mode -----------------------------------------------------------------------------------


async def test_insert_sets_every_variable_ldactl_sets(recorder: Recorder) -> None:
    env = make_env(version=3, secureMode=True)
    await sink_for(recorder).deliver(insert(env))
    run = recorder.only_run()
    assert run["ldac"] == {
        "LDAC_EVENT_KIND": "insert",
        "LDAC_EVENT_SOURCE": "stream",
        **expected_variables("LDAC_", env),
    }
    assert run["stdin"] == ""  # env mode: stdin is /dev/null, not ours


async def test_update_sets_the_previous_state_as_ldac_prev(recorder: Recorder) -> None:
    before = make_env(version=1)
    after = make_env(before.env_id, version=2, envName="Renamed")
    await sink_for(recorder).deliver(update(before, after))
    assert recorder.only_run()["ldac"] == {
        "LDAC_EVENT_KIND": "update",
        "LDAC_EVENT_SOURCE": "stream",
        **expected_variables("LDAC_", after),
        **expected_variables("LDAC_PREV_", before),
    }


async def test_delete_sets_the_insert_names_and_ldactls_doubled_ones(recorder: Recorder) -> None:
    env = make_env(version=4)
    await sink_for(recorder).deliver(delete(env))
    assert recorder.only_run()["ldac"] == {
        "LDAC_EVENT_KIND": "delete",
        "LDAC_EVENT_SOURCE": "stream",
        **expected_variables("LDAC_", env),
        **expected_variables("LDAC__", env),  # hooks written against ldactl's spelling
    }


async def test_initialized_sets_only_the_kind(recorder: Recorder) -> None:
    await sink_for(recorder).deliver(initialized(make_env(), source=ChangeSource.CACHE))
    assert recorder.only_run()["ldac"] == {
        "LDAC_EVENT_KIND": "initialized",
        "LDAC_EVENT_SOURCE": "cache",
    }


async def test_stale_event_variables_of_our_environment_are_not_inherited(
    recorder: Recorder,
) -> None:
    stale = new_item_key("sdk")
    sink = sink_for(
        recorder,
        environ={"LDAC_PREV_SDK_KEY": stale, "LDAC__ENV_ID": "x", "LDAC_OUTPUT_FILE": "/out.json"},
    )
    await sink.deliver(insert(make_env()))
    run = recorder.only_run()
    assert "LDAC_PREV_SDK_KEY" not in run["names"] and "LDAC__ENV_ID" not in run["names"]
    assert run["ldac"]["LDAC_OUTPUT_FILE"] == "/out.json"  # configuration, not an event variable


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
async def test_a_gallery_style_hook_reaches_its_delete_branch(tmp_path: Path) -> None:
    # The checks every hook of ldactl's gallery (hooks/*.sh) starts with: with ldactl's own
    # delete variables (LDAC__*) this exits 1; with the documented names it reaches "delete".
    log = tmp_path / "hook-out.txt"
    script = tmp_path / "gallery_hook.sh"
    script.write_text(
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        'event_kind="${LDAC_EVENT_KIND:-}"\nproject="${LDAC_PROJECT_KEY:-}"\n'
        'env_key="${LDAC_ENV_KEY:-}"\n'
        'if [[ -z "$event_kind" ]]; then exit 1; fi\n'
        'if [[ "$event_kind" == "initialized" ]]; then exit 0; fi\n'
        'if [[ -z "$project" || -z "$env_key" ]]; then exit 1; fi\n'
        'case "$event_kind" in\n'
        f'  insert|update) echo "upsert $project/$env_key" >> {log} ;;\n'
        f'  delete) echo "soft-delete $project/$env_key" >> {log} ;;\n'
        "  *) exit 1 ;;\nesac\n"
    )
    script.chmod(0o755)
    env = make_env()
    sink = ExecSink([str(script)])
    for change in (insert(env), initialized(env), delete(env)):
        await sink.deliver(change)  # raises HookFailedError if the hook exits 1
    key = f"{env.raw['projKey']}/{env.raw['envKey']}"
    assert log.read_text().splitlines() == [f"upsert {key}", f"soft-delete {key}"]


# ---- change-json mode ---------------------------------------------------------------------------


def stdin_document(recorder: Recorder) -> dict[str, Any]:
    text = recorder.only_run()["stdin"]
    assert "\n" not in text  # one compact document, as serde_json::to_writer writes it
    document: dict[str, Any] = json.loads(text)
    return document


async def test_change_json_insert_has_ldactls_shape_and_the_documented_fields(
    recorder: Recorder,
) -> None:
    env = make_env(
        version=7,
        sdkKey={
            "value": new_item_key("sdk"),
            "expiring": {"value": new_item_key("sdk"), "timestamp": 1_900_000_000_000},
        },
    )
    await sink_for(recorder, ExecMode.CHANGE_JSON).deliver(insert(env))
    assert stdin_document(recorder) == {
        "kind": "insert",
        "data": expected_config(env),
        "source": "stream",
        **documented_fields(env),
    }
    # The variables are set in this mode too, as ldactl does.
    assert recorder.only_run()["ldac"]["LDAC_SDK_KEY"] == env.raw["sdkKey"]["value"]


async def test_change_json_update_has_previous_and_current(recorder: Recorder) -> None:
    before = make_env(version=1)
    after = make_env(before.env_id, version=2)
    await sink_for(recorder, ExecMode.CHANGE_JSON).deliver(update(before, after))
    assert stdin_document(recorder) == {
        "kind": "update",
        "data": {"previous": expected_config(before), "current": expected_config(after)},
        "source": "stream",
        **documented_fields(after),  # the documented fields are the current state's
    }


async def test_change_json_delete_carries_the_last_state(recorder: Recorder) -> None:
    env = make_env(version=5)
    await sink_for(recorder, ExecMode.CHANGE_JSON).deliver(delete(env))
    assert stdin_document(recorder) == {
        "kind": "delete",
        "data": expected_config(env),
        "source": "stream",
        **documented_fields(env),
    }


async def test_change_json_initialized_is_the_kind_alone(recorder: Recorder) -> None:
    await sink_for(recorder, ExecMode.CHANGE_JSON).deliver(initialized(make_env()))
    assert stdin_document(recorder) == {"kind": "initialized", "source": "stream"}


@pytest.mark.skipif(shutil.which("jq") is None, reason="needs jq")
async def test_hooks_written_against_either_ldactl_description_read_the_same_key(
    tmp_path: Path,
) -> None:
    # docs/CUSTOM_HOOKS.md reads `.sdkKey`; ldactl's source writes `.data.sdkKey.value`.
    out = tmp_path / "keys.txt"
    script = tmp_path / "json_hook.sh"
    script.write_text(
        "#!/bin/sh\nset -eu\njson_input=$(cat)\n"
        f"echo \"$json_input\" | jq -r '.kind, .projectKey, .environmentId' >> {out}\n"
        f"echo \"$json_input\" | jq -r '.sdkKey, .data.sdkKey.value' >> {out}\n"
    )
    script.chmod(0o755)
    env = make_env()
    await ExecSink([str(script)], mode=ExecMode.CHANGE_JSON).deliver(insert(env))
    sdk = env.raw["sdkKey"]["value"]
    assert out.read_text().splitlines() == ["insert", env.raw["projKey"], env.env_id, sdk, sdk]


# ---- what the hook does not get -----------------------------------------------------------------


@pytest.mark.parametrize("mode", list(ExecMode))
async def test_no_secret_in_the_hooks_argv(recorder: Recorder, mode: ExecMode) -> None:
    before = make_env(version=1)
    env = make_env(before.env_id, version=2)
    sink = ExecSink(recorder.argv("--target", "vault"), mode=mode)
    for change in (insert(before), update(before, env), delete(env), initialized(env)):
        await sink.deliver(change)
    runs = recorder.runs()
    assert len(runs) == 4
    secrets_of = {before.sdk_key, before.mob_key, env.sdk_key, env.mob_key}
    for run in runs:
        assert run["argv"][1:] == [str(recorder.folder), "--target", "vault"]
        assert not any(secret in arg for arg in run["argv"] for secret in secrets_of)


async def test_our_own_secrets_are_withheld_from_the_hook(recorder: Recorder) -> None:
    sink = sink_for(
        recorder,
        environ={
            "AUTO_CONFIG_KEY": OUR_AUTOCONFIG_KEY,
            "LD_RELAY_AUTO_CONFIG_KEY": OUR_AUTOCONFIG_KEY,
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": OUR_ENCRYPTION_KEY,
            "SOME_PLUGIN_ENCRYPTION_KEYS": OUR_ENCRYPTION_KEY,
            "REDIS_PASSWORD": OUR_STORE_PASSWORD,
        },
    )
    await sink.deliver(insert(make_env()))
    run = recorder.only_run()
    for name in (
        "AUTO_CONFIG_KEY",
        "LD_RELAY_AUTO_CONFIG_KEY",
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY",
        "SOME_PLUGIN_ENCRYPTION_KEYS",
        "REDIS_PASSWORD",
    ):
        assert name not in run["names"]
    assert run["passed"] == "kept"  # what a hook needs of our environment still reaches it


# ---- output and failures ------------------------------------------------------------------------


async def test_hook_output_is_logged_with_every_known_key_masked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    other = make_env()  # known from an earlier initialized: any key the sink saw is masked
    env = make_env()
    script = tmp_path / "chatty.py"
    script.write_text(
        "import os, sys\n"
        "if os.environ['LDAC_EVENT_KIND'] != 'insert': sys.exit(0)\n"
        "print('synced', os.environ['LDAC_SDK_KEY'], 'and', os.environ['OTHER_KEY'])\n"
        "print('mobile', os.environ['LDAC_MOBILE_KEY'], '\\x1b[31mred', file=sys.stderr)\n"
    )
    sink = ExecSink(
        [sys.executable, str(script)],
        environ={"PATH": os.environ.get("PATH", ""), "OTHER_KEY": other.sdk_key},
    )
    caplog.set_level(logging.INFO, logger="autoconfig_cache.sinks.exec")
    await sink.deliver(initialized(other))
    await sink.deliver(insert(env))
    hook_lines = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == "autoconfig_cache.sinks.exec"
    ]
    [out] = [text for level, text in hook_lines if level == logging.INFO and "synced" in text]
    [err] = [text for level, text in hook_lines if level == logging.WARNING and "mobile" in text]
    assert f"synced {mask(env.sdk_key)} and {mask(other.sdk_key)}" in out
    assert env.sdk_key not in out and other.sdk_key not in out
    assert mask(env.mob_key) in err and env.mob_key not in err
    assert "\x1b" not in err and "\\x1b[31mred" in err


async def test_a_key_across_the_cut_of_an_over_long_line_is_masked_whole(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    env = make_env()
    script = tmp_path / "long.py"
    # The key starts a few bytes before the 100-byte cut and ends after it.
    script.write_text("import os\nprint('x' * 95 + os.environ['LDAC_SDK_KEY'] + 'y' * 5000)\n")
    sink = ExecSink([sys.executable, str(script)], max_line=100)
    caplog.set_level(logging.INFO, logger="autoconfig_cache.sinks.exec")
    await sink.deliver(insert(env))
    [message] = [r.getMessage() for r in caplog.records if "xxxxx" in r.getMessage()]
    assert "line cut at 100 bytes" in message
    assert env.sdk_key[:12] not in message  # not even the key's beginning


async def test_a_non_zero_exit_is_a_failure(recorder: Recorder) -> None:
    sink = sink_for(recorder, environ={"HOOK_EXIT": "3"})
    with pytest.raises(HookFailedError, match="exited with status 3"):
        await sink.deliver(insert(make_env()))


async def test_a_missing_program_is_a_clear_failure(tmp_path: Path) -> None:
    sink = ExecSink([str(tmp_path / "no-such-hook")])
    with pytest.raises(HookFailedError, match=r"cannot start hook .*no-such-hook"):
        await sink.deliver(insert(make_env()))


async def test_a_value_no_environment_variable_can_hold_is_refused_for_good(
    recorder: Recorder,
) -> None:
    env = make_env(envName="bad\x00name")
    with pytest.raises(PermanentDeliveryError, match="cannot pass this change"):
        await sink_for(recorder).deliver(insert(env))


async def test_a_failing_hook_is_retried_with_backoff_then_dropped_and_counted(
    recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    sleep = NoWait()
    policy = RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=0.75)
    env = make_env()
    async with SinkDispatcher(
        [sink_for(recorder, environ={"HOOK_EXIT": "1"})], retry=policy, sleep=sleep
    ) as dispatcher:
        dispatcher.submit(insert(env))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert len(recorder.runs()) == 3
    assert (status.failed_attempts, status.dropped, status.delivered) == (3, 1, 0)
    # Exponential (0.5 s, then 1 s capped at 0.75 s), each at least half its ceiling (jitter).
    assert len(sleep.delays) == 2
    assert 0.25 <= sleep.delays[0] <= 0.5 and 0.375 <= sleep.delays[1] <= 0.75
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("dropped insert" in m and "exited with status 1" in m for m in errors)


def _gone(pid: int) -> bool:
    """Whether ``pid`` no longer runs (a zombie awaiting its parent counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
async def test_a_hanging_hook_and_its_children_are_killed_at_the_timeout(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = tmp_path / "hang.sh"
    # Ignores SIGTERM (so does its child, which inherits that), so only SIGKILL of the whole
    # group stops both.
    script.write_text(
        f"#!/bin/sh\ntrap '' TERM\nsleep 600 &\necho $! > {pids}\necho $$ >> {pids}\nwait\n"
    )
    script.chmod(0o755)
    sink = ExecSink([str(script)], kill_grace=0.2)
    async with SinkDispatcher([sink], timeout=2.0, retry=RetryPolicy(max_attempts=1)) as dispatcher:
        dispatcher.submit(insert(make_env()))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert (status.failed_attempts, status.dropped, status.in_flight) == (1, 1, 0)
    assert "did not finish within 2 s" in (status.sinks[0].last_error or "")
    assert pids.exists(), "the hook never started within the timeout"
    child, hook = (int(line) for line in pids.read_text().split())
    await eventually(lambda: _gone(hook) and _gone(child), what="the hook and its child stopped")
