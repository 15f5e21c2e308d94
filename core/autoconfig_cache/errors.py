"""Exception classes raised by autoconfig-cache.

Every error says what failed and, where a person can fix it, what to change. None of them
carries a secret in clear: messages that mention a key use :func:`autoconfig_cache.secrets.mask`.
"""

from __future__ import annotations


class AutoConfigCacheError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(AutoConfigCacheError):
    """A setting is missing, malformed or contradicts another one."""


class UnknownStoreSchemeError(ConfigurationError):
    """A store URL names a scheme that no installed plugin registered."""

    def __init__(self, scheme: str, installed: list[str], extra: str | None) -> None:
        self.scheme = scheme
        self.installed = installed
        self.extra = extra
        hint = (
            f" Install the plugin that provides it: pip install 'autoconfig-cache[{extra}]'."
            if extra
            else " Install a plugin that registers this scheme, or fix the URL."
        )
        super().__init__(
            f"unknown store scheme {scheme!r}; installed schemes: "
            f"{', '.join(sorted(installed)) or '(none)'}.{hint}"
        )


class StoreError(AutoConfigCacheError):
    """A store operation failed. The stream manager counts these and re-synchronises later."""


class StoreUnavailableError(StoreError):
    """The store could not be reached (refused connection, DNS, TLS handshake, ...)."""


class StoreTimeoutError(StoreUnavailableError):
    """The store did not answer within the configured timeout."""


class StoreClosedError(StoreError):
    """An operation was attempted on a store or cache that has been closed."""

    def __init__(self, what: str = "cache") -> None:
        super().__init__(
            f"the {what} is closed; open a new one (closing is final so that no work outlives it)"
        )


class StoreSchemaError(StoreError):
    """The store exists but does not have the expected layout (e.g. a table's key schema)."""


class PartialWriteError(StoreError):
    """Some records of a batch could not be written; ``failed_fields`` names them."""

    def __init__(self, message: str, failed_fields: list[str]) -> None:
        self.failed_fields = failed_fields
        super().__init__(
            f"{message}: {len(failed_fields)} record(s) not written: "
            f"{', '.join(failed_fields[:10])}{' ...' if len(failed_fields) > 10 else ''}"
        )


class CodecError(AutoConfigCacheError):
    """A cached record could not be turned back into an item. The item is skipped."""


class DecryptionError(CodecError):
    """Authentication failed: wrong key, tampered or truncated blob, or a blob moved elsewhere."""


class MalformedEnvelopeError(CodecError):
    """The decrypted plaintext is not a valid item envelope."""


class UnknownKindError(CodecError):
    """The envelope names a kind other than ``environment`` or ``filter``."""


class UnknownModelVersionError(CodecError):
    """No installed migration can bring the item to the current model version."""


class NewerFormatError(UnknownModelVersionError):
    """The record was written in a model version or blob format newer than this release knows.

    Such a record is skipped like any unreadable one, but never rewritten: the process that
    wrote it is newer, and its data is not this process's to repair.
    """


class MalformedItemError(CodecError):
    """An item's JSON lacks required fields or has fields of the wrong type."""


class InvalidKeyError(ConfigurationError):
    """An encryption key or cache key is empty, or only whitespace."""
