"""``autoconfig-cache run --once``: get the configuration once, print it (or write it), exit.

The data comes from the stream's first ``put`` when LaunchDarkly answers within the timeout
(``AUTO_CONFIG_CACHE_ONCE_TIMEOUT`` / ``--once-timeout``), else from the cache, with a line on
stderr saying so and how old the cached data is. The same stream manager as ``run`` does the
work, so the ``put`` is also written to the cache, as a run would (a free refresh); no status
server is started, no audit runs, and no hook or sink runs (ldactl's ``--once`` runs none
either: it stops at its first event, tarqd/ldactl ``ldactl/src/main.rs``).

Exit status: 0 with data; :data:`EXIT_NO_DATA` (3) when neither the stream nor the cache gave
any; :data:`EXIT_STREAM_REQUIRED` (4) when only the cache answered and the stream was required.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

import attrs

from ..cache import AutoConfigCache
from ..config import Config
from ..models import Environment
from ..secrets import mask
from ..sinks.atomic_file import write_file_atomically
from ..sinks.ldactl_json import environment_config
from ..sinks.output_file import render_environments
from ..stream.client import BackoffPolicy
from ..stream.handler import BaseHandler, SnapshotSource
from ..stream.manager import StreamManager
from .runner import stream_client

logger = logging.getLogger(__name__)

#: Neither the stream nor the cache gave a configuration.
EXIT_NO_DATA = 3
#: Only the cache answered, and ``--require-stream`` was given.
EXIT_STREAM_REQUIRED = 4
#: Seconds the stream's put gets to reach the store before ``--once`` exits.
STORE_WRITE_GRACE = 10.0


@attrs.frozen
class OnceAnswer:
    """The configuration ``--once`` got.

    :param environments: every environment, by id.
    :param source: ``stream`` or ``cache``.
    :param cache_age: for the cache, seconds since the data was written (``None``: unknown).
    """

    environments: Mapping[str, Environment]
    source: SnapshotSource
    cache_age: float | None = None


class _StreamPut(BaseHandler):
    """Notes when a complete configuration arrives from the stream."""

    def __init__(self) -> None:
        self.received = asyncio.Event()

    def on_all_environments_received(self, source: SnapshotSource) -> None:
        if source is SnapshotSource.STREAM:
            self.received.set()


async def fetch_once(
    config: Config, *, wait: float, backoff: BackoffPolicy | None = None
) -> OnceAnswer | None:
    """The configuration from the stream's first put, or from the cache when the stream gives
    none within ``wait`` seconds; ``None`` when neither has any."""
    client = stream_client(config, config.require_autoconfig_key(), backoff=backoff)
    cache = config.open_cache() if config.store_url else AutoConfigCache.null()
    handler = _StreamPut()
    manager = StreamManager(
        cache, handler, client=client, audit_interval=0, close_drain_timeout=STORE_WRITE_GRACE
    )
    try:
        await manager.start()
        try:
            async with asyncio.timeout(wait):
                await handler.received.wait()
        except TimeoutError:
            pass
        if handler.received.is_set():
            return OnceAnswer(manager.snapshot().environments, SnapshotSource.STREAM)
        if manager.ready.is_set() and manager.source is SnapshotSource.CACHE:
            age = manager.status().cached_data_age_seconds
            return OnceAnswer(manager.snapshot().environments, SnapshotSource.CACHE, age)
        return None
    finally:
        # Closing lets the put's store write finish (up to STORE_WRITE_GRACE seconds).
        await manager.close()
        await cache.close()


def masked_document(environments: Mapping[str, Environment]) -> dict[str, Any]:
    """The output file's document with every key masked (last four characters)."""
    document: dict[str, Any] = {}
    for env_id, env in environments.items():
        config = environment_config(env)
        config["mobKey"] = mask(config["mobKey"])
        sdk_key = config["sdkKey"]
        sdk_key["value"] = mask(sdk_key["value"])
        if sdk_key["expiring"] is not None:
            sdk_key["expiring"]["value"] = mask(sdk_key["expiring"]["value"])
        document[env_id] = config
    return document


def _age_text(age: float | None) -> str:
    if age is None:
        return "of unknown age"
    return f"written {age:.0f} s ago"


def run_once(
    config: Config,
    *,
    include_secrets: bool = False,
    require_stream: bool = False,
    timeout: float | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``--once``: print the configuration to ``out`` (or write ``config.output_file``) and
    return the exit status (see the module docstring)."""
    out = out or sys.stdout
    err = err or sys.stderr
    wait = config.once_timeout if timeout is None else timeout
    if config.exec_program or config.sink_specs:
        print(
            "autoconfig-cache: --once runs no hook and no sink (as ldactl's --once); only "
            "--output-file is written",
            file=err,
        )
    answer = asyncio.run(fetch_once(config, wait=wait))
    if answer is None:
        where = f"the cache (cache key {config.cache_key})" if config.store_url else "no cache"
        print(
            f"autoconfig-cache: no configuration: LaunchDarkly did not answer within {wait:g} s "
            f"and {where} holds none",
            file=err,
        )
        return EXIT_NO_DATA
    if answer.source is SnapshotSource.CACHE:
        if require_stream:
            print(
                f"autoconfig-cache: LaunchDarkly did not answer within {wait:g} s; the cache "
                f"(cache key {config.cache_key}) holds a configuration "
                f"{_age_text(answer.cache_age)}, but --require-stream was given",
                file=err,
            )
            return EXIT_STREAM_REQUIRED
        print(
            f"autoconfig-cache: LaunchDarkly did not answer within {wait:g} s: this "
            f"configuration comes from the cache (cache key {config.cache_key}), "
            f"{_age_text(answer.cache_age)}",
            file=err,
        )
    environments = dict(answer.environments)
    if config.output_file:
        # Keys in clear, as the output-file sink writes them (the mode protects them).
        write_file_atomically(Path(config.output_file), render_environments(environments))
        print(
            f"autoconfig-cache: wrote {len(environments)} environment(s) to {config.output_file}",
            file=err,
        )
        return 0
    document = (
        {env_id: environment_config(env) for env_id, env in environments.items()}
        if include_secrets
        else masked_document(environments)
    )
    # ASCII-only: nothing from the data can reach the terminal as a control sequence.
    out.write(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n")
    out.flush()
    return 0
