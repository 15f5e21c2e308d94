"""The codec: both storage formats, AEAD binding, rotation, migration, bad input."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from autoconfig_cache import AutoConfigCache, KeyRing, SkipReason, StorageFormat, StoredRecord
from autoconfig_cache.codec import CURRENT_MODEL_VERSION, KeyDerivation
from autoconfig_cache.errors import (
    DecryptionError,
    InvalidKeyError,
    MalformedEnvelopeError,
    MalformedItemError,
    NewerFormatError,
    UnknownKindError,
)
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.models import Environment, Filter, Tombstone
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.records import ItemKind, store_version
from tests.secret_values import known_secret

from .items import env_json, filter_json

KEY = known_secret("correct horse battery staple")


def make_cache(
    fmt: StorageFormat = StorageFormat.V2,
    key: str = KEY,
    previous: tuple[str, ...] = (),
    cache_key: str = "cache-a",
    registry: PluginRegistry | None = None,
) -> AutoConfigCache:
    return AutoConfigCache(
        None,
        cache_key=cache_key,
        keys=KeyRing.from_strings(key, previous),
        format=fmt,
        registry=registry or PluginRegistry(load_entry_points=False),
    )


def _relay_aes_key(key_string: str, derivation: str) -> bytes:
    """The Relay Proxy's AES key, from ld-relay internal/autoconfigcache/crypto.go's description:
    HKDF-SHA256 (no salt, info "ld-relay autoconfig cache") in later v8 and v9, SHA-256 before."""
    material = key_string.strip().encode()
    if derivation == "sha256":
        return hashlib.sha256(material).digest()
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"ld-relay autoconfig cache"
    ).derive(material)


def relay_encrypt_independently(
    key_string: str, envelope: dict[str, object], derivation: str = "hkdf"
) -> bytes:
    """The Relay Proxy format, written from its description with plain cryptography."""
    nonce = os.urandom(12)
    aes = AESGCM(_relay_aes_key(key_string, derivation))
    return nonce + aes.encrypt(nonce, json.dumps(envelope).encode(), None)


def relay_decrypt_independently(
    key_string: str, blob: bytes, derivation: str = "hkdf"
) -> dict[str, object]:
    aes = AESGCM(_relay_aes_key(key_string, derivation))
    result: dict[str, object] = json.loads(aes.decrypt(blob[:12], blob[12:], None))
    return result


# -- relay format: interoperability ------------------------------------------------------------


@pytest.mark.parametrize("derivation", ["hkdf", "sha256"])
@pytest.mark.parametrize("model_version", [1, 2])
def test_relay_blob_from_independent_encoder_decodes(derivation: str, model_version: int) -> None:
    data = env_json("env-1", version=7)
    blob = relay_encrypt_independently(
        KEY, {"kind": "environment", "modelVersion": model_version, "data": data}, derivation
    )
    decoded = make_cache(StorageFormat.RELAY).codec.decode(StoredRecord("env:env-1", 0, blob))
    assert isinstance(decoded.item, Environment)
    assert decoded.item.to_json() == data
    assert decoded.model_version == model_version
    assert decoded.derivation == derivation
    assert decoded.cached_at is None


def test_relay_blob_from_codec_decodes_independently() -> None:
    data = env_json("env-2", version=3)
    record = make_cache(StorageFormat.RELAY).codec.encode(
        Environment.from_json(data), cached_at_ms=1_700_000_000_000
    )
    envelope = relay_decrypt_independently(KEY, record.blob, "hkdf")
    # What a Relay Proxy decodes (kind, modelVersion 2, data = the item itself), plus this
    # project's extension field, which Go's JSON decoding skips.
    assert envelope == {
        "kind": "environment",
        "modelVersion": 2,
        "data": data,
        "x-autoconfig-cache": {"cachedAt": 1_700_000_000_000},
    }
    assert record.field == "env:env-2"
    assert record.version == store_version(3)
    assert record.deleted is False


def test_relay_record_from_codec_keeps_its_cache_time() -> None:
    cache = make_cache(StorageFormat.RELAY)
    record = cache.codec.encode(Environment.from_json(env_json("e")), cached_at_ms=1_234_567)
    assert cache.codec.decode(record).cached_at_ms == 1_234_567


def test_relay_writes_sha256_when_configured() -> None:
    cache = AutoConfigCache(
        None,
        cache_key="cache-a",
        keys=KeyRing.from_strings(KEY),
        format=StorageFormat.RELAY,
        registry=PluginRegistry(load_entry_points=False),
        relay_key_derivation=KeyDerivation.SHA256,
    )
    record = cache.codec.encode(Environment.from_json(env_json("e")))
    assert relay_decrypt_independently(KEY, record.blob, "sha256")["modelVersion"] == 2
    with pytest.raises(InvalidTag):
        relay_decrypt_independently(KEY, record.blob, "hkdf")
    assert cache.codec.decode(record).derivation is KeyDerivation.SHA256


def test_relay_filter_round_trip_through_independent_decoder() -> None:
    data = filter_json(version=4)
    record = make_cache(StorageFormat.RELAY).codec.encode(Filter.from_json(data, filter_id="f-9"))
    assert record.field == "filter:f-9"
    assert relay_decrypt_independently(KEY, record.blob)["data"] == data


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_tombstone_is_marked_in_the_envelope_not_in_data(fmt: StorageFormat) -> None:
    cache = make_cache(fmt)
    record = cache.codec.encode(Tombstone(ItemKind.FILTER, "f-1", 9), cached_at_ms=5)
    assert record.deleted is True
    assert record.version == store_version(9, deleted=True)
    decoded = cache.codec.decode(record)
    assert decoded.item == Tombstone(ItemKind.FILTER, "f-1", 9)
    assert decoded.cached_at_ms == 5
    if fmt is StorageFormat.RELAY:
        envelope = relay_decrypt_independently(KEY, record.blob)
        assert envelope["modelVersion"] == 2
        # A Relay Proxy decodes `data` into a Go struct: a JSON string fails to decode (the
        # record is skipped), where an object (0.1's {"deleted": true, ...}) became an item.
        assert envelope["data"] == "deleted"
        assert envelope["x-autoconfig-cache"] == {"deleted": True, "version": 9, "cachedAt": 5}


def test_encryption_key_is_trimmed_like_the_relay_proxy() -> None:
    record = make_cache(StorageFormat.RELAY, key=f"  {KEY}\n").codec.encode(
        Environment.from_json(env_json("e"))
    )
    assert relay_decrypt_independently(KEY, record.blob)["kind"] == "environment"
    v2_record = make_cache(key=f"\t{KEY} ").codec.encode(Environment.from_json(env_json("e")))
    assert make_cache(key=KEY).codec.decode(v2_record).item.id == "e"


# -- v2 format: binding ------------------------------------------------------------------------


def test_v2_round_trip_keeps_unknown_fields() -> None:
    data = env_json("env-3", version=2, someFutureField={"nested": [1, 2, 3]})
    cache = make_cache()
    decoded = cache.codec.decode(cache.codec.encode(Environment.from_json(data)))
    assert decoded.item.to_json() == data
    assert decoded.model_version == CURRENT_MODEL_VERSION
    assert decoded.cached_at is not None


def test_v2_blob_moved_to_another_field_fails() -> None:
    cache = make_cache()
    record = cache.codec.encode(Environment.from_json(env_json("a", version=1)))
    with pytest.raises(DecryptionError):
        cache.codec.decode(StoredRecord("env:b", record.version, record.blob))


def test_v2_blob_moved_to_another_cache_key_fails() -> None:
    record = make_cache(cache_key="one").codec.encode(Environment.from_json(env_json("a")))
    with pytest.raises(DecryptionError):
        make_cache(cache_key="two").codec.decode(record)


def test_v2_blob_relabelled_with_another_version_fails() -> None:
    cache = make_cache()
    record = cache.codec.encode(Environment.from_json(env_json("a", version=5)))
    with pytest.raises(DecryptionError, match="version"):
        cache.codec.decode(StoredRecord(record.field, 6, record.blob))
    # Rewriting the version inside the cleartext header breaks authentication too.
    forged = bytearray(record.blob)
    struct.pack_into(">q", forged, 12, 6)
    with pytest.raises(DecryptionError):
        cache.codec.decode(StoredRecord(record.field, 6, bytes(forged)))


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_flipped_bit_is_rejected(fmt: StorageFormat) -> None:
    cache = make_cache(fmt)
    record = cache.codec.encode(Environment.from_json(env_json("a")))
    for position in (0, len(record.blob) // 2, len(record.blob) - 1):
        tampered = bytearray(record.blob)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionError):
            cache.codec.decode(StoredRecord(record.field, 0, bytes(tampered)))


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_truncated_blob_is_rejected(fmt: StorageFormat) -> None:
    cache = make_cache(fmt)
    record = cache.codec.encode(Environment.from_json(env_json("a")))
    for length in (0, 5, 27, len(record.blob) - 1):
        with pytest.raises(DecryptionError):
            cache.codec.decode(StoredRecord(record.field, 0, record.blob[:length]))


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_wrong_key_is_rejected(fmt: StorageFormat) -> None:
    record = make_cache(fmt).codec.encode(Environment.from_json(env_json("a")))
    with pytest.raises(DecryptionError):
        make_cache(fmt, key="another key").codec.decode(record)


def test_v2_unknown_key_id_names_the_setting_to_fix() -> None:
    record = make_cache(key="old key").codec.encode(Environment.from_json(env_json("a")))
    with pytest.raises(DecryptionError, match="AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS"):
        make_cache(key="new key").codec.decode(record)


def test_relay_blob_in_a_v2_cache_says_to_switch_format() -> None:
    record = make_cache(StorageFormat.RELAY).codec.encode(Environment.from_json(env_json("a")))
    with pytest.raises(DecryptionError, match="AUTO_CONFIG_CACHE_FORMAT=relay"):
        make_cache(StorageFormat.V2).codec.decode(record)


# -- rotation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_previous_key_still_decrypts_and_is_reported_stale(fmt: StorageFormat) -> None:
    old_record = make_cache(fmt, key="old key").codec.encode(Environment.from_json(env_json("a")))
    rotated = make_cache(fmt, key="new key", previous=("old key",))
    new_record = rotated.codec.encode(Environment.from_json(env_json("b")))
    result = rotated.decode_records([old_record, new_record])
    assert sorted(result.snapshot.environments) == ["a", "b"]
    assert result.report.stale_key_fields == ("env:a",)
    # What the rotated cache writes is readable with the new key alone.
    assert make_cache(fmt, key="new key").codec.decode(new_record).item.id == "b"


# -- keys ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "   ", "\t\n"])
def test_empty_encryption_key_is_refused(bad: str) -> None:
    with pytest.raises(InvalidKeyError, match="empty"):
        KeyRing.from_strings(bad)


@pytest.mark.parametrize("bad", ["", "  "])
def test_empty_cache_key_is_refused(bad: str) -> None:
    with pytest.raises(InvalidKeyError, match="AUTO_CONFIG_CACHE_KEY"):
        make_cache(cache_key=bad)


def test_cache_key_is_trimmed() -> None:
    record = make_cache(cache_key=" prod ").codec.encode(Environment.from_json(env_json("a")))
    assert make_cache(cache_key="prod").codec.decode(record).item.id == "a"


# -- envelopes and migration ------------------------------------------------------------------


def _encrypt_plaintext(
    cache: AutoConfigCache, field: str, version: int, plaintext: bytes
) -> StoredRecord:
    blob = cache.hook.cache_encrypt(
        plaintext=plaintext, context=cache.codec.context(field, version)
    )
    return StoredRecord(field, version, blob)


def test_garbage_json_in_envelope_is_malformed() -> None:
    cache = make_cache()
    record = _encrypt_plaintext(cache, "env:a", 1, b"{not json")
    with pytest.raises(MalformedEnvelopeError):
        cache.codec.decode(record)


def test_unknown_kind_is_rejected() -> None:
    cache = make_cache()
    plaintext = json.dumps({"kind": "segment", "modelVersion": 2, "data": {}}).encode()
    with pytest.raises(UnknownKindError):
        cache.codec.decode(_encrypt_plaintext(cache, "env:a", 1, plaintext))


def test_kind_that_disagrees_with_the_field_is_rejected() -> None:
    cache = make_cache()
    plaintext = json.dumps({"kind": "filter", "modelVersion": 2, "data": filter_json()}).encode()
    with pytest.raises(UnknownKindError):
        cache.codec.decode(_encrypt_plaintext(cache, "env:a", 1, plaintext))


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_newer_model_version_is_refused_as_newer(fmt: StorageFormat) -> None:
    cache = make_cache(fmt)
    plaintext = json.dumps(
        {"kind": "environment", "modelVersion": CURRENT_MODEL_VERSION + 1, "data": env_json("a")}
    ).encode()
    with pytest.raises(NewerFormatError, match="upgrade"):
        cache.codec.decode(_encrypt_plaintext(cache, "env:a", 2, plaintext))


@pytest.mark.parametrize("model_version", [0, -1])
def test_model_version_below_1_is_malformed(model_version: int) -> None:
    # 0 is the internal number of 0.1's v2 data; stored, it is as invalid as for a Relay Proxy.
    cache = make_cache()
    plaintext = json.dumps(
        {"kind": "environment", "modelVersion": model_version, "data": env_json("a")}
    ).encode()
    with pytest.raises(MalformedEnvelopeError):
        cache.codec.decode(_encrypt_plaintext(cache, "env:a", 2, plaintext))


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_model_1_item_is_the_item_json(fmt: StorageFormat) -> None:
    cache = make_cache(fmt)
    data = env_json("a", version=1)
    plaintext = json.dumps({"kind": "environment", "modelVersion": 1, "data": data}).encode()
    decoded = cache.codec.decode(_encrypt_plaintext(cache, "env:a", 2, plaintext))
    assert decoded.item.to_json() == data
    assert decoded.model_version == 1
    assert decoded.cached_at is None


@pytest.mark.parametrize("fmt", list(StorageFormat))
def test_model_2_means_the_item_json_in_both_formats(fmt: StorageFormat) -> None:
    cache = make_cache(fmt)
    data = env_json("a", version=1)
    plaintext = json.dumps({"kind": "environment", "modelVersion": 2, "data": data}).encode()
    decoded = cache.codec.decode(_encrypt_plaintext(cache, "env:a", 2, plaintext))
    assert decoded.item.to_json() == data
    assert decoded.legacy is False


def test_v2_writes_header_format_byte_3() -> None:
    record = make_cache().codec.encode(Environment.from_json(env_json("a")))
    assert record.blob[:4] == b"ACv\x03"


def test_v2_blob_of_a_newer_header_format_is_refused_as_newer() -> None:
    cache = make_cache()
    record = cache.codec.encode(Environment.from_json(env_json("a")))
    newer = b"ACv\x04" + record.blob[4:]
    with pytest.raises(NewerFormatError, match="upgrade"):
        cache.codec.decode(StoredRecord(record.field, record.version, newer))


def test_migration_plugin_is_consulted_before_the_builtin_step() -> None:
    calls: list[tuple[str, int]] = []

    class RenamingMigration:
        @hookimpl(tryfirst=True)
        def cache_migrate_item(
            self, kind: str, model_version: int, data: dict[str, object]
        ) -> object:
            calls.append((kind, model_version))
            return {**data, "envName": "migrated"}

    registry = PluginRegistry(load_entry_points=False)
    registry.register(RenamingMigration(), name="renaming-migration")
    cache = make_cache(registry=registry)
    plaintext = json.dumps(
        {"kind": "environment", "modelVersion": 1, "data": env_json("a")}
    ).encode()
    decoded = cache.codec.decode(_encrypt_plaintext(cache, "env:a", 1, plaintext))
    assert calls == [("environment", 1)]
    assert isinstance(decoded.item, Environment)
    assert decoded.item.env_name == "migrated"


def test_environment_whose_id_differs_from_its_field_is_malformed() -> None:
    cache = make_cache()
    plaintext = json.dumps(
        {"kind": "environment", "modelVersion": 2, "data": env_json("b")}
    ).encode()
    with pytest.raises(MalformedItemError, match="does not match"):
        cache.codec.decode(_encrypt_plaintext(cache, "env:a", 1, plaintext))


# -- a whole load with bad records ----------------------------------------------------------------


def test_load_skips_each_bad_record_with_its_reason_and_keeps_the_rest() -> None:
    cache = make_cache()
    good = [cache.codec.encode(Environment.from_json(env_json(f"good-{i}"))) for i in range(5)]
    good.append(cache.codec.encode(Filter.from_json(filter_json(), filter_id="f1")))
    tampered = bytearray(good[0].blob)
    tampered[-1] ^= 0xFF
    bad = [
        StoredRecord("env:tampered", 0, bytes(tampered)),
        StoredRecord("env:truncated", 0, good[1].blob[:10]),
        _encrypt_plaintext(cache, "env:garbage", 0, b"\xff\xfe"),
        _encrypt_plaintext(
            cache, "env:future", 0, b'{"kind":"environment","modelVersion":99,"data":{}}'
        ),
        _encrypt_plaintext(cache, "env:alien", 0, b'{"kind":"flag","modelVersion":2,"data":{}}'),
        StoredRecord("other:thing", 0, good[2].blob),
    ]
    result = cache.decode_records(good + bad)
    assert sorted(result.snapshot.environments) == [f"good-{i}" for i in range(5)]
    assert list(result.snapshot.filters) == ["f1"]
    reasons = {item.field: item.reason for item in result.report.skipped}
    assert reasons == {
        "env:tampered": SkipReason.UNDECRYPTABLE,
        "env:truncated": SkipReason.UNDECRYPTABLE,
        "env:garbage": SkipReason.MALFORMED,
        "env:future": SkipReason.UNKNOWN_MODEL_VERSION,
        "env:alien": SkipReason.UNKNOWN_KIND,
        "other:thing": SkipReason.FOREIGN_FIELD,
    }
    assert result.report.environments == 5
    assert result.report.filters == 1


def test_skip_messages_never_contain_secrets() -> None:
    cache = make_cache()
    data = env_json("a")
    plaintext = json.dumps(
        {"kind": "environment", "modelVersion": 2, "data": {**data, "version": "x"}}
    ).encode()
    result = cache.decode_records([_encrypt_plaintext(cache, "env:a", 0, plaintext)])
    text = json.dumps([item.to_json() for item in result.report.skipped])
    assert result.report.skipped
    assert data["sdkKey"]["value"] not in text
    assert data["mobKey"] not in text
    assert KEY not in text


# -- third-party encryption plugin ------------------------------------------------------------


class MarkerEncryption:
    """A stand-in for a KMS envelope plugin: its own key, its blobs tagged with a marker."""

    MARKER = b"KMS1"

    def __init__(self) -> None:
        self.aes = AESGCM(AESGCM.generate_key(bit_length=256))
        self.encrypted = 0

    @hookimpl
    def cache_encrypt(self, plaintext: bytes, context: object) -> bytes:
        self.encrypted += 1
        nonce = os.urandom(12)
        return self.MARKER + nonce + self.aes.encrypt(nonce, plaintext, None)

    @hookimpl
    def cache_decrypt(self, blob: bytes, context: object) -> bytes | None:
        if not blob.startswith(self.MARKER):
            return None  # not ours: the built-in codec handles it
        body = blob[len(self.MARKER) :]
        return self.aes.decrypt(body[:12], body[12:], None)


def test_encryption_plugin_answers_before_the_builtin_codec() -> None:
    plugin = MarkerEncryption()
    registry = PluginRegistry(load_entry_points=False)
    registry.register(plugin, name="marker-encryption")
    cache = make_cache(registry=registry)
    record = cache.codec.encode(Environment.from_json(env_json("a")))
    assert record.blob.startswith(MarkerEncryption.MARKER)
    assert plugin.encrypted == 1
    assert cache.codec.decode(record).item.id == "a"
    # A blob the plugin does not recognise falls through to the built-in AES-GCM codec.
    builtin_record = make_cache().codec.encode(Environment.from_json(env_json("b")))
    assert cache.codec.decode(builtin_record).item.id == "b"


def test_v2_blob_of_an_encryption_plugin_without_the_extension_is_read_as_0_1() -> None:
    # A third-party plugin's blob has no v2 header to say who wrote it: 0.1's envelope (model 2
    # with {"item", "cachedAt"}, no extension) is recognised from its shape.
    plugin = MarkerEncryption()
    registry = PluginRegistry(load_entry_points=False)
    registry.register(plugin, name="marker-encryption")
    cache = make_cache(registry=registry)
    data = env_json("a", version=3)
    old = {"kind": "environment", "modelVersion": 2, "data": {"item": data, "cachedAt": 42}}
    decoded = cache.codec.decode(_encrypt_plaintext(cache, "env:a", 6, json.dumps(old).encode()))
    assert decoded.item.to_json() == data
    assert decoded.legacy is True and decoded.cached_at_ms == 42
    fresh = cache.codec.decode(cache.codec.encode(Environment.from_json(data)))
    assert fresh.legacy is False and fresh.item.to_json() == data


def test_relay_previous_key_under_either_derivation_decrypts_and_is_stale() -> None:
    data = env_json("old", version=1)
    blob = relay_encrypt_independently(
        "old key", {"kind": "environment", "modelVersion": 2, "data": data}, "sha256"
    )
    rotated = make_cache(StorageFormat.RELAY, key="new key", previous=("old key",))
    result = rotated.decode_records([StoredRecord("env:old", 0, blob)])
    assert list(result.snapshot.environments) == ["old"]
    assert result.report.stale_key_fields == ("env:old",)
