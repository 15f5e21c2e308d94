"""Real processes for the service tests: the local AutoConfig stream server and ``run``."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.demo.data import environment_json, sample_put_data
from tests.cli.conftest import KNOWN_SDK_KEY, clean_environ
from tests.secret_values import known_secret
from tests.services import free_port

AUTOCONFIG_KEY = known_secret("rel-0a1b2c3d-4e5f-6a7b-8c9d-autoconfig")
STARTUP_SECONDS = 30.0


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def http(
    url: str, *, method: str = "GET", body: Any = None, key: str | None = None
) -> tuple[int, str]:
    """One plain HTTP request; returns (status, body text); (0, error) when nothing answers."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if key is not None:
        request.add_header("Authorization", key)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
        return 0, str(exc)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def initial_data() -> dict[str, Any]:
    """Six environments and two filters; the first environment carries KNOWN_SDK_KEY."""
    data = sample_put_data(environments=6, filters=2)
    first = next(iter(data["environments"]))
    data["environments"][first] = environment_json(first, sdk_key=KNOWN_SDK_KEY)
    return data


class StreamServerProcess:
    """``python -m autoconfig_cache.stream`` on a free port, driven through its control API."""

    def __init__(self, directory: Path, data: Mapping[str, Any], port: int | None = None) -> None:
        snapshot = directory / "snapshot.json"
        snapshot.write_text(json.dumps(data))
        # A given port lets a test restart "LaunchDarkly" where its clients expect it.
        self.port = port or free_port()
        self.log = directory / "stream-server.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "autoconfig_cache.stream",
                    "--snapshot",
                    str(snapshot),
                    "--port",
                    str(self.port),
                    "--heartbeat",
                    "1",
                ],
                env=clean_environ({"AUTOCONFIG_KEY": AUTOCONFIG_KEY}),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: port_open(self.port), "the stream server", STARTUP_SECONDS)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def control(self, name: str, body: Any = None) -> Any:
        status, text = http(
            f"{self.uri}/control/{name}", method="POST", body=body or {}, key=AUTOCONFIG_KEY
        )
        assert status == 200, (name, status, text)
        return json.loads(text) if text else None

    def go_down(self) -> None:
        """LaunchDarkly "goes down": new connections get 503 and open ones are dropped."""
        self.control("reject", {"status": 503})
        self.control("drop")

    def come_back(self) -> None:
        self.control("reject", {"status": None})

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class ServiceProcess:
    """``autoconfig-cache run`` in a subprocess; its log goes to a file."""

    def __init__(
        self,
        directory: Path,
        env: Mapping[str, str],
        name: str = "service",
        args: tuple[str, ...] = (),
    ) -> None:
        self.port = int(env.get("PORT") or free_port())
        self.log = directory / f"{name}.log"
        full_env = {"PORT": str(self.port), "AUTO_CONFIG_CACHE_BIND_ADDRESS": "127.0.0.1", **env}
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "autoconfig_cache.cli", "run", *args],
                env=clean_environ(full_env),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_listening(self) -> ServiceProcess:
        def up() -> bool:
            if self.process.poll() is not None:
                pytest.fail(f"run exited with {self.process.returncode}: {self.log_text()}")
            return self.get("/healthz")[0] == 200

        wait_for(up, "the status server", STARTUP_SECONDS)
        return self

    def get(self, path: str) -> tuple[int, str]:
        return http(f"http://127.0.0.1:{self.port}{path}")

    def status(self) -> dict[str, Any]:
        code, text = self.get("/status")
        assert code == 200, text
        result: dict[str, Any] = json.loads(text)
        return result

    def wait_status(
        self, check: Callable[[dict[str, Any]], Any], what: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}

        def probe() -> bool:
            found.clear()
            found.update(self.status())
            return bool(check(found))

        wait_for(probe, what, timeout)
        return found

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, signum: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            os.kill(self.process.pid, signum)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                pytest.fail(f"run did not stop on signal {signum}: {self.log_text()}")
        return self.process.returncode


@pytest.fixture
def stream_server(tmp_path: Path) -> Iterator[StreamServerProcess]:
    server = StreamServerProcess(tmp_path, initial_data())
    yield server
    server.stop()


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Callable[..., ServiceProcess]]:
    """Start ``run`` processes; every one still running is stopped at the end."""
    started: list[ServiceProcess] = []

    def start(
        env: Mapping[str, str], name: str = "service", args: tuple[str, ...] = ()
    ) -> ServiceProcess:
        service = ServiceProcess(tmp_path, env, name=f"{name}-{len(started)}", args=args)
        started.append(service)
        return service

    yield start
    for service in started:
        if service.process.poll() is None:
            service.process.kill()
            service.process.wait()
