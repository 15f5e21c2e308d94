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
import msgspec
import pluggy

from ..errors import InvalidKeyError, MalformedEnvelopeError, UnknownKindError
from ..models import (
    Item,
    Tombstone,
    environment_from_text,
    item_from_json,
    item_from_json_text,
)
from ..records import ItemKind, StoredRecord, field_name, parse_field, store_version
from .aesgcm import AesGcmEncryption, v2_header_fields
from .envelope import (
    data_value,
    decode_envelope,
    encode_envelope,
    encode_tombstone_envelope,
    legacy_tombstone,
)
from .formats import EncryptionContext, StorageFormat
from .keys import DerivedKey, KeyDerivation, KeyRing, parse_relay_key_derivation
from .migrations import (
    CURRENT_MODEL_VERSION,
    LEGACY_V2_MODEL_VERSION,
    BuiltinMigrations,
    check_model_version,
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
    "KeyDerivation",
    "KeyRing",
    "StorageFormat",
    "parse_relay_key_derivation",
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

    :param model_version: the model version the record's envelope names (before migration).
    :param key: the configured key that decrypted it (``None`` if a third-party plugin did).
    :param cached_at_ms: when it was written (ms since the epoch), if the record says.
    :param derivation: the ``relay`` key derivation that opened it (``None`` for ``v2``, or
        when a third-party plugin decrypted it).
    :param legacy: written by autoconfig-cache 0.1 (``v2`` header format byte 2; in ``relay``,
        a model 1 envelope without this project's extension, or a 0.1 tombstone). Such a
        record is read through the migration and rewritten in the current shape.
    """

    item: Item | Tombstone
    model_version: int
    key: DerivedKey | None
    cached_at_ms: int | None
    derivation: KeyDerivation | None = None
    legacy: bool = False

    @property
    def cached_at(self) -> datetime | None:
        """When the item was written, if the record says."""
        return _ms_to_datetime(self.cached_at_ms)


DecodedParts = tuple[
    Item | Tombstone, int, DerivedKey | None, int | None, KeyDerivation | None, bool
]
"""The fields of :class:`DecodedItem`, in order (the bulk-load path builds no object)."""


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

    @property
    def relay_write_derivation(self) -> KeyDerivation:
        """The key derivation ``relay`` records are written with now."""
        return self._builtin.relay_write_derivation

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
            plaintext = encode_envelope(item.kind, item.to_json(), cached_at_ms=cached_at_ms)
            version = store_version(item.version)
        field = field_name(item.kind, item.id)
        context = self.context(field, version)
        if self._builtin_only:
            blob = self._builtin.cache_encrypt(plaintext, context)
        else:
            blob = self._hook.cache_encrypt(plaintext=plaintext, context=context)
        return StoredRecord(
            field=field, version=version, blob=blob, deleted=isinstance(item, Tombstone)
        )

    def decode(self, record: StoredRecord) -> DecodedItem:
        """Decrypt, migrate and parse one record.

        :raises CodecError: (a subclass saying which problem) when the record cannot be used;
            :class:`~autoconfig_cache.errors.NewerFormatError` when a newer release wrote it.
        """
        return DecodedItem(*self.decode_parts(record))

    def decode_parts(self, record: StoredRecord) -> DecodedParts:
        """:meth:`decode` without building a :class:`DecodedItem` (the bulk-load path)."""
        parsed_field = parse_field(record.field)
        if parsed_field is None:
            raise MalformedEnvelopeError(f"field {record.field!r} is not env:<id> or filter:<id>")
        field_kind, item_id = parsed_field
        key: DerivedKey | None
        derivation: KeyDerivation | None = None
        legacy_v2: bool | None = None  # None: not known from the blob (a plugin decrypted it)
        if self._builtin_only:
            plaintext, key, derivation, legacy_v2 = self._builtin.decrypt_record(
                record.blob, self.cache_key, record.field, record.version, self.format
            )
        else:
            context = self.context(record.field, record.version)
            plaintext = self._hook.cache_decrypt(blob=record.blob, context=context)
            key = None
            if plaintext is None:
                plaintext, key, derivation, legacy_v2 = self._builtin.decrypt_record(
                    record.blob, self.cache_key, record.field, record.version, self.format
                )
        kind, model_version, data, extension = decode_envelope(plaintext)
        if kind is not field_kind:
            raise UnknownKindError(
                f"envelope says {kind.value!r} but the field is {record.field!r}"
            )
        if (
            kind is ItemKind.ENVIRONMENT
            and model_version == CURRENT_MODEL_VERSION
            and extension is not None
            and extension.deleted is not True
            and type(data) is msgspec.Raw
        ):
            # What this release writes, the common record of a load: the steps below, inlined.
            cached_at = extension.cachedAt
            if cached_at is not None and (
                type(cached_at) is not int or not 0 <= cached_at < _MAX_TIME_MS
            ):
                cached_at = _cached_at_ms(cached_at)  # raises
            environment = environment_from_text(bytes(data), item_id)
            return environment, model_version, key, cached_at, derivation, False
        check_model_version(model_version)
        if extension is not None:
            cached_at = _cached_at_ms(extension.cachedAt)
            if extension.deleted is True:
                deleted_version = extension.version
                if type(deleted_version) is not int:
                    raise MalformedEnvelopeError("tombstone without an integer 'version'")
                tombstone = Tombstone(kind, item_id, deleted_version)
                return tombstone, model_version, key, cached_at, derivation, False
            legacy = False
        elif self.format is StorageFormat.V2:
            # 0.1 wrote every v2 blob with header format byte 2; what a third-party encryption
            # plugin decrypted has no header to tell, and 0.1 never wrote the extension.
            legacy = legacy_v2 if legacy_v2 is not None else True
            cached_at = None
        else:
            # relay: a Relay Proxy writes model 2 without the extension; 0.1 wrote model 1 items
            # and model 2 tombstones of one exact shape.
            legacy = model_version == 1
            cached_at = None
        if (
            extension is None
            and model_version == 2
            and (legacy or self.format is StorageFormat.RELAY)
        ):
            old_tombstone = legacy_tombstone(data)
            if old_tombstone is not None:
                deleted_version, cached_at = old_tombstone
                tombstone = Tombstone(kind, item_id, deleted_version)
                return tombstone, model_version, key, _cached_at_ms(cached_at), derivation, True
        item: Item
        if legacy and model_version == 2:
            # 0.1's v2 model 2: {"item", "cachedAt"}, migrated as the internal legacy model.
            value = data_value(data)
            if isinstance(value, dict):
                cached_at = _cached_at_ms(value.get("cachedAt"))
            item_json = migrate_to_current(self._hook, kind.value, LEGACY_V2_MODEL_VERSION, value)
            item = item_from_json(kind, item_id, item_json)
        elif model_version == CURRENT_MODEL_VERSION or self._builtin_migrations_only:
            # Model 1 and 2 data are both the item JSON; the built-in step 1 -> 2 is the
            # identity, so skip calling it for each of 10,000 items. The item keeps the text.
            item = (
                item_from_json_text(kind, item_id, bytes(data))
                if isinstance(data, msgspec.Raw)
                else item_from_json(kind, item_id, data)
            )
        else:
            item_json = migrate_to_current(self._hook, kind.value, model_version, data_value(data))
            item = item_from_json(kind, item_id, item_json)
        return item, model_version, key, cached_at, derivation, legacy

    def key_id_of(self, record: StoredRecord) -> str | None:
        """The hex key id of a ``v2`` record (``None`` for relay records or foreign blobs)."""
        fields = v2_header_fields(record.blob) if self.format is StorageFormat.V2 else None
        return fields[0].hex() if fields else None


_MAX_TIME_MS = 253_402_300_800_000  # 10000-01-01T00:00:00Z, past what datetime represents


def _cached_at_ms(cached_at_ms: Any) -> int | None:
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
