"""DynamoDB emulators the tests start on a free loopback port: moto and dynalite.

Two independent implementations, so that a test cannot pass only because of one emulator's
shortcut (moto answers CreateTable with a table already ACTIVE; DynamoDB and dynalite answer
CREATING first). Both keep everything in memory: a restarted server is empty.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import boto3

from tests.services import dynalite_command, free_port, require_executable, service_missing

TABLE = "autoconfig-cache-test"
REGION = "us-east-1"

#: Only so that a broken server fails the test instead of blocking the run; not a timing check.
_START_GUARD = 30.0
_ACTIVE_GUARD = 30.0


class EmulatorServer(ABC):
    """A DynamoDB emulator process on 127.0.0.1 that a test may stop, kill and restart."""

    #: The emulator's name, as in test ids (``test_x[moto]``) and deviation marks.
    name: ClassVar[str]

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts the server on :attr:`port` (skips/fails if missing)."""

    @property
    def endpoint(self) -> str:
        """The server's endpoint URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (a fresh, empty one) and wait until it answers."""
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + _START_GUARD
        client = self.client()
        while True:
            try:
                client.list_tables()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    service_missing(f"{self.name} did not start on port {self.port}")
                time.sleep(0.1)

    def client(self) -> Any:
        """A boto3 DynamoDB client for this server (test-side, independent of the store)."""
        return boto3.client(
            "dynamodb",
            region_name=REGION,
            endpoint_url=self.endpoint,
            config=boto3.session.Config(
                connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1}
            ),
        )

    def create_table(self, name: str = TABLE) -> None:
        """Create ``name`` in the Relay Proxy's schema and wait until it is ACTIVE.

        CreateTable answers with the table CREATING; it takes writes only once ACTIVE
        (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_CreateTable.html).
        """
        client = self.client()
        client.create_table(
            TableName=name,
            AttributeDefinitions=[
                {"AttributeName": "namespace", "AttributeType": "S"},
                {"AttributeName": "key", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "namespace", "KeyType": "HASH"},
                {"AttributeName": "key", "KeyType": "RANGE"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        deadline = time.monotonic() + _ACTIVE_GUARD
        while client.describe_table(TableName=name)["Table"]["TableStatus"] != "ACTIVE":
            if time.monotonic() > deadline:
                raise AssertionError(f"table {name!r} on {self.name} never became ACTIVE")
            time.sleep(0.05)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections but answers nothing (a hung server)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (a hard outage); in-memory data is lost."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None


class MotoServer(EmulatorServer):
    """``moto_server`` (Python, from the dev dependencies)."""

    name = "moto"

    def command(self) -> list[str]:
        beside_python = Path(sys.executable).parent / "moto_server"
        if beside_python.exists():
            executable = str(beside_python)
        else:
            executable = shutil.which("moto_server") or require_executable("moto_server")
        return [executable, "-H", "127.0.0.1", "-p", str(self.port)]


class DynaliteServer(EmulatorServer):
    """dynalite (Node.js, npm), installed by the suite on first use (tests/services.py).

    In memory (no ``--path``); tables stay CREATING for dynalite's default 500 ms, as a real
    table does for a while, so that code which skips the wait for ACTIVE fails here.
    """

    name = "dynalite"

    def command(self) -> list[str]:
        return [*dynalite_command(), "--host", "127.0.0.1", "--port", str(self.port)]


#: Every emulator the DynamoDB tests run against, by name (the order of the test ids).
EMULATORS: dict[str, type[EmulatorServer]] = {
    server.name: server for server in (MotoServer, DynaliteServer)
}
