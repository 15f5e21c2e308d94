"""Fixtures for the DynamoDB store tests: a real ``moto_server`` on a free loopback port.

One server and one table are shared by the session; every test works under its own cache key
(partition), so tests cannot see each other's items. Fault tests start a private server they may
stop, kill and restart.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_dynamodb import DynamoDBStore
from tests.secret_values import known_secret
from tests.services import free_port, require_executable, service_missing

# Dummy credentials: moto accepts anything, and botocore must never find real ones. The secret
# ones are distinctive so the session's secret scan can look for them (botocore logs the session
# token at DEBUG; the service holds it at WARNING).
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = known_secret("moto-fake-secret-access-key-5e1f")
os.environ["AWS_SESSION_TOKEN"] = known_secret("moto-fake-session-token-9b2d")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)

TABLE = "autoconfig-cache-test"
REGION = "us-east-1"


def _moto_executable() -> str:
    beside_python = Path(sys.executable).parent / "moto_server"
    if beside_python.exists():
        return str(beside_python)
    return shutil.which("moto_server") or require_executable("moto_server")


class MotoServer:
    """A ``moto_server`` process on 127.0.0.1 that a test may stop, kill and restart."""

    def __init__(self) -> None:
        self.executable = _moto_executable()
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The server's endpoint URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the server (a fresh, empty one: moto keeps everything in memory)."""
        self.process = subprocess.Popen(
            [self.executable, "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        client = self.client()
        while True:
            try:
                client.list_tables()
                return
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    service_missing(f"moto_server did not start on port {self.port}")
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
        """Create ``name`` in the Relay Proxy's schema, the way an operator would with the CLI."""
        self.client().create_table(
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


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """The session's shared moto server, with the shared table created."""
    server = MotoServer()
    server.start()
    server.create_table()
    yield server
    server.kill()


@pytest.fixture
def private_moto() -> Iterator[MotoServer]:
    """A moto server of this test's own, which it may pause, kill and restart."""
    server = MotoServer()
    server.start()
    server.create_table()
    yield server
    server.kill()


@pytest.fixture
def cache_key() -> str:
    """A cache key (partition) no other test uses."""
    return f"test-{uuid.uuid4().hex}"


StoreMaker = Callable[..., DynamoDBStore]


@pytest.fixture
async def make_store(moto: MotoServer, cache_key: str) -> AsyncIterator[StoreMaker]:
    """Build stores on the shared server; all are closed after the test.

    ``make_store(**options)`` uses the test's cache key; pass ``cache_key=``, ``table=`` or
    ``endpoint=`` to point elsewhere.
    """
    stores: list[DynamoDBStore] = []

    def make(
        *,
        cache_key: str = cache_key,
        table: str = TABLE,
        endpoint: str | None = None,
        **options: object,
    ) -> DynamoDBStore:
        url = f"dynamodb://{table}?region={REGION}&endpoint={endpoint or moto.endpoint}"
        spec = StoreSpec(
            url=url,
            cache_key=cache_key,
            options={name: str(value) for name, value in options.items()},
        )
        store = DynamoDBStore.from_spec(spec)
        stores.append(store)
        return store

    yield make
    for store in stores:
        await store.cache_close()
