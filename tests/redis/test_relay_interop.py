"""Sharing a cache with a Relay Proxy v8: what this project writes in the ``relay`` format is
read by an independent decoder (plain ``cryptography`` + ``hashlib`` + redis-py, written here
from the format's description), and what that independent encoder writes is read back."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from autoconfig_cache.cache import AutoConfigCache
from autoconfig_cache.models import Snapshot
from autoconfig_cache.records import StoredRecord
from tests.items import env_json, filter_json
from tests.redis.conftest import StoreMaker
from tests.redis.servers import RedisServer

ENCRYPTION_KEY = "  relay-shared-encryption-key  "  # surrounding spaces: the Relay Proxy trims


def relay_key(key: str) -> bytes:
    return hashlib.sha256(key.strip().encode()).digest()


def relay_encrypt(key: str, envelope: dict[str, Any]) -> bytes:
    nonce = os.urandom(12)
    return nonce + AESGCM(relay_key(key)).encrypt(nonce, json.dumps(envelope).encode(), None)


def relay_decrypt(key: str, blob: bytes) -> dict[str, Any]:
    plaintext = AESGCM(relay_key(key)).decrypt(blob[:12], blob[12:], None)
    envelope: dict[str, Any] = json.loads(plaintext)
    return envelope


def envelope(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "modelVersion": 1, "data": data}


async def test_store_holds_relay_blobs_byte_for_byte_for_an_independent_decoder(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    env, flt = env_json("env-1", version=3), filter_json(version=2)
    records = [
        StoredRecord("env:env-1", 3, relay_encrypt(ENCRYPTION_KEY, envelope("environment", env))),
        StoredRecord("filter:f-1", 2, relay_encrypt(ENCRYPTION_KEY, envelope("filter", flt))),
    ]
    store = make_store(redis_server.url)
    await store.cache_set_all(records, False)
    await store.cache_close()
    with redis_server.client() as client:
        raw = client.hgetall(cache_key)
    assert {field.decode(): relay_decrypt(ENCRYPTION_KEY, blob) for field, blob in raw.items()} == {
        "env:env-1": envelope("environment", env),
        "filter:f-1": envelope("filter", flt),
    }


async def test_store_reads_blobs_written_by_an_independent_relay_encoder(
    redis_server: RedisServer, make_store: StoreMaker, cache_key: str
) -> None:
    blobs = {
        f"env:env-{i}": relay_encrypt(ENCRYPTION_KEY, envelope("environment", env_json(f"env-{i}")))
        for i in range(5)
    }
    with redis_server.client() as client:
        client.hset(cache_key, mapping=blobs)  # as the Relay Proxy's HSET
    store = make_store(redis_server.url)
    records = await store.cache_get_all()
    await store.cache_close()
    assert {r.field: r.blob for r in records} == blobs
    assert all(r.version == 0 for r in records)  # the Relay Proxy stores no versions


async def test_cache_in_relay_format_is_readable_by_the_independent_decoder(
    redis_server: RedisServer, cache_key: str
) -> None:
    environments = {f"env-{i}": env_json(f"env-{i}", version=i + 1) for i in range(3)}
    filters = {"flt-1": filter_json(version=4)}
    snapshot, problems = Snapshot.from_put_data(
        {"environments": environments, "filters": filters}
    )
    assert problems == []
    async with AutoConfigCache.open(
        redis_server.url, cache_key=cache_key, encryption_key=ENCRYPTION_KEY, format="relay"
    ) as cache:
        await cache.set_all(snapshot)
    with redis_server.client() as client:
        raw = client.hgetall(cache_key)
    decoded = {field.decode(): relay_decrypt(ENCRYPTION_KEY, blob) for field, blob in raw.items()}
    expected = {f"env:{i}": envelope("environment", d) for i, d in environments.items()}
    expected.update({f"filter:{i}": envelope("filter", d) for i, d in filters.items()})
    assert decoded == expected


async def test_cache_in_relay_format_reads_what_the_independent_encoder_wrote(
    redis_server: RedisServer, cache_key: str
) -> None:
    env, flt = env_json("env-9", version=7), filter_json(version=5)
    with redis_server.client() as client:
        client.hset(
            cache_key,
            mapping={
                "env:env-9": relay_encrypt(ENCRYPTION_KEY, envelope("environment", env)),
                "filter:flt-9": relay_encrypt(ENCRYPTION_KEY, envelope("filter", flt)),
            },
        )
    async with AutoConfigCache.open(
        redis_server.url, cache_key=cache_key, encryption_key=ENCRYPTION_KEY, format="relay"
    ) as cache:
        result = await cache.get_all()
    assert result.report.skipped == ()
    assert {i: e.to_json() for i, e in result.snapshot.environments.items()} == {"env-9": env}
    assert {i: f.to_json() for i, f in result.snapshot.filters.items()} == {"flt-9": flt}


async def test_relay_written_item_is_replaced_by_a_newer_one_from_the_cache(
    redis_server: RedisServer, cache_key: str
) -> None:
    old = env_json("env-1", version=1)
    with redis_server.client() as client:
        client.hset(cache_key, "env:env-1", relay_encrypt(ENCRYPTION_KEY, envelope("environment", old)))
    new = env_json("env-1", version=2)
    snapshot, _ = Snapshot.from_put_data({"environments": {"env-1": new}, "filters": {}})
    async with AutoConfigCache.open(
        redis_server.url, cache_key=cache_key, encryption_key=ENCRYPTION_KEY, format="relay"
    ) as cache:
        await cache.set_all(snapshot)
    with redis_server.client() as client:
        blob = client.hget(cache_key, "env:env-1")
    assert blob is not None
    assert relay_decrypt(ENCRYPTION_KEY, blob) == envelope("environment", new)
