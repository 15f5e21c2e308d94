"""The invariants every hostile stream must leave true, each a function that returns what broke.

Each check returns a list of problems (empty: the invariant holds), so that one example reports
every invariant it breaks, not only the first.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from autoconfig_cache.errors import MalformedItemError
from autoconfig_cache.models import Environment, Filter, Item
from autoconfig_cache.records import ItemKind
from autoconfig_cache.secrets import mask
from autoconfig_cache.stream.client import EXTENDED_BACKOFF

from .events import MAX_EVENT_BYTES
from .harness import BACKOFF, Observation
from .items import SECRET_PATTERN
from .jsonvalues import Raw, nesting_depth, shown
from .model import ExpectedState, ItemSpec
from .script import Script
from .server import SENTINEL_ID

#: Memory bound, in bytes: ``MEMORY_FACTOR * MAX_EVENT_BYTES + MEMORY_BASE``. Why: at any moment
#: the client holds at most one event being received (at most the limit), the chunk being parsed
#: (at most what the server wrote at once, under the limit here) and the objects decoded from one
#: event; decoded JSON costs up to ~16 times its text (the issue's measure for a put), and an
#: applied put is also encoded once for the store. The base covers what does not depend on the
#: stream: the aiohttp session and server, the SQLite connections and their worker threads, the
#: log records kept by the capture. Measured peaks stay under 1 MiB for every script the
#: generator makes; an event that nothing stops reaches ``server.ENDLESS_CAP`` (32 MiB), six
#: times this bound (``test_harness_catches_faults.py`` checks that it is caught).
MEMORY_FACTOR = 16
MEMORY_BASE = 4 * 1024 * 1024
MEMORY_BOUND = MEMORY_FACTOR * MAX_EVENT_BYTES + MEMORY_BASE


def process_never_dies(observed: Observation) -> list[str]:
    """No exception escapes the manager: the stream task still runs, close() ends cleanly, no
    traceback is logged (an escaped exception, a task that died, a handler error), and the run
    settled (the stream reached the sentinel and the store caught up or showed it is pinned)."""
    problems = []
    if not observed.stream_task_alive:
        problems.append("the stream task had ended before close()")
    if observed.close_error:
        problems.append(f"close() raised {observed.close_error}")
    if observed.settled.startswith("no progress") or observed.settled.startswith("the stream task"):
        problems.append(f"the run never settled: {observed.settled}")
    for record, text in observed.logs:
        if record.exc_info or (record.name == "asyncio" and record.levelno >= logging.ERROR):
            problems.append(f"traceback logged: {_short(text)}")
    return problems


def memory_stays_bounded(observed: Observation) -> list[str]:
    """tracemalloc's peak during the run stays under :data:`MEMORY_BOUND`."""
    if observed.peak_bytes <= MEMORY_BOUND:
        return []
    return [f"peak {observed.peak_bytes:,} bytes of Python memory, bound {MEMORY_BOUND:,}"]


def good_items_reach_the_store(observed: Observation, expected: ExpectedState) -> list[str]:
    """Every good item the contract says is live is in the store, at its version, as sent; and
    nothing else is, but the sentinel and uncertain items the manager chose to keep."""
    problems = []
    if observed.settled != "yes":
        problems.append(f"the store never caught up: {observed.settled}")
    snapshot = observed.stored.snapshot
    stored: dict[tuple[ItemKind, str], Item] = {
        **{(ItemKind.ENVIRONMENT, k): v for k, v in snapshot.environments.items()},
        **{(ItemKind.FILTER, k): v for k, v in snapshot.filters.items()},
    }
    stored.pop((ItemKind.ENVIRONMENT, SENTINEL_ID), None)
    for key, spec in expected.live.items():
        item = stored.pop(key, None)
        if item is None:
            problems.append(f"missing from the store: {_name(spec)} v{spec.version}")
        elif item.version != spec.version:
            problems.append(f"stored {_name(spec)} is v{item.version}, not v{spec.version}")
        elif (where := _difference(item.raw, spec.raw)) is not None:
            problems.append(
                f"stored {_name(spec)} v{spec.version} differs from what was sent: {where}"
            )
    for key, item in stored.items():
        uncertain = expected.maybe.get(key)
        if uncertain is None:
            problems.append(
                f"in the store but deleted, refused or never sent: {key[0]} {shown(key[1])} "
                f"v{item.version}"
            )
        elif item.version != uncertain.version:
            problems.append(
                f"stored {_name(uncertain)} is v{item.version}, not v{uncertain.version}"
            )
        elif (where := _difference(item.raw, uncertain.raw)) is not None:
            problems.append(f"stored {_name(uncertain)} differs from what was sent: {where}")
    return problems


def store_holds_only_valid_items(observed: Observation) -> list[str]:
    """Every stored record decodes (no skipped record) and every item and tombstone passes the
    project's definition of a valid item: ``Environment``/``Filter.from_json`` again, and the
    checks of ``autoconfig_cache.validation`` (ids, versions) where that module exists."""
    problems = [
        f"stored record {skipped.field!r} cannot be read back ({skipped.reason}: {skipped.message})"
        for skipped in observed.stored.report.skipped
    ]
    snapshot = observed.stored.snapshot
    for item in snapshot.items():
        try:
            if isinstance(item, Environment):
                Environment.from_json(item.raw, expected_id=item.env_id)
            else:
                Filter.from_json(item.raw, filter_id=item.filter_id)
        except MalformedItemError as exc:
            problems.append(f"stored {item.kind} {shown(item.id)} is not valid: {exc}")
            continue
        problems += _validation_problems(item.kind, item.id, item.version)
        if not _encodable(item.raw):
            problems.append(
                f"stored {item.kind} {shown(item.id)} holds a string that is not UTF-8 text"
            )
    for tombstone in snapshot.tombstones:
        problems += _validation_problems(tombstone.kind, tombstone.item_id, tombstone.version)
    return problems


def reconnects_are_spaced(observed: Observation, script: Script) -> list[str]:
    """Every reconnection waited, and no delay is below the normal schedule's floor (its base
    less the jitter: ``base * (1 - jitter)``) whatever ``retry:`` said, nor above the cap of the
    schedule in force (a huge ``retry:`` must not stall the client either)."""
    problems = []
    floor = BACKOFF.base * (1 - BACKOFF.jitter)
    cap = EXTENDED_BACKOFF.maximum if script.has_unexpected_status else BACKOFF.maximum
    for delay in observed.delays:
        if not floor <= delay <= cap:
            problems.append(f"reconnection delay {delay!r} s outside [{floor:g}, {cap:g}] s")
    for number, taken in enumerate(observed.delays_taken_before_request):
        if taken < number:
            problems.append(f"request #{number + 1} came after only {taken} delay(s)")
    if observed.unauthorized_requests:
        problems.append(f"{observed.unauthorized_requests} request(s) without the AutoConfig key")
    return problems


def no_secret_is_logged(observed: Observation, secrets: list[str]) -> list[str]:
    """No log record (message, arguments, traceback) holds a credential in clear: neither the
    AutoConfig and encryption keys nor any SDK or mobile key the generator made."""
    problems = []
    for record, text in observed.logs:
        found = [s for s in secrets if s in text] + SECRET_PATTERN.findall(text)
        if found:
            shown = text
            for value in found:
                shown = shown.replace(value, mask(value))
            problems.append(
                f"secret in clear in a {record.levelname} record of {record.name}: {_short(shown)}"
            )
    return problems


def instance_is_ready(observed: Observation, script: Script) -> list[str]:
    """Once a ``put`` has been delivered, the manager is ready (whatever it refused in it)."""
    if script.delivers_a_put and not observed.ready:
        return ["a put was delivered but the manager is not ready"]
    return []


# ---- helpers -----------------------------------------------------------------------------------


def _validation_checks() -> tuple[Callable[..., Any], Callable[..., Any]] | None:
    """``check_item_id`` and ``check_version`` of ``autoconfig_cache.validation``, once it exists."""
    try:
        module = importlib.import_module("autoconfig_cache.validation")
    except ModuleNotFoundError:
        return None
    return module.check_item_id, module.check_version


def _validation_problems(kind: ItemKind, item_id: str, version: int) -> list[str]:
    checks = _validation_checks()
    if checks is None:
        return []
    check_item_id, check_version = checks
    problems = []
    for check, args in (
        (check_item_id, (kind, item_id)),
        (check_version, (f"{kind} {shown(item_id)}", version)),
    ):
        try:
            check(*args)
        except MalformedItemError as exc:
            problems.append(f"stored {kind} {shown(item_id)} v{version}: {exc}")
    return problems


def _difference(stored: Any, sent: Any, path: str = "") -> str | None:
    """Where ``stored`` first differs from ``sent`` (``None``: equal, types included), a
    :class:`Raw` deep array in ``sent`` matching an array of the same depth (comparing 1,000-deep
    arrays with ``==`` would exceed the recursion limit)."""
    if isinstance(sent, Raw):
        depth = sent.text.count("[")
        if isinstance(stored, list) and nesting_depth(stored) == depth:
            return None
        return f"{path or '/'}: not an array {depth} deep"
    if isinstance(sent, dict) and isinstance(stored, dict):
        if stored.keys() != sent.keys():
            return f"{path or '/'}: keys {sorted(map(repr, stored.keys() ^ sent.keys()))} differ"
        for key, value in sent.items():
            found = _difference(stored[key], value, f"{path}/{key!r}")
            if found is not None:
                return found
        return None
    if isinstance(sent, list) and isinstance(stored, list) and len(sent) == len(stored):
        for index, (a, b) in enumerate(zip(stored, sent, strict=True)):
            found = _difference(a, b, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    if type(stored) is type(sent) and stored == sent:
        return None
    return f"{path or '/'}: sent {_short(repr(sent), 60)}, stored {_short(repr(stored), 60)}"


def _encodable(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _name(spec: ItemSpec) -> str:
    return f"{spec.kind} {shown(spec.item_id)}"


def _short(text: str, limit: int = 300) -> str:
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else text[:limit] + " ..."
