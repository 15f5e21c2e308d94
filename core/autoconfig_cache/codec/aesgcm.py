"""The built-in AES-256-GCM encryption plugin, for both storage formats.

``relay`` blob: ``nonce(12) || ciphertext || tag(16)``, no associated data.

``v2`` blob: ``header || nonce(12) || ciphertext || tag(16)`` where
``header = b"ACv" || format(1) || key id(8) || item version(8, signed big-endian)``.
The associated data is the header plus the length-prefixed cache key and field, so a blob
copied to another field, another cache key or relabelled with another version fails to decrypt.
"""

from __future__ import annotations

import functools
import os
import struct

from cryptography.exceptions import InvalidTag

from ..errors import DecryptionError
from ..hookspecs import hookimpl
from .formats import EncryptionContext, StorageFormat
from .keys import KEY_ID_SIZE, DerivedKey, KeyRing

NONCE_SIZE = 12
TAG_SIZE = 16
V2_MAGIC = b"ACv"
V2_FORMAT_BYTE = 2
_HEADER = struct.Struct(f">3sB{KEY_ID_SIZE}sq")
V2_HEADER_SIZE = _HEADER.size


@functools.lru_cache(maxsize=32)
def _length_prefixed(text: str) -> bytes:
    # Cached: a process uses one or two cache keys, and each load binds 10,000 blobs to one.
    raw = text.encode("utf-8")
    return struct.pack(">I", len(raw)) + raw


def _associated_data(header: bytes, cache_key: str, field: str) -> bytes:
    raw_field = field.encode("utf-8")
    return b"".join(
        (header, _length_prefixed(cache_key), struct.pack(">I", len(raw_field)), raw_field)
    )


def v2_header_fields(blob: bytes) -> tuple[bytes, int] | None:
    """``(key id, item version)`` of a ``v2`` blob, or ``None`` if it has no valid header."""
    if len(blob) < V2_HEADER_SIZE + NONCE_SIZE + TAG_SIZE:
        return None
    magic, format_byte, key_id, version = _HEADER.unpack_from(blob)
    if magic != V2_MAGIC or format_byte != V2_FORMAT_BYTE:
        return None
    return key_id, version


class AesGcmEncryption:
    """Encrypts with the current key, decrypts with any key of the ring.

    Registered into every cache's plugin manager with ``trylast``, so that a third-party
    encryption plugin (a KMS envelope, say) answers first when installed.
    """

    def __init__(self, keys: KeyRing) -> None:
        self.keys = keys

    @hookimpl(trylast=True)
    def cache_encrypt(self, plaintext: bytes, context: EncryptionContext) -> bytes:
        """Encrypt ``plaintext`` in the context's format under the current key."""
        nonce = os.urandom(NONCE_SIZE)
        key = self.keys.current
        if context.format is StorageFormat.RELAY:
            return nonce + key.relay.encrypt(nonce, plaintext, None)
        header = _HEADER.pack(V2_MAGIC, V2_FORMAT_BYTE, key.key_id, context.version)
        aad = _associated_data(header, context.cache_key, context.field)
        return header + nonce + key.v2.encrypt(nonce, plaintext, aad)

    @hookimpl(trylast=True)
    def cache_decrypt(self, blob: bytes, context: EncryptionContext) -> bytes:
        """Decrypt ``blob``; raise :class:`DecryptionError` saying why it failed."""
        return self.decrypt_with_key(blob, context)[0]

    def decrypt_with_key(self, blob: bytes, context: EncryptionContext) -> tuple[bytes, DerivedKey]:
        """Decrypt ``blob`` and say which configured key opened it (for rotation reports)."""
        return self.decrypt_record(
            blob, context.cache_key, context.field, context.version, context.format
        )

    def decrypt_record(
        self, blob: bytes, cache_key: str, field: str, version: int, format: StorageFormat
    ) -> tuple[bytes, DerivedKey]:
        """:meth:`decrypt_with_key` without building a context (the bulk-load path)."""
        if format is StorageFormat.RELAY:
            return self._decrypt_relay(blob)
        return self._decrypt_v2(blob, cache_key, field, version)

    def _decrypt_relay(self, blob: bytes) -> tuple[bytes, DerivedKey]:
        if len(blob) < NONCE_SIZE + TAG_SIZE:
            raise DecryptionError(f"blob is truncated ({len(blob)} bytes)")
        nonce, ciphertext = blob[:NONCE_SIZE], blob[NONCE_SIZE:]
        # The relay format has no key id: try the current key, then each previous one.
        for key in self.keys.all_keys:
            try:
                return key.relay.decrypt(nonce, ciphertext, None), key
            except InvalidTag:
                continue
        raise DecryptionError(
            "authentication failed with every configured key: the blob is tampered or "
            "truncated, or was written under a key that is not configured"
        )

    def _decrypt_v2(
        self, blob: bytes, cache_key: str, field: str, expected_version: int
    ) -> tuple[bytes, DerivedKey]:
        fields = v2_header_fields(blob)
        if fields is None:
            raise DecryptionError(
                "not a v2 blob (no valid header); if this cache was written in the relay "
                "format, set AUTO_CONFIG_CACHE_FORMAT=relay"
            )
        key_id, version = fields
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
        nonce = blob[V2_HEADER_SIZE : V2_HEADER_SIZE + NONCE_SIZE]
        ciphertext = blob[V2_HEADER_SIZE + NONCE_SIZE :]
        try:
            aad = _associated_data(header, cache_key, field)
            return key.v2.decrypt(nonce, ciphertext, aad), key
        except InvalidTag:
            raise DecryptionError(
                "authentication failed: the blob is tampered or truncated, or was copied from "
                "another field or cache key"
            ) from None
