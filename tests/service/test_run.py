"""``autoconfig-cache run`` as a real process against the local stream server and real stores."""

from __future__ import annotations

import json
import signal
import socket
from collections.abc import Callable
from pathlib import Path

from autoconfig_cache.demo.data import environment_json
from tests.cli.conftest import KNOWN_SDK_KEY, load, run_cli
from tests.service.conftest import (
    AUTOCONFIG_KEY,
    ServiceProcess,
    StreamServerProcess,
    initial_data,
    wait_for,
)
from tests.services import free_port

Start = Callable[..., ServiceProcess]


def sqlite_env(tmp_path: Path, server: StreamServerProcess, **extra: str) -> dict[str, str]:
    env = {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": server.uri,
        "AUTO_CONFIG_CACHE_STORE": f"sqlite://{tmp_path / 'cache.db'}",
        "AUTO_CONFIG_CACHE_KEY": "service-test",
    }
    env.update(extra)
    return env


def cached(tmp_path: Path) -> dict[str, int]:
    """Versions of what the SQLite cache holds, read through the library with the AutoConfig key
    (the default encryption key)."""
    result = load(
        f"sqlite://{tmp_path / 'cache.db'}", encryption_key=AUTOCONFIG_KEY, cache_key="service-test"
    )
    items = {**result.snapshot.environments, **result.snapshot.filters}
    return {item_id: item.version for item_id, item in items.items()}


def written(status: dict[str, object]) -> bool:
    store = status["store"]
    assert isinstance(store, dict)
    return store["lastSuccessfulWrite"] is not None


def test_serves_the_stream_and_writes_the_cache(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    service = services(sqlite_env(tmp_path, stream_server)).wait_listening()
    status = service.wait_status(lambda s: s["ready"] and written(s), "ready and written")
    data = initial_data()
    assert status["source"] == "stream"
    assert set(status["environments"]) == set(data["environments"])
    assert set(status["filters"]) == set(data["filters"])
    first_id = next(iter(data["environments"]))
    env = status["environments"][first_id]
    assert env == {
        "envKey": data["environments"][first_id]["envKey"],
        "envName": data["environments"][first_id]["envName"],
        "projKey": data["environments"][first_id]["projKey"],
        "projName": data["environments"][first_id]["projName"],
        "version": 1,
        "sdkKey": "****" + KNOWN_SDK_KEY[-4:],
    }
    assert status["filters"]["filter0000"] == {"projKey": "web", "key": "filter-0", "version": 1}
    assert status["stream"]["connected"] is True
    assert status["stream"]["lastEventTime"] is not None
    assert status["store"]["scheme"] == "sqlite" and status["store"]["format"] == "v2"
    assert status["store"]["errorCount"] == 0
    assert service.get("/readyz")[0] == 200
    assert cached(tmp_path) == {
        **{k: 1 for k in data["environments"]},
        "filter0000": 1,
        "filter0001": 1,
    }
    assert service.stop() == 0
    assert KNOWN_SDK_KEY not in service.log_text()
    assert AUTOCONFIG_KEY not in service.log_text()


def test_metrics_describe_the_state(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    service = services(sqlite_env(tmp_path, stream_server)).wait_listening()
    service.wait_status(lambda s: s["ready"] and written(s), "ready and written")
    code, text = service.get("/metrics")
    assert code == 200
    samples = dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )
    assert samples["autoconfig_cache_environments"] == "6"
    assert samples["autoconfig_cache_filters"] == "2"
    assert samples['autoconfig_cache_source{source="stream"}'] == "1"
    assert samples['autoconfig_cache_source{source="cache"}'] == "0"
    assert samples["autoconfig_cache_stream_connected"] == "1"
    assert samples["autoconfig_cache_store_errors_total"] == "0"
    assert float(samples["autoconfig_cache_store_last_write_age_seconds"]) >= 0
    assert KNOWN_SDK_KEY not in text


def test_readyz_is_503_until_a_configuration_arrives(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    stream_server.go_down()
    service = services(sqlite_env(tmp_path, stream_server)).wait_listening()
    # The cache is empty and the stream answers 503: nothing to serve yet.
    service.wait_status(lambda s: s["stream"]["error"] is not None, "a failed stream attempt")
    code, body = service.get("/readyz")
    assert code == 503
    assert json.loads(body) == {"ready": False, "source": "none"}
    assert service.status()["source"] == "none"
    stream_server.come_back()
    wait_for(lambda: service.get("/readyz")[0] == 200, "readyz 200")
    assert service.status()["source"] == "stream"


def test_a_fresh_instance_is_ready_from_the_cache_while_the_stream_is_down(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    first = services(sqlite_env(tmp_path, stream_server), "first").wait_listening()
    first.wait_status(lambda s: s["ready"] and written(s), "first instance written")
    assert first.stop() == 0

    stream_server.go_down()
    second = services(sqlite_env(tmp_path, stream_server), "second").wait_listening()
    wait_for(lambda: second.get("/readyz")[0] == 200, "readyz 200 from the cache")
    status = second.status()
    assert status["source"] == "cache"
    assert status["stream"]["connected"] is False
    assert set(status["environments"]) == set(initial_data()["environments"])
    assert status["cache"]["ageSeconds"] is not None
    metrics = second.get("/metrics")[1]
    assert 'autoconfig_cache_source{source="cache"} 1' in metrics

    # While LaunchDarkly is down, an environment changes, one is removed and one is added.
    data = initial_data()
    ids = list(data["environments"])
    changed, removed = ids[1], ids[2]
    data["environments"][changed] = environment_json(changed, env_name="Renamed", version=2)
    del data["environments"][removed]
    data["environments"]["newenv"] = environment_json("newenv", version=1)
    stream_server.control("put", data)
    stream_server.come_back()

    status = second.wait_status(
        lambda s: s["source"] == "stream" and "newenv" in s["environments"], "reconciliation"
    )
    assert status["environments"][changed]["version"] == 2
    assert status["environments"][changed]["envName"] == "Renamed"
    assert removed not in status["environments"]

    def cache_reconciled() -> bool:
        versions = cached(tmp_path)
        return versions.get(changed) == 2 and removed not in versions and "newenv" in versions

    wait_for(cache_reconciled, "the cache to hold the reconciled data")
    assert second.stop() == 0


def test_a_patch_is_persisted(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    service = services(sqlite_env(tmp_path, stream_server)).wait_listening()
    service.wait_status(lambda s: s["ready"] and written(s), "ready and written")
    env_id = list(initial_data()["environments"])[3]
    stream_server.control(
        "patch", {"path": f"/environments/{env_id}", "data": environment_json(env_id, version=7)}
    )
    service.wait_status(lambda s: s["environments"][env_id]["version"] == 7, "the patch")
    wait_for(lambda: cached(tmp_path).get(env_id) == 7, "the patch in the cache")


def test_sigterm_and_sigint_shut_down_cleanly_with_exit_0(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        service = services(sqlite_env(tmp_path, stream_server)).wait_listening()
        service.wait_status(lambda s: s["ready"], "ready")
        assert service.stop(signum) == 0
        assert "stopped" in service.log_text()
        assert "Traceback" not in service.log_text()


def test_a_port_in_use_is_a_one_line_error_with_exit_1(
    tmp_path: Path, stream_server: StreamServerProcess
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            ["run"],
            {
                **sqlite_env(tmp_path, stream_server),
                "PORT": str(port),
                "AUTO_CONFIG_CACHE_BIND_ADDRESS": "127.0.0.1",
            },
        )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert errors == [
        f"autoconfig-cache: error: port {port} on 127.0.0.1 is already in use; "
        "stop the other process or set PORT (TOML: port) to a free port"
    ]
    assert "Traceback" not in result.stderr


def test_run_without_an_autoconfig_key_names_the_setting(tmp_path: Path) -> None:
    result = run_cli(["run"], {"PORT": str(free_port())})
    assert result.returncode == 1
    assert "AUTO_CONFIG_KEY" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


def test_a_store_that_fails_at_start_does_not_stop_the_service(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    env = sqlite_env(
        tmp_path, stream_server, AUTO_CONFIG_CACHE_STORE=f"sqlite://{blocker}/cache.db"
    )
    service = services(env).wait_listening()
    status = service.wait_status(
        lambda s: s["ready"] and s["store"]["errorCount"] > 0, "ready despite the store"
    )
    assert status["source"] == "stream"
    assert len(status["environments"]) == 6
    assert status["store"]["lastError"]
    assert service.stop() == 0


def test_run_reads_a_toml_config_file_and_the_environment_overrides_it(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    config = tmp_path / "autoconfig.toml"
    config.write_text(
        f'stream_uri = "{stream_server.uri}"\n'
        'bind_address = "127.0.0.1"\n'
        "port = 1\n"  # overridden by PORT from the environment
        "[cache]\n"
        f'store = "sqlite://{tmp_path / "from-file.db"}"\n'
        'key = "from-file"\n'
    )
    port = free_port()
    service = services(
        {"AUTO_CONFIG_KEY": AUTOCONFIG_KEY, "PORT": str(port)}, "toml", ("--config", str(config))
    ).wait_listening()
    service.wait_status(lambda s: s["ready"] and written(s), "ready and written")
    assert service.port == port
    assert (tmp_path / "from-file.db").exists()
    assert service.stop() == 0
