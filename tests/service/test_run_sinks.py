"""``autoconfig-cache run`` with sinks, as real processes: the exec hook in both modes, the output
file, failing and hanging hooks, ldactl's variables, and a plugin sink (docs/sinks.md)."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.demo.data import environment_json
from tests.service.conftest import (
    AUTOCONFIG_KEY,
    ServiceProcess,
    StreamServerProcess,
    initial_data,
    wait_for,
)
from tests.service.test_run import cached, sqlite_env

Start = Callable[..., ServiceProcess]

REPO_ROOT = Path(__file__).resolve().parents[2]

#: The hook every test runs: it records its LDAC_* variables, stdin, arguments and whether any
#: of our secrets reached it, one JSON file per run (named so that they sort in start order).
RECORDING_HOOK = """\
import json, os, sys, time
started = time.time_ns()
record = {
    "env": {k: v for k, v in os.environ.items() if k.startswith("LDAC_")},
    "stdin": sys.stdin.read(),
    "argv": sys.argv[1:],
    "secrets": [k for k in ("AUTO_CONFIG_KEY", "LD_RELAY_AUTO_CONFIG_KEY") if k in os.environ],
}
path = os.path.join(os.environ["RECORDS"], f"{started:020d}-{os.getpid()}.json")
with open(path + ".tmp", "w") as f:
    json.dump(record, f)
os.rename(path + ".tmp", path)
"""


def write_hook(directory: Path, body: str, name: str = "hook.py") -> Path:
    """An executable script running ``body`` with this interpreter."""
    path = directory / name
    path.write_text(f"#!{sys.executable}\n{body}")
    path.chmod(0o755)
    return path


def records(directory: Path) -> list[dict[str, Any]]:
    """What the hook recorded, in start order."""
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def kinds(found: list[dict[str, Any]]) -> list[str]:
    return [record["env"]["LDAC_EVENT_KIND"] for record in found]


def replay(found: list[dict[str, Any]]) -> dict[str, tuple[int, str]]:
    """The configuration the hook's records describe: ``{envId: (version, sdkKey)}``."""
    state: dict[str, tuple[int, str]] = {}
    for record in found:
        env = record["env"]
        kind = env["LDAC_EVENT_KIND"]
        if kind in ("insert", "update"):
            state[env["LDAC_ENV_ID"]] = (int(env["LDAC_ENV_VERSION"]), env["LDAC_SDK_KEY"])
        elif kind == "delete":
            state.pop(env["LDAC_ENV_ID"])
    return state


def sent(environments: dict[str, dict[str, Any]]) -> dict[str, tuple[int, str]]:
    return {
        env_id: (env["version"], env["sdkKey"]["value"]) for env_id, env in environments.items()
    }


def base_env(server: StreamServerProcess, records_dir: Path, **extra: str) -> dict[str, str]:
    env = {"AUTO_CONFIG_KEY": AUTOCONFIG_KEY, "STREAM_URI": server.uri}
    env["RECORDS"] = str(records_dir)
    env.update(extra)
    return env


@pytest.mark.parametrize("mode", ["env", "change-json"])
def test_exec_hook_receives_puts_patches_deletes_and_reconnects(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start, mode: str
) -> None:
    hook = write_hook(tmp_path, RECORDING_HOOK)
    out = tmp_path / "records"
    out.mkdir()
    data = initial_data()
    environments = dict(data["environments"])
    service = services(
        base_env(stream_server, out),
        args=("--exec", str(hook), "--exec-mode", mode, "--", "first", "--second"),
    ).wait_listening()
    wait_for(lambda: kinds(records(out)).count("initialized") == 1, "the first put's hooks")
    first = records(out)
    assert sorted(kinds(first)) == ["initialized"] + ["insert"] * 6
    assert kinds(first)[-1] == "initialized"  # after every insert of its put
    assert replay(first) == sent(environments)

    changed, deleted, later = list(environments)[1:4]
    environments[changed] = environment_json(changed, version=2)
    stream_server.control(
        "patch", {"path": f"/environments/{changed}", "data": environments[changed]}
    )
    stream_server.control("delete", {"path": f"/environments/{deleted}", "version": 2})
    removed = environments.pop(deleted)
    wait_for(lambda: len(records(out)) == 9, "the patch's and the delete's hooks")
    # A reconnect brings a put of the same configuration: no change, one more initialized.
    stream_server.control("reconnect")
    wait_for(lambda: kinds(records(out)).count("initialized") == 2, "the reconnect's put")
    environments[later] = environment_json(later, version=3)
    stream_server.control("patch", {"path": f"/environments/{later}", "data": environments[later]})
    wait_for(lambda: len(records(out)) == 11, "the patch after the reconnect")

    found = records(out)
    assert kinds(found).count("insert") == 6  # nothing inserted again by the reconnect
    assert replay(found) == sent(environments)
    update = next(
        r
        for r in found
        if r["env"]["LDAC_EVENT_KIND"] == "update" and r["env"]["LDAC_ENV_ID"] == changed
    )
    assert update["env"]["LDAC_PREV_ENV_VERSION"] == "1"
    assert update["env"]["LDAC_PREV_SDK_KEY"] == data["environments"][changed]["sdkKey"]["value"]
    delete = next(r for r in found if r["env"]["LDAC_EVENT_KIND"] == "delete")
    # ldactl's gallery reads LDAC_PROJECT_KEY on delete; ldactl itself set LDAC__PROJECT_KEY.
    assert delete["env"]["LDAC_ENV_ID"] == deleted == delete["env"]["LDAC__ENV_ID"]
    assert delete["env"]["LDAC_PROJECT_KEY"] == removed["projKey"]
    for record in found:
        assert record["argv"] == ["first", "--second"]
        assert record["secrets"] == []  # our AutoConfig key never reaches a hook
        assert record["env"]["LDAC_EVENT_SOURCE"] == "stream"
        if mode == "env":
            assert record["stdin"] == ""
            continue
        document = json.loads(record["stdin"])
        env = record["env"]
        assert document["kind"] == env["LDAC_EVENT_KIND"]
        if document["kind"] == "initialized":
            assert "data" not in document
            continue
        # ldactl's source shape ({"kind","data"}) and its docs' top-level fields, together.
        current = document["data"]["current"] if document["kind"] == "update" else document["data"]
        assert current["envId"] == document["environmentId"] == env["LDAC_ENV_ID"]
        assert current["sdkKey"]["value"] == document["sdkKey"] == env["LDAC_SDK_KEY"]
        assert current["version"] == int(env["LDAC_ENV_VERSION"])
        assert document["projectKey"] == current["projKey"] == env["LDAC_PROJECT_KEY"]
    status = service.status()["sinks"]
    assert [(s["name"], s["delivered"], s["dropped"]) for s in status] == [("exec", 11, 0)]
    assert service.stop() == 0
    assert AUTOCONFIG_KEY not in service.log_text()


def test_output_file_is_never_seen_partial_and_ends_equal_to_the_configuration(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    target = tmp_path / "out" / "environments.json"
    target.parent.mkdir()
    data = initial_data()
    environments = dict(data["environments"])
    seen: list[str] = []
    problems: list[str] = []
    stop = threading.Event()

    def read_in_a_loop() -> None:
        while not stop.is_set():
            try:
                text = target.read_text()
            except FileNotFoundError:
                continue
            try:
                document = json.loads(text)
            except ValueError:
                problems.append(text)
                continue
            seen.append(text)
            if len(document) not in (len(environments), len(environments) - 1):
                problems.append(f"{len(document)} environments")

    reader = threading.Thread(target=read_in_a_loop)
    reader.start()
    try:
        service = services(
            base_env(stream_server, tmp_path), args=("--output-file", str(target))
        ).wait_listening()
        wait_for(target.exists, "the output file")
        for version in range(2, 12):
            env_id = list(environments)[version % 6]
            environments[env_id] = environment_json(env_id, version=version)
            stream_server.control(
                "patch", {"path": f"/environments/{env_id}", "data": environments[env_id]}
            )

        def final() -> bool:
            document = json.loads(target.read_text())
            return {k: (v["version"], v["sdkKey"]["value"]) for k, v in document.items()} == sent(
                environments
            )

        wait_for(final, "the output file to show every patch")
    finally:
        stop.set()
        reader.join()
    assert problems == []
    assert seen  # the reader did read the file
    assert target.stat().st_mode & 0o777 == 0o600
    document = json.loads(target.read_text())
    first = next(iter(data["environments"]))
    assert document[first]["envId"] == first
    assert document[first]["projKey"] == data["environments"][first]["projKey"]
    assert service.stop() == 0


def test_a_failing_hook_is_retried_then_dropped_and_counted(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    out = tmp_path / "records"
    out.mkdir()
    hook = write_hook(tmp_path, RECORDING_HOOK + "sys.exit(3)\n")
    service = services(
        base_env(stream_server, out, AUTO_CONFIG_CACHE_SINK_MAX_ATTEMPTS="2"),
        args=("--exec", str(hook)),
    ).wait_listening()
    # 7 changes (6 inserts, initialized), each tried twice, then dropped.
    status = service.wait_status(
        lambda s: s["sinks"] and s["sinks"][0]["dropped"] == 7, "every change dropped", 60
    )
    sink = status["sinks"][0]
    assert sink["failedAttempts"] == 14
    assert sink["delivered"] == 0 and sink["pending"] == 0
    assert "exited with status 3" in sink["lastError"]
    assert len(records(out)) == 14
    assert status["ready"] is True  # the stream is unaffected
    code, text = service.get("/metrics")
    assert code == 200
    assert 'autoconfig_cache_sink_dropped_total{sink="exec"} 7' in text
    assert 'autoconfig_cache_sink_failed_attempts_total{sink="exec"} 14' in text
    assert service.stop() == 0


def test_a_hanging_hook_is_stopped_and_never_holds_up_the_stream_or_the_cache(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    hook = write_hook(
        tmp_path,
        "import os, time\n"
        f"open(os.path.join({str(pids)!r}, str(os.getpid())), 'w').close()\n"
        "time.sleep(3600)\n",
    )
    env = sqlite_env(
        tmp_path,
        stream_server,
        AUTO_CONFIG_CACHE_SINK_TIMEOUT="1",
        AUTO_CONFIG_CACHE_SINK_MAX_ATTEMPTS="1",
        AUTO_CONFIG_CACHE_SINK_CONCURRENCY="2",
    )
    service = services(env, args=("--exec", str(hook))).wait_listening()
    wait_for(lambda: len(list(pids.iterdir())) >= 1, "a hook to hang")
    # While hooks hang, a patch reaches the store.
    env_id = next(iter(initial_data()["environments"]))
    stream_server.control(
        "patch", {"path": f"/environments/{env_id}", "data": environment_json(env_id, version=5)}
    )
    wait_for(lambda: cached(tmp_path).get(env_id) == 5, "the patch in the cache")
    status = service.wait_status(
        lambda s: s["sinks"][0]["dropped"] == 8, "every hanging hook stopped", 60
    )
    assert "did not finish within 1 s" in status["sinks"][0]["lastError"]
    started = [int(path.name) for path in pids.iterdir()]
    wait_for(lambda: not any(_alive(pid) for pid in started), "every hook process stopped")
    assert service.stop() == 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is stopped; only its parent (the service) has not reaped it yet.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def test_ldactl_variables_work(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    out = tmp_path / "records"
    out.mkdir()
    target = tmp_path / "ldactl.json"
    hook = write_hook(tmp_path, RECORDING_HOOK)
    env = {
        "LD_RELAY_AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        # ldactl's form: the base URI with a trailing slash (relay_auto_config is appended).
        "LD_STREAM_URI": stream_server.uri + "/",
        "LDAC_EXEC": str(hook),
        "LDAC_EXEC_MODE": "change-json",
        "LDAC_OUTPUT_FILE": str(target),
        "RECORDS": str(out),
    }
    service = services(env).wait_listening()
    wait_for(lambda: len(records(out)) == 7, "the hooks of the first put")
    wait_for(target.exists, "the output file")
    data = initial_data()
    assert set(json.loads(target.read_text())) == set(data["environments"])
    found = records(out)
    assert {json.loads(r["stdin"])["kind"] for r in found} == {"insert", "initialized"}
    assert all(r["secrets"] == [] for r in found)  # LD_RELAY_AUTO_CONFIG_KEY withheld too
    assert service.status()["source"] == "stream"
    assert service.stop() == 0


DIRECTORY_PLUGIN = """\
from autoconfig_cache.hookspecs import hookimpl
from tests.sinks.example_directory_sink import DirectorySink


def directory_sink(spec):
    \"\"\"One <envId>.json file per environment in a directory.\"\"\"
    spec.check_options(())
    return DirectorySink(spec.require_path("the directory"), name=spec.name("directory"))


@hookimpl
def autoconfig_cache_sink_types():
    return {"directory": directory_sink}
"""


def install_directory_plugin(site: Path) -> None:
    """Install the example directory sink as a distribution with an entry point."""
    site.mkdir()
    (site / "acc_test_directory_sink.py").write_text(DIRECTORY_PLUGIN)
    info = site / "acc_test_directory_sink-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: acc-test-directory-sink\nVersion: 1.0\n"
    )
    (info / "entry_points.txt").write_text(
        "[autoconfig_cache]\ndirectory-sink = acc_test_directory_sink\n"
    )


def test_a_plugin_sink_from_the_sinks_setting(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    site = tmp_path / "site"
    install_directory_plugin(site)
    directory = tmp_path / "envs"
    directory.mkdir()
    (directory / "stale.json").write_text("{}")  # not an environment: removed on initialized
    env = base_env(
        stream_server,
        tmp_path,
        AUTO_CONFIG_CACHE_SINKS=f"directory://{directory}",
        PYTHONPATH=os.pathsep.join([str(site), str(REPO_ROOT)]),
    )
    service = services(env).wait_listening()
    data = initial_data()
    expected = {f"{env_id}.json" for env_id in data["environments"]}
    wait_for(lambda: {p.name for p in directory.iterdir()} == expected, "one file per env")
    gone = next(iter(data["environments"]))
    stream_server.control("delete", {"path": f"/environments/{gone}", "version": 2})
    wait_for(lambda: not (directory / f"{gone}.json").exists(), "the deleted env's file removed")
    written = json.loads((directory / f"{list(data['environments'])[1]}.json").read_text())
    assert written["envId"] == list(data["environments"])[1]
    assert [s["name"] for s in service.status()["sinks"]] == ["directory"]
    assert service.stop() == 0
