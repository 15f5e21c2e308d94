"""Scenario 2: the store fails in the middle of a burst of stream changes.

A ``run`` process receives a burst of patches (and some deletes, and re-inserts of what was
deleted); a third of the way in the store goes away for a few seconds:

* Redis SIGKILLed, then restarted **empty** on the same port;
* Redis SIGSTOPped (a hung server: connections stay open, nothing answers) longer than the
  store's 5 s operation timeout, then SIGCONTinued;
* the DynamoDB server (moto) SIGKILLed, then restarted **empty**: the table itself is gone, and
  the store recreates it (store option ``create_table=true``).

The process keeps serving the stream throughout; once the store answers again it is
re-synchronised from memory. Passing means: 0 updates lost (the store ends equal to the state
the ordering rules give), and the process saw the failure (errors counted, a resync done).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.resilience.conftest import (
    LeakWatch,
    Model,
    WatchedService,
    assert_no_leak,
    converge,
    diff,
    put_data,
    record_figures,
    send,
    service_env,
    store_versions,
    versions_of,
)
from tests.service.conftest import StreamServerProcess
from tests.services import require_plugin

require_plugin("autoconfig_cache_redis")
require_plugin("autoconfig_cache_dynamodb")
from tests.dynamodb.conftest import REGION, MotoServer
from tests.redis.servers import RedisServer

BEFORE, DURING, AFTER = 100, 100, 100  # events before, during and after the outage


class Outage(Protocol):
    store_url: str  # what the service uses
    check_url: str  # what the test reads with (must not repair anything itself)
    seconds: float  # how long the store stays away

    def fail(self) -> None: ...
    def recover(self) -> None: ...
    def close(self) -> None: ...


class RedisKilled:
    seconds = 4.0

    def __init__(self, directory: Path) -> None:
        self.server = RedisServer(directory)
        self.server.start()
        self.store_url = self.check_url = self.server.url

    def fail(self) -> None:
        self.server.kill()

    def recover(self) -> None:
        self.server.start()  # same port, empty: no persistence

    def close(self) -> None:
        self.server.kill()


class RedisHung(RedisKilled):
    seconds = 7.0  # longer than the store's 5 s operation timeout

    def fail(self) -> None:
        self.server.pause()

    def recover(self) -> None:
        self.server.resume()


class DynamoKilled:
    seconds = 4.0

    def __init__(self, directory: Path) -> None:
        self.server = MotoServer()
        self.server.start()
        base = f"dynamodb://resilience?region={REGION}&endpoint={self.server.endpoint}"
        self.store_url = base + "&create_table=true&timeout=10"
        self.check_url = base

    def fail(self) -> None:
        self.server.kill()

    def recover(self) -> None:
        self.server.start()  # empty: no table at all

    def close(self) -> None:
        self.server.kill()


OUTAGES: dict[str, Callable[[Path], Any]] = {
    "redis-sigkill-restart-empty": RedisKilled,
    "redis-sigstop-sigcont": RedisHung,
    "dynamodb-sigkill-restart-empty": DynamoKilled,
}


@pytest.fixture(params=list(OUTAGES))
def outage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Outage]:
    made: Outage = OUTAGES[request.param](tmp_path / "store")
    yield made
    made.close()


class Burst:
    """Changes round-robin over the fields: patches at a newer version, and every tenth a delete
    (the field comes back with a later patch, as an insert)."""

    def __init__(self, stream: StreamServerProcess, model: Model) -> None:
        self.stream = stream
        self.model = model
        self.fields = sorted(model.live)
        self.sent = 0

    def send(self, count: int, pause: float) -> None:
        for _ in range(count):
            self.sent += 1
            field = self.fields[self.sent % len(self.fields)]
            delete = self.sent % 10 == 0 and field in self.model.live
            send(self.stream, self.model, field, self.model.latest(field) + 1, delete)
            time.sleep(pause)


def test_the_store_is_resynchronised_from_memory_after_an_outage_with_no_update_lost(
    request: pytest.FixtureRequest,
    outage: Outage,
    stream_factory: Callable[..., StreamServerProcess],
    services: Callable[..., WatchedService],
    watch: LeakWatch,
) -> None:
    data = put_data(30, 5)
    stream = stream_factory(data)
    service = services(service_env(stream.uri, outage.store_url)).wait_listening()
    service.wait_status(
        lambda s: s["ready"] and s["store"]["lastSuccessfulWrite"], "ready and written", 60
    )
    model = Model(versions_of(data))
    burst = Burst(stream, model)
    burst.send(BEFORE, 0.005)
    outage.fail()
    failed_at = time.monotonic()
    burst.send(DURING // 2, outage.seconds / DURING)
    served_during_outage = service.get("/readyz")[0] == 200
    burst.send(DURING - DURING // 2, outage.seconds / DURING)
    outage.recover()
    recovered_at = time.monotonic()
    burst.send(AFTER, 0.005)

    expected = model.live
    last: dict[str, Any] = {}

    def converged() -> bool:
        status = service.status()
        last["status"] = status
        last["store"] = store_versions(outage.check_url) or {}
        return (
            not status["store"]["resyncPending"]
            and last["store"] == expected
            and service.versions() == expected
        )

    seconds = converge(converged, timeout=90)
    after_recovery = None if seconds is None else time.monotonic() - recovered_at
    status = last["status"]
    figures = {
        "store_outage": request.node.callspec.params["outage"],
        "items": len(versions_of(data)),
        "events": BEFORE + DURING + AFTER,
        "events_during_outage": DURING,
        "outage_seconds": round(recovered_at - failed_at, 1),
        "store_errors_counted": status["store"]["errorCount"],
        "resyncs": status["store"]["resyncCount"],
        "seconds_to_converge_after_recovery": (
            None if after_recovery is None else round(after_recovery, 2)
        ),
        "updates_lost": len(diff(expected, last["store"])),
        "ready_during_outage": served_during_outage,
    }
    assert service.stop() == 0
    assert_no_leak(watch, figures)
    record_figures(f"2 store outage mid-stream ({figures['store_outage']})", figures)

    assert seconds is not None, diff(expected, last["store"])
    assert figures["updates_lost"] == 0
    assert status["store"]["errorCount"] > 0  # the outage really hit the service
    assert status["store"]["resyncCount"] >= 1
    assert served_during_outage
