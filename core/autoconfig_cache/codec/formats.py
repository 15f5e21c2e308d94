"""Storage formats and the context each blob is encrypted for."""

from __future__ import annotations

import enum

import attrs


class StorageFormat(enum.StrEnum):
    """How items are encrypted and framed in the store."""

    V2 = "v2"
    """Default, hardened: authenticated header, blob bound to cache key, field and version."""
    RELAY = "relay"
    """The Relay Proxy's own AutoConfig cache format (v8 and v9), so both can share one store."""

    @classmethod
    def parse(cls, value: str) -> StorageFormat:
        """Parse a format name, with an error that lists the valid ones."""
        from ..errors import ConfigurationError

        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ConfigurationError(
                f"unknown cache format {value!r}; set AUTO_CONFIG_CACHE_FORMAT to "
                f"{' or '.join(repr(f.value) for f in cls)}"
            ) from None


@attrs.frozen
class EncryptionContext:
    """Where a blob lives: what the ``v2`` format binds it to.

    :param cache_key: the cache's namespace.
    :param field: ``env:<id>`` or ``filter:<id>``.
    :param version: the item version (0 when the store does not know it).
    :param format: the storage format.
    """

    cache_key: str
    field: str
    version: int
    format: StorageFormat
