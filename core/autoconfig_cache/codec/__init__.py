"""The codec: items to encrypted store records and back.

encode: item → envelope (JSON) → ``cache_encrypt`` hook → :class:`StoredRecord`.
decode: record → ``cache_decrypt`` hook → envelope → migration chain → item.

Every decode failure is a :class:`~autoconfig_cache.errors.CodecError` subclass that says what
went wrong with that one record; the caller skips it and keeps the rest.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import attrs
import pluggy

from ..errors import InvalidKeyError, MalformedEnvelopeError, UnknownKindError
from ..models import Item, Tombstone, item_from_json
from ..records import StoredRecord, field_name, parse_field, store_version
from .aesgcm import AesGcmEncryption, v2_header_fields
from .envelope import decode_envelope, encode_envelope, encode_tombstone_envelope
from .formats import EncryptionContext, StorageFormat
from .keys import DerivedKey, KeyRing
from .migrations import (
    CURRENT_MODEL_VERSION,
    RELAY_MODEL_VERSION,
    BuiltinMigrations,
    migrate_to_current,
)

__all__ = [
    "CURRENT_MODEL_VERSION",
    "AesGcmEncryption",
    "BuiltinMigrations",
    "Codec",
    "DecodedItem",
    "DerivedKey",
    "EncryptionContext",
    "KeyRing",
    "StorageFormat",
    "validate_cache_key",
]


def validate_cache_key(cache_key: str) -> str:
    """Trim ``cache_key`` as the Relay Proxy does; reject an empty one."""
    trimmed = cache_key.strip()
    if not trimmed:
        raise InvalidKeyError(
            "the cache key is empty or only whitespace; set AUTO_CONFIG_CACHE_KEY to a name "
            "for this cache (e.g. 'autoconfig-prod')"
        )
    return trimmed


@attrs.frozen
class DecodedItem:
    """An item read back from the store, with what the record said about it.

    :param model_version: the model version the record was written in (before migration).
    :param key: the configured key that decrypted it (``None`` if a third-party plugin did).
    :param cached_at_ms: when it was written (ms since the epoch), if the format records it.
    """

    item: Item | Tombstone
    model_version: int
    key: DerivedKey | None
    cached_at_ms: int | None

    @property
    def cached_at(self) -> datetime | None:
        """When the item was written, if the format records it."""
        return _ms_to_datetime(self.cached_at_ms)


class Codec:
    """Encodes and decodes records for one cache key, format and plugin manager."""

    def __init__(
        self,
        *,
        cache_key: str,
        format: StorageFormat,
        hook: pluggy.HookRelay,
        builtin_encryption: AesGcmEncryption,
    ) -> None:
        self.cache_key = validate_cache_key(cache_key)
        self.format = format
        self.keys = builtin_encryption.keys
        self._hook = hook
        self._builtin = builtin_encryption
        # Fast path: when no third-party encryption plugin is installed, call the built-in one
        # directly instead of through pluggy for each of possibly 10,000 items at start-up.
        self._builtin_only = all(
            impl.plugin is builtin_encryption
            for caller in (hook.cache_encrypt, hook.cache_decrypt)
            for impl in caller.get_hookimpls()
        )
        self._builtin_migrations_only = all(
            isinstance(impl.plugin, BuiltinMigrations)
            for impl in hook.cache_migrate_item.get_hookimpls()
        )

    def context(self, field: str, version: int) -> EncryptionContext:
        """The encryption context of ``field`` at ``version`` in this cache."""
        return EncryptionContext(self.cache_key, field, version, self.format)

    def encode(self, item: Item | Tombstone, *, cached_at_ms: int | None = None) -> StoredRecord:
        """Encrypt ``item`` (or a tombstone) into the record the store keeps."""
        if cached_at_ms is None:
            cached_at_ms = int(time.time() * 1000)
        if isinstance(item, Tombstone):
            plaintext = encode_tombstone_envelope(
                item.kind, item.version, cached_at_ms=cached_at_ms
            )
            version = store_version(item.version, deleted=True)
        else:
            plaintext = encode_envelope(
                item.kind,
                item.to_json(),
                relay=self.format is StorageFormat.RELAY,
                cached_at_ms=cached_at_ms,
            )
            version = store_version(item.version)
        field = field_name(item.kind, item.id)
        context = self.context(field, version)
        if self._builtin_only:
            blob = self._builtin.cache_encrypt(plaintext, context)
        else:
            blob = self._hook.cache_encrypt(plaintext=plaintext, context=context)
        return StoredRecord(field=field, version=version, blob=blob)

    def decode(self, record: StoredRecord) -> DecodedItem:
        """Decrypt, migrate and parse one record.

        :raises CodecError: (a subclass saying which problem) when the record cannot be used.
        """
        return DecodedItem(*self.decode_parts(record))

    def decode_parts(
        self, record: StoredRecord
    ) -> tuple[Item | Tombstone, int, DerivedKey | None, int | None]:
        """:meth:`decode` without building a :class:`DecodedItem` (the bulk-load path)."""
        parsed_field = parse_field(record.field)
        if parsed_field is None:
            raise MalformedEnvelopeError(f"field {record.field!r} is not env:<id> or filter:<id>")
        field_kind, item_id = parsed_field
        key: DerivedKey | None
        if self._builtin_only:
            plaintext, key = self._builtin.decrypt_record(
                record.blob, self.cache_key, record.field, record.version, self.format
            )
        else:
            context = self.context(record.field, record.version)
            plaintext = self._hook.cache_decrypt(blob=record.blob, context=context)
            key = None
            if plaintext is None:
                plaintext, key = self._builtin.decrypt_with_key(record.blob, context)
        kind, model_version, data = decode_envelope(plaintext)
        if kind is not field_kind:
            raise UnknownKindError(
                f"envelope says {kind.value!r} but the field is {record.field!r}"
            )
        if model_version == CURRENT_MODEL_VERSION:
            item_json, cached_at = _unwrap_current(data)
        elif model_version == RELAY_MODEL_VERSION and self._builtin_migrations_only:
            # The one built-in step only wraps the item; skip building the wrapper per item.
            item_json, cached_at = data, None
        else:
            item_json, cached_at = _unwrap_current(
                migrate_to_current(self._hook, kind.value, model_version, data)
            )
        if item_json is _DELETED:
            deleted_version = data.get("version") if isinstance(data, dict) else None
            if type(deleted_version) is not int:
                raise MalformedEnvelopeError("tombstone without an integer 'version'")
            return Tombstone(kind, item_id, deleted_version), model_version, key, cached_at
        item = item_from_json(kind, item_id, item_json)
        return item, model_version, key, cached_at

    def key_id_of(self, record: StoredRecord) -> str | None:
        """The hex key id of a ``v2`` record (``None`` for relay records or foreign blobs)."""
        fields = v2_header_fields(record.blob) if self.format is StorageFormat.V2 else None
        return fields[0].hex() if fields else None


_MAX_TIME_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, past what datetime represents
_DELETED = object()
"""What :func:`_unwrap_current` returns as the item of a tombstone."""


def _unwrap_current(data: Any) -> tuple[Any, int | None]:
    if isinstance(data, dict) and data.get("deleted") is True:
        return _DELETED, _cached_at_ms(data)
    if not isinstance(data, dict) or "item" not in data:
        raise MalformedEnvelopeError(
            f"model version {CURRENT_MODEL_VERSION} data must be an object with an 'item'"
        )
    return data["item"], _cached_at_ms(data)


def _cached_at_ms(data: dict[str, Any]) -> int | None:
    cached_at_ms = data.get("cachedAt")
    # A range check rather than building a datetime: this runs for every item of a load.
    if cached_at_ms is not None and (
        type(cached_at_ms) is not int or not 0 <= cached_at_ms < _MAX_TIME_MS
    ):
        raise MalformedEnvelopeError(f"cachedAt {cached_at_ms!r} is not a valid time in ms")
    return cached_at_ms


def _ms_to_datetime(ms: int | None) -> datetime | None:
    if ms is None:
        return None
    try:
        return datetime.fromtimestamp(ms / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None
