"""The dispatcher, with in-process sinks: ordering per environment, independence across
environments, the ``initialized`` barrier, the concurrency bound, retries with backoff, drops,
timeouts, the delivery ledger, counters and shutdown. No wall-clock assertion: waits are on
events, and every timeout is a safety net."""

from __future__ import annotations

import asyncio
import itertools
import logging

import pytest

from autoconfig_cache.secrets import mask
from autoconfig_cache.sinks import (
    Change,
    ChangeKind,
    PermanentDeliveryError,
    RetryPolicy,
    SinkDispatcher,
)

from .conftest import (
    FailingSink,
    HangingSink,
    NoWait,
    RecordingSink,
    eventually,
    initialized,
    insert,
    make_env,
    update,
)


def versions_of(env_id: str, count: int) -> list[Change]:
    """An insert then ``count - 1`` updates of one environment."""
    envs = [make_env(env_id, version) for version in range(1, count + 1)]
    return [insert(envs[0])] + [update(a, b) for a, b in itertools.pairwise(envs)]


async def test_changes_of_each_environment_arrive_in_order() -> None:
    sink = RecordingSink()
    lanes = {env_id: versions_of(env_id, 12) for env_id in ("env-a", "env-b", "env-c")}
    async with SinkDispatcher([sink], concurrency=8) as dispatcher:
        for index in range(12):  # interleaved, as a stream would send them
            for changes in lanes.values():
                dispatcher.submit(changes[index])
        await dispatcher.wait_idle()
    for env_id in lanes:
        assert sink.of(env_id) == [("insert", 1)] + [("update", v) for v in range(2, 13)]


async def test_a_slow_environment_does_not_delay_another() -> None:
    sink = RecordingSink()
    sink.hold("env-a")
    async with SinkDispatcher([sink]) as dispatcher:
        for change in versions_of("env-a", 3):
            dispatcher.submit(change)
        for change in versions_of("env-b", 3):
            dispatcher.submit(change)
        # env-a's first delivery is stuck; env-b's all go through meanwhile.
        await eventually(lambda: len(sink.of("env-b")) == 3, what="env-b delivered")
        assert sink.of("env-a") == []
        sink.release("env-a")
        await dispatcher.wait_idle()
    assert sink.of("env-a") == [("insert", 1), ("update", 2), ("update", 3)]


async def test_initialized_comes_after_every_earlier_change_and_before_every_later_one() -> None:
    sink = RecordingSink()
    sink.hold("env-a")
    a, b = make_env("env-a"), make_env("env-b")
    async with SinkDispatcher([sink]) as dispatcher:
        dispatcher.submit(insert(a))
        dispatcher.submit(initialized(a))
        dispatcher.submit(insert(b))
        for _ in range(50):  # plenty of turns for env-b to go ahead if nothing held it
            await asyncio.sleep(0)
        assert sink.delivered == []
        sink.release("env-a")
        await dispatcher.wait_idle()
    assert sink.delivered == [
        ("insert", "env-a", 1),
        ("initialized", None, None),
        ("insert", "env-b", 1),
    ]


async def test_deliveries_run_concurrently_up_to_the_bound() -> None:
    sink = RecordingSink()
    env_ids = [f"env-{n}" for n in range(5)]
    for env_id in env_ids:
        sink.hold(env_id)
    async with SinkDispatcher([sink], concurrency=2) as dispatcher:
        for env_id in env_ids:
            dispatcher.submit(insert(make_env(env_id)))
        await eventually(lambda: sink.running == 2, what="two deliveries running")
        for _ in range(50):
            await asyncio.sleep(0)
        assert dispatcher.status().in_flight == 2
        for env_id in env_ids:
            sink.release(env_id)
        await dispatcher.wait_idle()
    assert sink.most_running == 2
    assert len(sink.delivered) == 5


async def test_a_failure_is_retried_with_exponential_backoff_and_jitter() -> None:
    sink = FailingSink(failures=5)
    sleep = NoWait()
    policy = RetryPolicy(max_attempts=6, base_delay=1.0, max_delay=3.0)
    async with SinkDispatcher([sink], retry=policy, sleep=sleep) as dispatcher:
        dispatcher.submit(insert(make_env()))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert (status.delivered, status.failed_attempts, status.dropped) == (1, 5, 0)
    ceilings = [1.0, 2.0, 3.0, 3.0, 3.0]  # 1, 2, 4 (capped at 3), ...
    assert len(sleep.delays) == 5
    for delay, ceiling in zip(sleep.delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


async def test_after_the_last_attempt_a_change_is_dropped_and_the_next_goes_ahead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = FailingSink(failures=3)  # every change fails 3 times: dropped with 3 attempts
    env = make_env(version=1)
    newer = make_env(env.env_id, version=2)
    policy = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.02)
    async with SinkDispatcher([sink], retry=policy, sleep=NoWait()) as dispatcher:
        dispatcher.submit(insert(env))
        await dispatcher.wait_idle()
        assert dispatcher.status().dropped == 1
        sink.failures = 0  # the hook is repaired
        dispatcher.submit(update(env, newer))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert (status.delivered, status.failed_attempts, status.dropped) == (1, 3, 1)
    assert [c.version for c in sink.delivered] == [2]
    [error] = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert f"dropped insert {env.env_id} v1" in error and "after 3 failed attempt(s)" in error
    # The sink's message held the SDK key: masked in the log and in the status.
    assert mask(env.sdk_key) in error and env.sdk_key not in error
    assert env.sdk_key not in (status.sinks[0].last_error or "")


async def test_a_delivery_past_the_timeout_is_cancelled_and_counts_as_failed() -> None:
    sink = HangingSink()
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
    async with SinkDispatcher([sink], timeout=0.05, retry=policy, sleep=NoWait()) as dispatcher:
        dispatcher.submit(insert(make_env()))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert (sink.started, sink.cancelled) == (2, 2)
    assert (status.failed_attempts, status.dropped, status.in_flight) == (2, 1, 0)
    assert "did not finish within 0.05 s" in (status.sinks[0].last_error or "")


async def test_a_permanent_error_drops_the_change_without_retrying() -> None:
    class Refusing:
        name = "refusing"
        attempts = 0

        async def deliver(self, change: Change) -> None:
            self.attempts += 1
            raise PermanentDeliveryError("cannot be expressed")

        async def close(self) -> None:
            pass

    sink = Refusing()
    sleep = NoWait()
    async with SinkDispatcher([sink], sleep=sleep) as dispatcher:
        dispatcher.submit(insert(make_env()))
        await dispatcher.wait_idle()
        assert dispatcher.status().dropped == 1
    assert sink.attempts == 1 and sleep.delays == []


class Ledger:
    """A delivery ledger that holds versions already delivered, and records what it is told."""

    def __init__(self, already: set[tuple[str, int]], fail: bool = False) -> None:
        self.already = already
        self.fail = fail
        self.asked: list[tuple[str, str]] = []
        self.recorded: list[tuple[str, str, str | None, int | None]] = []

    async def should_deliver(self, sink: str, change: Change) -> bool:
        self.asked.append((sink, str(change.kind)))
        if self.fail:
            raise ConnectionError("ledger store unreachable")
        key = (change.env_id or "", change.version or 0)
        return change.kind is ChangeKind.INITIALIZED or key not in self.already

    async def delivered(self, sink: str, change: Change) -> None:
        self.recorded.append(("delivered", sink, change.env_id, change.version))

    async def abandoned(self, sink: str, change: Change) -> None:
        self.recorded.append(("abandoned", sink, change.env_id, change.version))


async def test_the_ledger_skips_what_was_delivered_except_for_per_instance_sinks() -> None:
    shared = RecordingSink("shared")
    local = RecordingSink("local")
    local.per_instance = True  # type: ignore[attr-defined]
    done, due = make_env("done"), make_env("due")
    ledger = Ledger({("done", 1)})
    async with SinkDispatcher([shared, local], ledger=ledger) as dispatcher:
        dispatcher.submit(insert(done))
        dispatcher.submit(insert(due))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert shared.delivered == [("insert", "due", 1)]
    assert sorted(local.delivered) == [("insert", "done", 1), ("insert", "due", 1)]
    assert status.sink("shared").skipped == 1 and status.sink("local").skipped == 0
    assert {sink for sink, _ in ledger.asked} == {"shared"}
    assert ledger.recorded == [("delivered", "shared", "due", 1)]


async def test_a_ledger_failure_never_loses_a_change() -> None:
    sink = RecordingSink()
    ledger = Ledger(set(), fail=True)
    async with SinkDispatcher([sink], ledger=ledger) as dispatcher:
        dispatcher.submit(insert(make_env("env-a")))
        await dispatcher.wait_idle()
    assert sink.delivered == [("insert", "env-a", 1)]


async def test_a_dropped_change_is_reported_to_the_ledger() -> None:
    ledger = Ledger(set())
    policy = RetryPolicy(max_attempts=1)
    async with SinkDispatcher([FailingSink()], ledger=ledger, retry=policy) as dispatcher:
        dispatcher.submit(insert(make_env("env-a")))
        await dispatcher.wait_idle()
    assert ledger.recorded == [("abandoned", "failing", "env-a", 1)]


async def test_submit_never_waits_and_counts_pending_changes() -> None:
    sink = RecordingSink()
    sink.hold("env-a")
    dispatcher = SinkDispatcher([sink], close_timeout=0.05)
    for change in versions_of("env-a", 100):
        dispatcher.submit(change)  # a plain call: nothing to await, the sink is stuck
    await eventually(lambda: dispatcher.status().in_flight == 1, what="first delivery started")
    assert dispatcher.status().pending == 100
    await dispatcher.close()
    assert sink.closed
    assert sink.delivered == []


async def test_close_waits_for_pending_deliveries_then_closes_the_sinks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    dispatcher = SinkDispatcher([sink])
    for change in versions_of("env-a", 5):
        dispatcher.submit(change)
    await dispatcher.close()
    assert len(sink.delivered) == 5 and sink.closed
    dispatcher.submit(insert(make_env("late")))  # after close: refused, with a warning
    assert any("after shutdown began" in r.getMessage() for r in caplog.records)
    assert len(sink.delivered) == 5


async def test_close_gives_up_on_a_stuck_sink_and_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = HangingSink()
    dispatcher = SinkDispatcher([sink], close_timeout=0.05)
    dispatcher.submit(insert(make_env()))
    dispatcher.submit(insert(make_env()))
    await dispatcher.close()
    assert sink.cancelled == sink.started >= 1
    assert any("2 change(s) not delivered at shutdown" in r.getMessage() for r in caplog.records)


def test_sink_names_must_differ() -> None:
    with pytest.raises(ValueError, match=r"sink names must differ.*same"):
        SinkDispatcher([RecordingSink("same"), RecordingSink("same")])


async def test_status_reports_each_sink_and_the_totals() -> None:
    good, bad = RecordingSink("good"), FailingSink(name="bad")
    policy = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.01)
    async with SinkDispatcher([good, bad], retry=policy, sleep=NoWait()) as dispatcher:
        dispatcher.submit(insert(make_env("env-a")))
        await dispatcher.wait_idle()
        status = dispatcher.status()
    assert (status.delivered, status.failed_attempts, status.dropped, status.pending) == (
        1,
        2,
        1,
        0,
    )
    shown = {entry["name"]: entry for entry in status.to_json()}
    assert shown["good"]["delivered"] == 1 and shown["good"]["lastError"] is None
    assert shown["bad"]["failedAttempts"] == 2 and shown["bad"]["dropped"] == 1
    assert "RuntimeError" in shown["bad"]["lastError"]
