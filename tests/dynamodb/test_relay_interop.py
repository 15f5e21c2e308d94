"""A Relay Proxy v8 and this project share one DynamoDB table in ``relay`` format.

The Relay Proxy side is played by an independent encoder/decoder written here from the format's
description alone (plain ``cryptography`` + ``hashlib``, items read and written with boto3):
key = SHA-256 of the trimmed encryption key string; blob = 12-byte nonce || AES-256-GCM
ciphertext || 16-byte tag, no associated data; plaintext = the JSON envelope
``{"kind", "modelVersion": 1, "data"}``; item = ``namespace`` (S), ``key`` (S), ``item`` (B).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from autoconfig_cache import AutoConfigCache, Environment, Filter, Snapshot
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import store_version
from tests.items import env_json, filter_json

from .conftest import REGION, TABLE, MotoServer

ENCRYPTION_KEY = "  relay interop encryption key  "  # surrounding spaces: the key is trimmed


def relay_key(encryption_key: str) -> bytes:
    return hashlib.sha256(encryption_key.strip().encode()).digest()


def relay_encrypt(encryption_key: str, kind: str, data: dict[str, Any]) -> bytes:
    envelope = json.dumps({"kind": kind, "modelVersion": 1, "data": data}).encode()
    nonce = os.urandom(12)
    return nonce + AESGCM(relay_key(encryption_key)).encrypt(nonce, envelope, None)


def relay_decrypt(encryption_key: str, blob: bytes) -> dict[str, Any]:
    plaintext = AESGCM(relay_key(encryption_key)).decrypt(blob[:12], blob[12:], None)
    envelope: dict[str, Any] = json.loads(plaintext)
    return envelope


def relay_items(moto: MotoServer, namespace: str) -> dict[str, dict[str, Any]]:
    """Every item of ``namespace`` read with boto3, as the Relay Proxy would (Query)."""
    client = moto.client()
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {
        "TableName": TABLE,
        "KeyConditionExpression": "#ns = :ns",
        "ExpressionAttributeNames": {"#ns": "namespace"},
        "ExpressionAttributeValues": {":ns": {"S": namespace}},
        "ConsistentRead": True,
    }
    while True:
        page = client.query(**kwargs)
        for item in page["Items"]:
            items[item["key"]["S"]] = item
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
async def relay_cache(moto: MotoServer, cache_key: str) -> AsyncIterator[AutoConfigCache]:
    cache = AutoConfigCache.open(
        f"dynamodb://{TABLE}?region={REGION}&endpoint={moto.endpoint}",
        cache_key=cache_key,
        encryption_key=ENCRYPTION_KEY,
        format="relay",
        registry=PluginRegistry(),
    )
    yield cache
    await cache.close()


async def test_items_written_in_relay_format_decode_with_an_independent_decoder(
    relay_cache: AutoConfigCache, moto: MotoServer, cache_key: str
) -> None:
    env = env_json("env-1", version=3, futureField={"kept": True})
    flt = filter_json(version=2)
    await relay_cache.set_all(
        Snapshot(
            environments={"env-1": Environment.from_json(env)},
            filters={"flt-1": Filter.from_json(flt, filter_id="flt-1")},
        )
    )
    items = relay_items(moto, cache_key)
    assert set(items) == {"env:env-1", "filter:flt-1"}
    assert relay_decrypt(ENCRYPTION_KEY, items["env:env-1"]["item"]["B"]) == {
        "kind": "environment",
        "modelVersion": 1,
        "data": env,
    }
    assert relay_decrypt(ENCRYPTION_KEY, items["filter:flt-1"]["item"]["B"]) == {
        "kind": "filter",
        "modelVersion": 1,
        "data": flt,
    }
    # The one attribute the Relay Proxy does not know about: the version used for guards,
    # the item's version as records.store_version encodes it.
    assert items["env:env-1"]["version"] == {"N": str(store_version(3))}


async def test_items_written_by_the_relay_encoder_are_read_back(
    relay_cache: AutoConfigCache, moto: MotoServer, cache_key: str
) -> None:
    env = env_json("env-7", version=9)
    flt = filter_json(version=4)
    client = moto.client()
    for field, kind, data in (
        ("env:env-7", "environment", env),
        ("filter:flt-7", "filter", flt),
    ):
        client.put_item(
            TableName=TABLE,
            Item={
                "namespace": {"S": cache_key},
                "key": {"S": field},
                "item": {"B": relay_encrypt(ENCRYPTION_KEY, kind, data)},
            },
        )
    result = await relay_cache.get_all()
    assert result.report.skipped == ()
    assert result.snapshot.environments["env-7"].to_json() == env
    assert result.snapshot.filters["flt-7"].to_json() == flt


async def test_relay_written_item_is_replaced_by_a_newer_version_and_stays_readable(
    relay_cache: AutoConfigCache, moto: MotoServer, cache_key: str
) -> None:
    moto.client().put_item(
        TableName=TABLE,
        Item={
            "namespace": {"S": cache_key},
            "key": {"S": "env:env-2"},
            "item": {"B": relay_encrypt(ENCRYPTION_KEY, "environment", env_json("env-2", 1))},
        },
    )
    newer = env_json("env-2", version=2)
    assert await relay_cache.upsert(Environment.from_json(newer)) is True
    blob = relay_items(moto, cache_key)["env:env-2"]["item"]["B"]
    assert relay_decrypt(ENCRYPTION_KEY, blob)["data"] == newer
