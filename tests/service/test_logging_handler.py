"""``run``'s change log (``LoggingHandler``) reads nothing of an item when its level is off: an
item's keys are decoded from its JSON on each read, and a start from a large cache would pay that
for every environment just to drop the message. The initial load is one INFO line with counts
(each item at DEBUG); later changes are logged per item at INFO."""

from __future__ import annotations

import logging

import pytest

from autoconfig_cache.demo.data import environment_json
from autoconfig_cache.models import Environment
from autoconfig_cache.service.runner import LoggingHandler
from autoconfig_cache.stream.handler import SnapshotSource

LOGGER = "autoconfig_cache.service.runner"


class CountingEnvironment(Environment):
    """A real environment that counts reads of the fields the log message shows."""

    reads = 0

    @property
    def proj_key(self) -> str:
        CountingEnvironment.reads += 1
        return super().proj_key

    @property
    def env_key(self) -> str:
        CountingEnvironment.reads += 1
        return super().env_key


def _environment(env_id: str = "env-logged") -> CountingEnvironment:
    CountingEnvironment.reads = 0
    env = CountingEnvironment.from_json(environment_json(env_id, version=3))
    assert type(env) is CountingEnvironment
    return env


def _started() -> LoggingHandler:
    """A handler past its initial load (a complete configuration is held)."""
    handler = LoggingHandler()
    handler.on_all_environments_received(SnapshotSource.CACHE)
    return handler


@pytest.mark.parametrize("method", ["on_environment_added", "on_environment_updated"])
def test_with_info_off_an_environment_change_reads_nothing_of_the_item(
    method: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = _started()
    caplog.set_level(logging.WARNING, logger=LOGGER)
    env = _environment()
    getattr(handler, method)(env)
    assert CountingEnvironment.reads == 0
    assert caplog.records == []


@pytest.mark.parametrize(
    ("method", "verb"),
    [("on_environment_added", "added"), ("on_environment_updated", "updated")],
)
def test_with_info_on_the_change_is_logged_with_its_keys(
    method: str, verb: str, caplog: pytest.LogCaptureFixture
) -> None:
    handler = _started()
    caplog.set_level(logging.INFO, logger=LOGGER)
    env = _environment()
    getattr(handler, method)(env)
    assert CountingEnvironment.reads == 2
    [record] = caplog.records
    assert record.getMessage() == (
        f"environment {verb}: {env.proj_key}/{env.env_key} ({env.env_id}) v3"
    )


def test_the_initial_load_is_one_info_line_with_its_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    handler = LoggingHandler()
    for i in range(3):
        handler.on_environment_added(_environment(f"env-{i}"))
        # At INFO, an item of the initial load is not even read for a DEBUG line.
        assert CountingEnvironment.reads == 0
    handler.on_all_environments_received(SnapshotSource.CACHE)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        "complete configuration held (source: cache): 3 environments and 0 filters loaded "
        "(each listed at DEBUG); ready"
    )
    # After the initial load, an added environment is a change: its own INFO line.
    caplog.clear()
    later = _environment("env-later")
    handler.on_environment_added(later)
    [record] = caplog.records
    assert record.levelno == logging.INFO
    assert record.getMessage() == (
        f"environment added: {later.proj_key}/{later.env_key} (env-later) v3"
    )


def test_the_initial_load_lists_each_item_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    handler = LoggingHandler()
    env = _environment()
    handler.on_environment_added(env)
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        f"environment added: {env.proj_key}/{env.env_key} ({env.env_id}) v3"
    )
