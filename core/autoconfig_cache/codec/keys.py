"""Encryption keys: derivation for both storage formats, key ids, and the rotation key ring.

Key material: the configured encryption key, trimmed of surrounding whitespace; when no
encryption key is configured, the AutoConfig key **as given** (not trimmed). That is what the
Relay Proxy does (ld-relay ``internal/autoconfigcache/crypto.go``, ``resolveEncryptionKey``:
``strings.TrimSpace`` on ``CacheEncryptionKey`` only, ``string(c.AutoConfig.Key)`` as is).

``relay`` format: the AES-256 key depends on the Relay Proxy release that shares the store
(ld-relay ``internal/autoconfigcache/crypto.go`` across its history):

* later v8 and v9 releases: HKDF-SHA256(ikm = material, no salt, info = ``ld-relay autoconfig
  cache``), 32 bytes (:attr:`KeyDerivation.HKDF`);
* earlier v8 releases: SHA-256(material) (:attr:`KeyDerivation.SHA256`; ld-relay commit
  ``1bebdad4dd5e58fea0933887c7dc16b69346ee60``).

Both are derived for every configured key: reading tries both, and the
``AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION`` setting decides which one writes.

``v2`` format: key = HKDF-SHA256 of the material with this project's own context label, so the
AES key is never the bare hash of a password-like string and is separated from the key id,
which is derived with a second label and stored in clear in each blob's header.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigurationError, InvalidKeyError

V2_KEY_LABEL = b"autoconfig-cache/v2/item-encryption-key"
V2_KEY_ID_LABEL = b"autoconfig-cache/v2/key-id"
RELAY_HKDF_INFO = b"ld-relay autoconfig cache"
KEY_ID_SIZE = 8

RELAY_KEY_DERIVATION_SETTING = "AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION"


class KeyDerivation(enum.StrEnum):
    """How the ``relay`` format turns key material into the AES-256 key."""

    HKDF = "hkdf"
    """HKDF-SHA256, no salt, info ``ld-relay autoconfig cache``: later v8 and every v9 Relay."""
    SHA256 = "sha256"
    """SHA-256 of the material: earlier v8 Relay Proxy releases (and autoconfig-cache 0.1)."""


def parse_relay_key_derivation(value: str) -> KeyDerivation | None:
    """Parse ``AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION``: ``auto`` (``None``), ``hkdf``, ``sha256``.

    :raises ConfigurationError: naming the setting and the valid values.
    """
    text = value.strip().lower()
    if text == "auto":
        return None
    try:
        return KeyDerivation(text)
    except ValueError:
        raise ConfigurationError(
            f"{RELAY_KEY_DERIVATION_SETTING} must be 'auto' (default), 'hkdf' or 'sha256', "
            f"got {value!r}"
        ) from None


def _hkdf(material: bytes, label: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label).derive(material)


@attrs.frozen
class DerivedKey:
    """One configured key string, derived for both formats (and both ``relay`` derivations)."""

    key_id: bytes
    relay_hkdf: AESGCM = attrs.field(repr=False)
    relay_sha256: AESGCM = attrs.field(repr=False)
    v2: AESGCM = attrs.field(repr=False)

    @classmethod
    def from_string(cls, secret: str, *, setting: str, trim: bool = True) -> DerivedKey:
        """Derive from a key string.

        :param setting: the setting the key came from, named in the error if it is empty.
        :param trim: trim surrounding whitespace (an explicit encryption key, as the Relay Proxy
            does); ``False`` for the AutoConfig key, which the Relay Proxy uses as it is.
        :raises InvalidKeyError: when the key is empty or only whitespace.
        """
        if not secret.strip():
            raise InvalidKeyError(
                f"{setting} is empty or only whitespace; set it to a secret string"
            )
        material = (secret.strip() if trim else secret).encode("utf-8")
        return cls(
            key_id=_hkdf(material, V2_KEY_ID_LABEL, KEY_ID_SIZE),
            relay_hkdf=AESGCM(_hkdf(material, RELAY_HKDF_INFO, 32)),
            relay_sha256=AESGCM(hashlib.sha256(material).digest()),
            v2=AESGCM(_hkdf(material, V2_KEY_LABEL, 32)),
        )

    def relay(self, derivation: KeyDerivation) -> AESGCM:
        """The ``relay`` format's AES-GCM under ``derivation``."""
        return self.relay_hkdf if derivation is KeyDerivation.HKDF else self.relay_sha256

    @property
    def key_id_hex(self) -> str:
        """The key id as hex, safe to show (it reveals nothing about the key)."""
        return self.key_id.hex()


@attrs.frozen
class KeyRing:
    """The current key (encrypts and decrypts) and previous keys (decrypt only)."""

    current: DerivedKey
    previous: tuple[DerivedKey, ...] = ()
    # by_id runs once per v2 record of a load (10,000 times): a dict, built once. The first key
    # in all_keys order wins when two configured strings share an id (the same key twice).
    _by_id: dict[bytes, DerivedKey] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        by_id: dict[bytes, DerivedKey] = {}
        for key in self.all_keys:
            by_id.setdefault(key.key_id, key)
        object.__setattr__(self, "_by_id", by_id)

    @classmethod
    def from_strings(
        cls,
        current: str,
        previous: Sequence[str] = (),
        *,
        setting: str = "AUTO_CONFIG_CACHE_ENCRYPTION_KEY",
        trim_current: bool = True,
    ) -> KeyRing:
        """Build a key ring from key strings (an empty one is an error).

        Previous keys are explicit encryption keys and are always trimmed.

        :param trim_current: ``False`` when ``current`` is the AutoConfig key (see the module
            docstring).
        """
        return cls(
            current=DerivedKey.from_string(current, setting=setting, trim=trim_current),
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
        return self._by_id.get(key_id)
