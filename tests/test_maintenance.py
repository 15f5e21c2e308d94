"""The library side of the operator tools: key rotation, masked export, import validation."""

from __future__ import annotations

import json
import uuid

import pytest

from autoconfig_cache import AutoConfigCache, Environment, Snapshot
from autoconfig_cache.demo.data import environment_json, sample_put_data
from autoconfig_cache.errors import (
    MalformedPutDataError,
    MaskedCredentialsError,
    NotJSONError,
    NotPutDataError,
    PutDataError,
    UndecryptableRecordsError,
)
from autoconfig_cache.maintenance import parse_put_data

OLD, NEW, OTHER = "o" * 32, "n" * 32, "x" * 32


def _open(url: str, key: str, *previous: str) -> AutoConfigCache:
    return AutoConfigCache.open(
        url, cache_key="maint", encryption_key=key, previous_encryption_keys=previous
    )


@pytest.fixture
def url() -> str:
    return f"memory://{uuid.uuid4().hex}"


async def _fill(url: str, key: str) -> Snapshot:
    snapshot, problems = Snapshot.from_put_data(sample_put_data(environments=3, filters=1))
    assert not problems
    async with _open(url, key) as cache:
        await cache.set_all(snapshot)
    return snapshot


async def test_rotate_keys_reencrypts_under_the_current_key(url: str) -> None:
    snapshot = await _fill(url, OLD)
    async with _open(url, NEW, OLD) as cache:
        result = await cache.rotate_keys()
        assert result.reencrypted == len(snapshot) == 4
        assert result.were_on_previous_key == 4 and result.dropped == ()
        assert result.key_id == cache.codec.keys.current.key_id_hex
    async with _open(url, NEW) as cache:  # the old key is no longer needed
        loaded = await cache.get_all()
    assert loaded.snapshot.environments == snapshot.environments
    assert not loaded.report.skipped


async def test_rotate_keys_refuses_undecryptable_records_and_changes_nothing(url: str) -> None:
    await _fill(url, OLD)
    async with _open(url, OTHER) as cache:
        with pytest.raises(UndecryptableRecordsError) as caught:
            await cache.rotate_keys()
    assert len(caught.value.fields) == 4 and "nothing was changed" in str(caught.value)
    async with _open(url, OLD) as cache:  # still readable with the key that wrote it
        assert len((await cache.get_all()).snapshot) == 4


async def test_rotate_keys_drops_undecryptable_records_when_asked(url: str) -> None:
    await _fill(url, OLD)
    async with _open(url, OTHER) as cache:
        result = await cache.rotate_keys(drop_undecryptable=True)
        assert len(result.dropped) == 4 and result.reencrypted == 0
        assert await cache.get_records() == []


def test_masked_put_data_masks_every_credential_and_keeps_the_snapshot() -> None:
    env = Environment.from_json(environment_json("e1"))
    snapshot = Snapshot(environments={"e1": env})
    masked = snapshot.to_put_data(masked=True)
    text = json.dumps(masked)
    assert env.sdk_key not in text and env.mob_key not in text
    assert masked["environments"]["e1"]["sdkKey"]["value"].endswith(env.sdk_key[-4:])
    assert snapshot.to_put_data()["environments"]["e1"]["sdkKey"]["value"] == env.sdk_key


def test_parse_put_data_accepts_an_export() -> None:
    data = sample_put_data(environments=2, filters=1)
    assert len(parse_put_data(json.dumps(data))) == 3


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("{not json", NotJSONError),
        ('{"other": {}}', NotPutDataError),
        ('{"environments": "x"}', NotPutDataError),
        ('{"environments": {"e1": {"envId": "e1"}}}', MalformedPutDataError),
    ],
)
def test_parse_put_data_raises_a_specific_error(text: str, error: type[PutDataError]) -> None:
    with pytest.raises(error):
        parse_put_data(text)


def test_parse_put_data_refuses_a_masked_export() -> None:
    env = Environment.from_json(environment_json("e1"))
    masked = Snapshot(environments={"e1": env}).to_put_data(masked=True)
    with pytest.raises(MaskedCredentialsError) as caught:
        parse_put_data(masked)
    assert caught.value.env_ids == ["e1"]
