"""The built-in AES-256-GCM encryption plugin, for both storage formats.

``relay`` blob: ``nonce(12) || ciphertext || tag(16)``, no associated data, under the AES key
of either ``relay`` key derivation (see :mod:`~autoconfig_cache.codec.keys`).

``v2`` blob: ``header || nonce(12) || ciphertext || tag(16)`` where
``header = b"ACv" || format(1) || key id(8) || item version(8, signed big-endian)``.
The associated data is the header plus the length-prefixed cache key and field, so a blob
copied to another field, another cache key or relabelled with another version fails to decrypt.

Header format bytes: **3** is what this release writes (envelope of model versions numbered as
the Relay Proxy numbers them); **2** was written by autoconfig-cache 0.1, whose model 2 data is
``{"item", "cachedAt"}`` (read through the built-in migration). A higher byte was written by a
newer release: the blob is refused with :class:`~autoconfig_cache.errors.NewerFormatError`, and
the core never overwrites it at the same version.
"""

from __future__ import annotations

import functools
import os
import struct
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import DecryptionError, NewerFormatError
from ..hookspecs import hookimpl
from .formats import EncryptionContext, StorageFormat
from .keys import KEY_ID_SIZE, DerivedKey, KeyDerivation, KeyRing

NONCE_SIZE = 12
TAG_SIZE = 16
V2_MAGIC = b"ACv"
V2_FORMAT_BYTE = 3
V2_LEGACY_FORMAT_BYTE = 2
"""Written by autoconfig-cache 0.1."""
_HEADER = struct.Struct(f">3sB{KEY_ID_SIZE}sq")
V2_HEADER_SIZE = _HEADER.size
_V2_CIPHERTEXT_START = V2_HEADER_SIZE + NONCE_SIZE
_V2_MIN_SIZE = _V2_CIPHERTEXT_START + TAG_SIZE
_LENGTH = struct.Struct(">I")
_RELAY_DERIVATIONS = (KeyDerivation.HKDF, KeyDerivation.SHA256)


class Opened(NamedTuple):
    """What decrypting one blob with the built-in codec found out."""

    plaintext: bytes
    key: DerivedKey
    derivation: KeyDerivation | None
    """The ``relay`` key derivation that opened it (``None`` for ``v2``)."""
    legacy: bool
    """A ``v2`` blob of header format byte 2, written by autoconfig-cache 0.1."""


@functools.lru_cache(maxsize=32)
def _length_prefixed(text: str) -> bytes:
    # Cached: a process uses one or two cache keys, and each load binds 10,000 blobs to one.
    raw = text.encode("utf-8")
    return _LENGTH.pack(len(raw)) + raw


def _associated_data(header: bytes, cache_key: str, field: str) -> bytes:
    raw_field = field.encode("utf-8")
    return b"".join((header, _length_prefixed(cache_key), _LENGTH.pack(len(raw_field)), raw_field))


def v2_header(blob: bytes) -> tuple[int, bytes, int] | None:
    """``(format byte, key id, item version)`` of a blob that starts with the ``v2`` magic.

    ``None`` if the blob is too short or lacks the magic. The format byte is not checked: a
    byte this release does not know still says the blob is a ``v2`` blob, from a newer release.
    """
    if len(blob) < _V2_MIN_SIZE:
        return None
    magic, format_byte, key_id, version = _HEADER.unpack_from(blob)
    if magic != V2_MAGIC:
        return None
    return format_byte, key_id, version


def v2_header_fields(blob: bytes) -> tuple[bytes, int] | None:
    """``(key id, item version)`` of a ``v2`` blob of a format this release reads, else ``None``."""
    header = v2_header(blob)
    if header is None or header[0] not in (V2_FORMAT_BYTE, V2_LEGACY_FORMAT_BYTE):
        return None
    return header[1], header[2]


class AesGcmEncryption:
    """Encrypts with the current key, decrypts with any key of the ring.

    Registered into every cache's plugin manager with ``trylast``, so that a third-party
    encryption plugin (a KMS envelope, say) answers first when installed.

    :param relay_key_derivation: the ``relay`` derivation to write with; ``None`` (``auto``)
        writes with :attr:`detected_relay_derivation`, else HKDF.
    """

    def __init__(self, keys: KeyRing, relay_key_derivation: KeyDerivation | None = None) -> None:
        self.keys = keys
        self.configured_relay_derivation = relay_key_derivation
        self.detected_relay_derivation: KeyDerivation | None = None
        """Set by the cache from the records it loaded (``auto``)."""
        # The AES-GCM object, key and derivation that opened the last relay blob: tried first,
        # so that a load of 10,000 records costs one AES-GCM decryption each, whichever pair
        # they use (and no lookup of the AESGCM object per record).
        self._last_relay: tuple[AESGCM, DerivedKey, KeyDerivation] | None = None

    @property
    def relay_write_derivation(self) -> KeyDerivation:
        """The derivation ``relay`` blobs are written with now."""
        return (
            self.configured_relay_derivation or self.detected_relay_derivation or KeyDerivation.HKDF
        )

    @hookimpl(trylast=True)
    def cache_encrypt(self, plaintext: bytes, context: EncryptionContext) -> bytes:
        """Encrypt ``plaintext`` in the context's format under the current key."""
        nonce = os.urandom(NONCE_SIZE)
        key = self.keys.current
        if context.format is StorageFormat.RELAY:
            return nonce + key.relay(self.relay_write_derivation).encrypt(nonce, plaintext, None)
        header = _HEADER.pack(V2_MAGIC, V2_FORMAT_BYTE, key.key_id, context.version)
        aad = _associated_data(header, context.cache_key, context.field)
        return header + nonce + key.v2.encrypt(nonce, plaintext, aad)

    @hookimpl(trylast=True)
    def cache_decrypt(self, blob: bytes, context: EncryptionContext) -> bytes:
        """Decrypt ``blob``; raise :class:`DecryptionError` saying why it failed."""
        return self.decrypt_with_key(blob, context)[0]

    def decrypt_with_key(self, blob: bytes, context: EncryptionContext) -> tuple[bytes, DerivedKey]:
        """Decrypt ``blob`` and say which configured key opened it (for rotation reports)."""
        opened = self.decrypt_record(
            blob, context.cache_key, context.field, context.version, context.format
        )
        return opened.plaintext, opened.key

    def decrypt_record(
        self, blob: bytes, cache_key: str, field: str, version: int, format: StorageFormat
    ) -> Opened:
        """Decrypt ``blob`` and say what opened it (the bulk-load path: no context built)."""
        if format is not StorageFormat.RELAY:
            return self._decrypt_v2(blob, cache_key, field, version)
        hint = self._last_relay
        if hint is not None and len(blob) >= NONCE_SIZE + TAG_SIZE:
            # The common case of a load, inlined: the pair that opened the previous blob. A
            # plain tuple is an Opened (NamedTuple's own constructor costs a Python call).
            try:
                plaintext = hint[0].decrypt(blob[:NONCE_SIZE], blob[NONCE_SIZE:], None)
            except InvalidTag:
                pass
            else:
                return tuple.__new__(Opened, (plaintext, hint[1], hint[2], False))
        return self._decrypt_relay(blob, hint)

    def _decrypt_relay(
        self, blob: bytes, hint: tuple[AESGCM, DerivedKey, KeyDerivation] | None
    ) -> Opened:
        """Every other pair, when ``hint`` (already tried, if any) did not open ``blob``."""
        if len(blob) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionError(f"blob is truncated ({len(blob)} bytes)")
        nonce, ciphertext = blob[:NONCE_SIZE], blob[NONCE_SIZE:]
        # The relay format has no key id and no derivation marker: try the current key, then
        # each previous one, each with HKDF first (what current Relay Proxy releases use),
        # then SHA-256. AES-GCM authentication makes a wrong pair fail, never decrypt garbage.
        for key in self.keys.all_keys:
            for derivation in _RELAY_DERIVATIONS:
                if hint is not None and hint[1] is key and hint[2] is derivation:
                    continue
                aead = key.relay(derivation)
                try:
                    plaintext = aead.decrypt(nonce, ciphertext, None)
                except InvalidTag:
                    continue
                self._last_relay = (aead, key, derivation)
                return Opened(plaintext, key, derivation, False)
        raise DecryptionError(
            "authentication failed with every configured key (under both the HKDF-SHA256 and "
            "the SHA-256 key derivation): the blob is tampered or truncated, or was written "
            "under a key that is not configured"
        )

    def _decrypt_v2(self, blob: bytes, cache_key: str, field: str, expected_version: int) -> Opened:
        header_fields = v2_header(blob)
        if header_fields is None or header_fields[0] < V2_LEGACY_FORMAT_BYTE:
            raise DecryptionError(
                "not a v2 blob (no valid header); if this cache was written in the relay "
                "format, set AUTO_CONFIG_CACHE_FORMAT=relay"
            )
        format_byte, key_id, version = header_fields
        if format_byte > V2_FORMAT_BYTE:
            raise NewerFormatError(
                f"v2 blob format {format_byte} is newer than this release knows "
                f"({V2_FORMAT_BYTE}); upgrade autoconfig-cache. The record is left as it is"
            )
        if expected_version and version != expected_version:
            raise DecryptionError(
                f"blob header says version {version} but the store holds it as version "
                f"{expected_version}: the blob was moved or relabelled"
            )
        key = self.keys.by_id(key_id)
        if key is None:
            raise DecryptionError(
                f"written under key id {key_id.hex()}, which is not configured; add that key "
                "to AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS"
            )
        header = blob[:V2_HEADER_SIZE]
        nonce = blob[V2_HEADER_SIZE:_V2_CIPHERTEXT_START]
        ciphertext = blob[_V2_CIPHERTEXT_START:]
        try:
            aad = _associated_data(header, cache_key, field)
            plaintext = key.v2.decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            raise DecryptionError(
                "authentication failed: the blob is tampered or truncated, or was copied from "
                "another field or cache key"
            ) from None
        return tuple.__new__(Opened, (plaintext, key, None, format_byte == V2_LEGACY_FORMAT_BYTE))
