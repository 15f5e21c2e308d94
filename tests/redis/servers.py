"""Real ``redis-server`` processes for the Redis store tests: plain, TLS-only, cluster, sentinel.

Every server listens on a free loopback port, keeps nothing on disk beyond its own temporary
directory, and is killed by the fixture that started it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import redis

from tests.netfixtures import CertificateFiles
from tests.services import free_port, require_executable

STARTUP_SECONDS = 15.0


class RedisServer:
    """One ``redis-server`` process that a test may SIGKILL, restart, SIGSTOP and SIGCONT.

    :param directory: its working directory (config files, cluster state).
    :param tls: TLS files to serve TLS only (``--port 0 --tls-port P``).
    :param extra: more command-line arguments (e.g. cluster settings).
    :param sentinel: run as a sentinel with this configuration text (``port`` is added).
    :param password: require this password (``--requirepass``).
    """

    def __init__(
        self,
        directory: Path,
        *,
        tls: CertificateFiles | None = None,
        extra: tuple[str, ...] = (),
        sentinel: str | None = None,
        password: str | None = None,
    ) -> None:
        self.executable = require_executable("redis-server")
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.extra = extra
        self.sentinel = sentinel
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL of this server (``rediss://`` when TLS-only)."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts this server."""
        if self.sentinel is not None:
            config = self.directory / "sentinel.conf"
            if not config.exists():  # the sentinel rewrites it; keep its state across restarts
                config.write_text(f"port {self.port}\nbind 127.0.0.1\n{self.sentinel}")
            return [self.executable, str(config), "--sentinel", "--dir", str(self.directory)]
        args = [
            self.executable,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--protected-mode",
            "no",
        ]
        if self.tls is None:
            args += ["--port", str(self.port)]
        else:
            args += [
                "--port",
                "0",
                "--tls-port",
                str(self.port),
                "--tls-cert-file",
                str(self.tls.server_cert_file),
                "--tls-key-file",
                str(self.tls.server_key_file),
                "--tls-ca-cert-file",
                str(self.tls.ca_file),
                "--tls-auth-clients",
                "no",
            ]
        if self.password is not None:
            args += ["--requirepass", self.password]
        return args + list(self.extra)

    def client(self, **kwargs: Any) -> redis.Redis:
        """A synchronous redis-py client for setup and inspection."""
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca_file))
        if self.password is not None:
            kwargs.setdefault("password", self.password)
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5, **kwargs)

    def start(self) -> None:
        """Start the process and wait until it answers PING."""
        log = (self.directory / "server.log").open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
        )
        log.close()
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; log: "
                    f"{(self.directory / 'server.log').read_text(errors='replace')[-2000:]}"
                )
            try:
                with self.client(socket_connect_timeout=1) as client:
                    if client.ping():
                        return
            except (redis.RedisError, OSError):
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server on port {self.port} did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (a hard outage) and reap it."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)  # a stopped process must die too
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        """Kill, then start again on the same port."""
        self.kill()
        self.start()

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open but answers nothing (a hung server)."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


class RedisClusterProcesses:
    """Three cluster-enabled ``redis-server`` primaries joined with ``redis-cli --cluster``."""

    def __init__(self, directory: Path, size: int = 3) -> None:
        self.nodes = [
            RedisServer(
                directory / f"node{index}",
                extra=(
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(directory / f"node{index}" / "nodes.conf"),
                    "--cluster-port",
                    str(free_port()),
                    "--cluster-node-timeout",
                    "5000",
                ),
            )
            for index in range(size)
        ]

    @property
    def url(self) -> str:
        """A ``redis+cluster://`` URL listing every node."""
        hosts = ",".join(f"127.0.0.1:{node.port}" for node in self.nodes)
        return f"redis+cluster://{hosts}"

    def start(self) -> None:
        """Start the nodes, create the cluster and wait until every node reports it ok."""
        for node in self.nodes:
            node.start()
        result = subprocess.run(
            [
                require_executable("redis-cli"),
                "--cluster",
                "create",
                *(f"127.0.0.1:{node.port}" for node in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            timeout=60,
        )
        if result.returncode != 0:
            self.kill()
            raise RuntimeError(f"redis-cli --cluster create failed: {result.stdout[-2000:]!r}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = []
            for node in self.nodes:
                with node.client() as client:
                    states.append(client.execute_command("CLUSTER", "INFO"))
            if all(b"cluster_state:ok" in state for state in states):
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("the test cluster did not reach cluster_state:ok")

    def kill(self) -> None:
        """Kill every node."""
        for node in self.nodes:
            node.kill()


class SentinelProcesses:
    """A primary ``redis-server`` monitored by one ``redis-server --sentinel``."""

    service_name = "autoconfig-primary"

    def __init__(self, directory: Path) -> None:
        self.primary = RedisServer(directory / "primary")
        self.sentinel_config = (
            f"sentinel monitor {self.service_name} 127.0.0.1 {self.primary.port} 1\n"
            f"sentinel down-after-milliseconds {self.service_name} 60000\n"
        )
        self.sentinel = RedisServer(directory / "sentinel", sentinel=self.sentinel_config)

    @property
    def url(self) -> str:
        """A ``redis+sentinel://`` URL naming the monitored primary."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.service_name}"

    def start(self) -> None:
        """Start the primary, then the sentinel; wait until the sentinel knows the primary."""
        self.primary.start()
        self.sentinel.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with self.sentinel.client() as client:
                address = client.execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service_name
                )
            if address:
                return
            time.sleep(0.1)
        self.kill()
        raise RuntimeError("the sentinel did not learn the primary's address")

    def kill(self) -> None:
        """Kill the sentinel and the primary."""
        self.sentinel.kill()
        self.primary.kill()
