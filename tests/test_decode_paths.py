"""The codec's fast decode path decides every record as its general path does.

A cache load decodes the common record (this release's environment envelope, opened by the
built-in encryption) through a path that reads the envelope and the environment's head with
typed msgspec structs and skips the general checks' function calls. The general path is what
a process that raised the recursion limit takes (see
:func:`autoconfig_cache.jsoncodec.msgspec_depth_exact`): every envelope is then parsed into
dicts and every item built from its value. Each record below, in both formats, must decode to
the same item, model version, time, key and legacy flag, or fail with the same error, either
way; the shapes take every branch of the fast checks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from autoconfig_cache import AutoConfigCache, KeyRing, StorageFormat
from autoconfig_cache.errors import CodecError
from autoconfig_cache.jsoncodec import MAX_DEPTH
from autoconfig_cache.models import Tombstone
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import StoredRecord
from tests.secret_values import known_secret

from .items import env_json, filter_json
from .test_lazy_items import _variants

KEY = known_secret("decode paths key")
EXT = "x-autoconfig-cache"


def _cache(fmt: StorageFormat) -> AutoConfigCache:
    return AutoConfigCache(
        None,
        cache_key="cache-d",
        keys=KeyRing.from_strings(KEY),
        format=fmt,
        registry=PluginRegistry(load_entry_points=False),
    )


def _envelopes() -> Iterator[tuple[str, str, Any]]:
    """``(name, field, envelope)``: envelopes in every shape the fast checks tell apart."""
    item = env_json("e1", 4)
    ext = {"cachedAt": 1_700_000_000_000}

    def env(**changes: Any) -> dict[str, Any]:
        envelope = {"kind": "environment", "modelVersion": 2, "data": item, EXT: ext}
        envelope.update(changes)
        return {k: v for k, v in envelope.items() if v is not _DROP}

    yield "current", "env:e1", env()
    for name, value in {
        "cached-negative": -1,
        "cached-string": "5",
        "cached-bool": True,
        "cached-float": 5.0,
        "cached-huge": 2**80,
        "cached-null": None,
    }.items():
        yield name, "env:e1", env(**{EXT: {"cachedAt": value}})
    yield "ext-empty", "env:e1", env(**{EXT: {}})
    yield "ext-extra", "env:e1", env(**{EXT: {**ext, "other": [1, {"a": 2}]}})
    for name, value in {"null": None, "int": 5, "list": [], "string": "x"}.items():
        yield f"ext-{name}", "env:e1", env(**{EXT: value})
    yield "ext-absent", "env:e1", env(**{EXT: _DROP})
    tomb = {"deleted": True, "version": 3, "cachedAt": 5}
    yield "tombstone", "env:e1", env(data="deleted", **{EXT: tomb})
    yield "tombstone-str-version", "env:e1", env(data="deleted", **{EXT: {**tomb, "version": "3"}})
    yield "deleted-false", "env:e1", env(**{EXT: {**ext, "deleted": False}})
    yield "deleted-one", "env:e1", env(**{EXT: {**ext, "deleted": 1}})
    yield "legacy-tombstone", "env:e1", env(data=tomb, **{EXT: _DROP})
    yield "legacy-tombstone-ext", "env:e1", env(data=tomb)
    for name, value in {"1": 1, "3": 3, "0": 0, "bool": True, "float": 2.0, "str": "2"}.items():
        yield f"model-{name}", "env:e1", env(modelVersion=value)
        yield f"model-{name}-no-ext", "env:e1", env(modelVersion=value, **{EXT: _DROP})
    yield "kind-filter", "env:e1", env(kind="filter")
    yield "kind-int", "env:e1", env(kind=5)
    yield "kind-absent", "env:e1", env(kind=_DROP)
    yield "data-absent", "env:e1", env(data=_DROP)
    yield "data-null", "env:e1", env(data=None)
    yield "data-list", "env:e1", env(data=[item])
    yield "id-mismatch", "env:other", env()
    yield "field-bad", "environment:e1", env()
    yield "field-empty-id", "env:", env()
    yield "filter", "filter:f1", env(kind="filter", data=filter_json(2))
    yield "filter-bad", "filter:f1", env(kind="filter", data={"projKey": 1})
    for env_id, value in _variants().items():
        if isinstance(value, dict) and len(env_id) <= 64 and env_id.isprintable():
            yield f"item-{env_id}", f"env:{env_id}", env(data=value)
        else:
            yield f"item-{env_id[:10]}", "env:e1", env(data=value)


class _Drop:
    pass


_DROP: Any = _Drop()


def _outcome(cache: AutoConfigCache, record: StoredRecord) -> tuple[Any, ...]:
    try:
        decoded = cache.codec.decode(record)
    except CodecError as exc:
        return type(exc).__name__, str(exc)
    item = decoded.item
    shown = (
        (item.kind, item.id, item.version)
        if isinstance(item, Tombstone)
        else (type(item).__name__, item.id, item.version, item.raw)
    )
    return (
        shown,
        decoded.model_version,
        decoded.cached_at_ms,
        decoded.legacy,
        decoded.derivation,
        decoded.key is cache.codec.keys.current,
    )


@pytest.mark.parametrize("fmt", [StorageFormat.RELAY, StorageFormat.V2])
def test_the_fast_decode_path_decides_every_record_as_the_general_path(
    fmt: StorageFormat,
) -> None:
    cache = _cache(fmt)
    records = []
    for name, field, envelope in _envelopes():
        version = 8
        plaintext = json.dumps(envelope).encode()
        blob = cache.codec._builtin.cache_encrypt(plaintext, cache.codec.context(field, version))
        records.append((name, StoredRecord(field, version, blob)))
    fast = {name: _outcome(cache, record) for name, record in records}
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(MAX_DEPTH + 1000)  # the general path, for every record
    try:
        general = {name: _outcome(cache, record) for name, record in records}
    finally:
        sys.setrecursionlimit(limit)
    assert fast == general
    # The comparison is of records that load and of records that fail, in each kind of way.
    accepted = {name for name, outcome in fast.items() if not isinstance(outcome[0], str)}
    assert {"current", "ext-absent", "tombstone", "filter"} <= accepted
    # 0.1's tombstone shape without the extension: read as a tombstone only where 0.1 or a
    # Relay Proxy can have written it (v2 format byte 3 is this release's).
    assert ("legacy-tombstone" in accepted) is (fmt is StorageFormat.RELAY)
    assert {"model-1-no-ext", "item-plain", "item-expiring-v8", "item-sdkkeys"} <= accepted
    failures = {outcome[0] for outcome in fast.values() if isinstance(outcome[0], str)}
    assert {
        "MalformedEnvelopeError",
        "UnknownKindError",
        "NewerFormatError",
        "MalformedItemError",
        "MalformedCredentialsError",
    } <= failures
    assert fast["current"][2] == 1_700_000_000_000 and fast["ext-extra"][2] == 1_700_000_000_000
