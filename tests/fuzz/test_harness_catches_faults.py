"""The harness's own tests: each plants one fault and shows that the invariant meant to catch it
does (and that it holds without the fault), so a passing fuzz run is not a vacuous one."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from autoconfig_cache.models import Environment
from autoconfig_cache.records import ItemKind
from autoconfig_cache.stream import BackoffPolicy, BaseHandler
from autoconfig_cache.stream.sse import DEFAULT_MAX_EVENT_BYTES

from . import invariants
from .harness import Observation, run_script
from .model import ItemSpec, PutEffect
from .script import Script
from .wire import Connection, Segment, join_lines

AUTOCONFIG_KEY = "rel-" + "0f" * 10
ENCRYPTION_KEY = "enc-" + "e1" * 10
SDK_KEY = "sdk-" + "5d" * 10


def connection(*segments: Segment) -> Connection:
    lines = [line for segment in segments for line in segment.lines]
    return Connection(200, segments, (join_lines(lines, [b"\n"], bom=False),))


def put_of_one_environment() -> Segment:
    raw = {"envID": "e1", "envKey": "k", "projKey": "p", "sdkKey": {"value": SDK_KEY}, "version": 3}
    body = json.dumps({"path": "/", "data": {"environments": {"e1": raw}, "filters": {}}})
    effect = PutEffect((ItemSpec(ItemKind.ENVIRONMENT, "e1", 3, raw),))
    return Segment((b"event: put", b"data: " + body.encode(), b""), effect=effect, label="put")


def play(script: Script, directory: Path, **options: object) -> Observation:
    return asyncio.run(
        run_script(script, directory, AUTOCONFIG_KEY, ENCRYPTION_KEY, **options)  # type: ignore[arg-type]
    )


def test_an_event_without_a_limit_breaks_the_memory_bound(tmp_path: Path) -> None:
    endless = Segment((b"event: put", b"data: {"), endless=True, ends_connection=True)
    script = Script((connection(put_of_one_environment(), endless),))
    assert invariants.memory_stays_bounded(play(script, tmp_path / "limited")) == []
    unlimited = play(script, tmp_path / "unlimited", max_event_bytes=DEFAULT_MAX_EVENT_BYTES)
    assert invariants.memory_stays_bounded(unlimited) != []


def test_a_client_without_backoff_breaks_the_spacing(tmp_path: Path) -> None:
    retry_zero = Segment((b"retry: 0",), label="retry: 0")
    script = Script((connection(retry_zero), connection(retry_zero), Connection(503)))
    assert invariants.reconnects_are_spaced(play(script, tmp_path / "normal"), script) == []
    no_backoff = BackoffPolicy(base=0.0, maximum=0.0)
    observed = play(script, tmp_path / "none", backoff=no_backoff)
    assert invariants.reconnects_are_spaced(observed, script) != []


class LeakyHandler(BaseHandler):
    """A handler that logs the SDK key in clear (what the secret check is for)."""

    def on_environment_added(self, env: Environment) -> None:
        logging.getLogger("leaky.handler").info("added %s with key %s", env.env_id, env.sdk_key)


# Its planted leak is the point: the session-wide log scan (tests/conftest.py) must skip it.
@pytest.mark.prints_secrets
def test_a_key_logged_in_clear_is_found(tmp_path: Path) -> None:
    script = Script((connection(put_of_one_environment()),))
    secrets = [AUTOCONFIG_KEY, ENCRYPTION_KEY]
    assert invariants.no_secret_is_logged(play(script, tmp_path / "quiet"), secrets) == []
    leaked = play(script, tmp_path / "leaky", handler=LeakyHandler())
    problems = invariants.no_secret_is_logged(leaked, secrets)
    assert problems and all(SDK_KEY not in problem for problem in problems)  # reported masked


def test_good_items_are_checked_against_the_store(tmp_path: Path) -> None:
    script = Script((connection(put_of_one_environment()),))
    observed = play(script, tmp_path / "store")
    expected = script.expected()
    assert invariants.good_items_reach_the_store(observed, expected) == []
    assert invariants.store_holds_only_valid_items(observed) == []
    # The same store against a contract that promised another version: caught.
    (spec,) = expected.live.values()
    expected.live[spec.key] = ItemSpec(spec.kind, spec.item_id, 4, {**spec.raw, "version": 4})
    assert invariants.good_items_reach_the_store(observed, expected) != []
