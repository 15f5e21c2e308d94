"""Encryption keys: derivation for both storage formats, key ids, and the rotation key ring.

``relay`` format: key = SHA-256 of the trimmed key string, exactly as the Relay Proxy v8 does
(when no encryption key is configured it uses the AutoConfig key, and so do we).

``v2`` format: key = HKDF-SHA256 of the trimmed key string with a fixed context label, so the
AES key is never the bare hash of a password-like string and is separated from the key id,
which is derived with a second label and stored in clear in each blob's header.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import InvalidKeyError

V2_KEY_LABEL = b"autoconfig-cache/v2/item-encryption-key"
V2_KEY_ID_LABEL = b"autoconfig-cache/v2/key-id"
KEY_ID_SIZE = 8


def _hkdf(material: bytes, label: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(material)


@attrs.frozen
class DerivedKey:
    """One configured key string, derived for both formats."""

    key_id: bytes
    relay: AESGCM = attrs.field(repr=False)
    v2: AESGCM = attrs.field(repr=False)

    @classmethod
    def from_string(cls, secret: str, *, setting: str) -> DerivedKey:
        """Derive from a key string; surrounding whitespace is trimmed as the Relay Proxy does.

        :param setting: the setting the key came from, named in the error if it is empty.
        :raises InvalidKeyError: when the key is empty or only whitespace.
        """
        trimmed = secret.strip()
        if not trimmed:
            raise InvalidKeyError(
                f"{setting} is empty or only whitespace; set it to a secret string"
            )
        material = trimmed.encode("utf-8")
        return cls(
            key_id=_hkdf(material, V2_KEY_ID_LABEL, KEY_ID_SIZE),
            relay=AESGCM(hashlib.sha256(material).digest()),
            v2=AESGCM(_hkdf(material, V2_KEY_LABEL, 32)),
        )

    @property
    def key_id_hex(self) -> str:
        """The key id as hex, safe to show (it reveals nothing about the key)."""
        return self.key_id.hex()


@attrs.frozen
class KeyRing:
    """The current key (encrypts and decrypts) and previous keys (decrypt only)."""

    current: DerivedKey
    previous: tuple[DerivedKey, ...] = ()

    @classmethod
    def from_strings(
        cls,
        current: str,
        previous: Sequence[str] = (),
        *,
        setting: str = "AUTO_CONFIG_CACHE_ENCRYPTION_KEY",
    ) -> KeyRing:
        """Build a key ring from key strings (trimmed; an empty one is an error)."""
        return cls(
            current=DerivedKey.from_string(current, setting=setting),
            previous=tuple(
                DerivedKey.from_string(key, setting="AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS")
                for key in previous
            ),
        )

    @property
    def all_keys(self) -> tuple[DerivedKey, ...]:
        """Current key first, then previous keys in the configured order."""
        return (self.current, *self.previous)

    def by_id(self, key_id: bytes) -> DerivedKey | None:
        """The key whose id is ``key_id``, if configured."""
        for key in self.all_keys:
            if key.key_id == key_id:
                return key
        return None
