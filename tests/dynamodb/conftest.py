"""Fixtures for the DynamoDB store tests: real DynamoDB emulators on free loopback ports.

Every test that talks to a server runs twice, against moto and against dynalite (ids
``[moto]`` and ``[dynalite]``), two independent emulators, so that no test passes only because
of one emulator's shortcut (tests/dynamodb/servers.py). One server of each and one table are
shared by the session; every test works under its own cache key (partition), so tests cannot
see each other's items. Fault tests start a private server they may stop, kill and restart.

A test that asserts DynamoDB's documented behaviour where one emulator deviates from it is
marked ``@pytest.mark.emulator_deviation("moto", reason=...)``: on that emulator only it is an
expected failure (strict: if the emulator is fixed, the mark must go).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_dynamodb import DynamoDBStore
from tests.secret_values import known_secret

from .servers import EMULATORS, REGION, TABLE, DynaliteServer, EmulatorServer, MotoServer

__all__ = [
    "REGION",
    "TABLE",
    "DynaliteServer",
    "EmulatorServer",
    "MotoServer",
    "StoreMaker",
]

# Dummy credentials: the emulators accept anything, and botocore must never find real ones. The
# secret ones are distinctive so the session's secret scan can look for them (botocore logs the
# session token at DEBUG; the service holds it at WARNING).
os.environ["AWS_ACCESS_KEY_ID"] = "testing"
os.environ["AWS_SECRET_ACCESS_KEY"] = known_secret("moto-fake-secret-access-key-5e1f")
os.environ["AWS_SESSION_TOKEN"] = known_secret("moto-fake-session-token-9b2d")
os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
os.environ["AWS_REGION"] = "us-east-1"
os.environ.pop("AWS_PROFILE", None)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "emulator_deviation(name, reason): the test asserts DynamoDB's documented behaviour, "
        "which emulator `name` does not follow; its run on that emulator is a strict xfail",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        emulator = callspec.params.get("emulator") if callspec is not None else None
        for mark in item.iter_markers("emulator_deviation"):
            [name] = mark.args
            assert name in EMULATORS, f"{item.nodeid}: unknown emulator {name!r}"
            if name == emulator:
                reason = mark.kwargs["reason"]
                item.add_marker(
                    pytest.mark.xfail(
                        reason=f"{name} deviates from DynamoDB: {reason}", strict=True
                    )
                )


@pytest.fixture(scope="session", params=list(EMULATORS))
def emulator(request: pytest.FixtureRequest) -> type[EmulatorServer]:
    """The emulator this run of the test uses (parametrized: every emulator in turn)."""
    server_class: type[EmulatorServer] = EMULATORS[request.param]
    return server_class


@pytest.fixture(scope="session")
def server(emulator: type[EmulatorServer]) -> Iterator[EmulatorServer]:
    """The session's shared server of this emulator, with the shared table created (ACTIVE)."""
    shared = emulator()
    shared.start()
    try:
        shared.create_table()
        yield shared
    finally:
        shared.kill()


@pytest.fixture
def private_server(emulator: type[EmulatorServer]) -> Iterator[EmulatorServer]:
    """A server of this test's own, which it may pause, kill and restart."""
    own = emulator()
    own.start()
    try:
        own.create_table()
        yield own
    finally:
        own.kill()


@pytest.fixture
def cache_key() -> str:
    """A cache key (partition) no other test uses."""
    return f"test-{uuid.uuid4().hex}"


StoreMaker = Callable[..., DynamoDBStore]


@pytest.fixture
async def make_store(server: EmulatorServer, cache_key: str) -> AsyncIterator[StoreMaker]:
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
        url = f"dynamodb://{table}?region={REGION}&endpoint={endpoint or server.endpoint}"
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
