"""Exception classes raised by autoconfig-cache.

Every error says what failed and, where a person can fix it, what to change. None of them
carries a secret in clear: messages that mention a key use :func:`autoconfig_cache.secrets.mask`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from .records import ItemKind, parse_field


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


class PluginContractError(ConfigurationError):
    """A plugin breaks the hook contract; raised when it is registered, naming it and the hook.

    :param plugin: the plugin's name (or a store's class name).
    """

    def __init__(self, message: str, *, plugin: str) -> None:
        self.plugin = plugin
        super().__init__(message)


class UnknownHookError(PluginContractError):
    """A plugin implements a hook that no specification names (a misspelt hook)."""


class StoreContractError(PluginContractError):
    """A store lacks a required store hook, or has a method named like one without ``@hookimpl``."""


class StoreConflictError(PluginContractError):
    """A plugin that is not the cache's store answers a store hook (it may only wrap it)."""


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


@attrs.frozen
class RefusedRecord:
    """A record a store refused to hold, and why: it breaks a limit of the backend (DynamoDB's
    400 KB item size, say) or its version is outside the valid range. Writing it again at the
    same version would fail the same way, so it is not retried until its version changes.

    :param field: the record's field (``env:<id>`` or ``filter:<id>``).
    :param version: the record's version as the store compares it (see
        :func:`autoconfig_cache.records.store_version`).
    :param reason: why, in words an operator can act on; never a secret nor the blob.
    :param deleted: the record is a tombstone.
    """

    field: str
    version: int
    reason: str
    deleted: bool = False

    @property
    def kind(self) -> ItemKind | None:
        """The item's kind, or ``None`` when the field is not an item field."""
        parsed = parse_field(self.field)
        return parsed[0] if parsed is not None else None

    @property
    def item_id(self) -> str | None:
        """The item's id, or ``None`` when the field is not an item field."""
        parsed = parse_field(self.field)
        return parsed[1] if parsed is not None else None

    def describe(self) -> str:
        """One line naming the record (escaped) and the reason."""
        what = "tombstone of " if self.deleted else ""
        version = _shown_number(self.version)
        return f"{what}{_shown_field(self.field)} at stored version {version}: {self.reason}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (``/status``)."""
        kind = self.kind
        return {
            "field": _shown_field(self.field),
            "kind": str(kind) if kind is not None else None,
            "id": self.item_id,
            # A number JSON readers hold exactly (64 bits), else as text.
            "version": self.version
            if -(2**63) <= self.version < 2**63
            else _shown_number(self.version),
            "deleted": self.deleted,
            "reason": self.reason,
        }


class PartialWriteError(StoreError):
    """Some records of a batch were not written; the others were.

    ``failed_fields`` names every field not written. ``refused`` holds the records the store
    refused for good (:class:`RefusedRecord`, each with its reason): sending them again at the
    same version cannot succeed. The other failed fields (``retryable_fields``: a throttled
    batch past its deadline, say) may succeed later.

    :param message: what was being done, e.g. ``"DynamoDB set_all on table 'cache'"``.
    :param failed_fields: fields not written for a reason that may pass (refused records need
        not be repeated here: they are added).
    :param refused: records refused for good.
    """

    def __init__(
        self,
        message: str,
        failed_fields: Sequence[str] = (),
        *,
        refused: Iterable[RefusedRecord] = (),
    ) -> None:
        self.refused: tuple[RefusedRecord, ...] = tuple(refused)
        refused_fields = {entry.field for entry in self.refused}
        self.retryable_fields: list[str] = [
            field for field in failed_fields if field not in refused_fields
        ]
        self.failed_fields: list[str] = [
            *self.retryable_fields,
            *(entry.field for entry in self.refused),
        ]
        shown = [
            *(_shown_field(field) for field in self.retryable_fields),
            *(f"{_shown_field(entry.field)} (refused: {entry.reason})" for entry in self.refused),
        ]
        super().__init__(
            f"{message}: {len(shown)} record(s) not written: "
            f"{', '.join(shown[:10])}{' ...' if len(shown) > 10 else ''}"
        )

    @property
    def only_refused(self) -> bool:
        """Every record not written was refused for good: nothing is worth retrying."""
        return not self.retryable_fields


def _shown_number(value: int) -> str:
    """``value`` as text, or its size when huge (``str()`` raises past 4,300 digits)."""
    if value.bit_length() > 100:
        return f"a number of about {int(value.bit_length() * 0.30103) + 1} digits"
    return str(value)


def _shown_field(field: str) -> str:
    """``field`` for a message: as it is when printable and short, else escaped and cut, so
    that a field from data cannot start a forged log line."""
    shown = field if field.isprintable() else repr(field)
    return shown if len(shown) <= 80 else f"{shown[:80]}... ({len(field)} characters)"


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


class MalformedCredentialsError(MalformedItemError):
    """An environment's credential set (``sdkKey``, ``mobKey``, ``sdkKeys``, ``mobileKeys``) is
    one the Relay Proxy refuses. The message names the field, never a credential's value.

    In a stream ``patch`` this restarts the stream and keeps the environment's previous state, as
    the Relay Proxy v9 does; in a ``put`` and in the cache only that environment is left out.
    (Also importable from :mod:`autoconfig_cache.models`.)
    """


# -- the AutoConfig stream ------------------------------------------------------------------------


class StreamError(AutoConfigCacheError):
    """The AutoConfig stream failed; the client drops the connection and opens a new one."""


class StreamHTTPError(StreamError):
    """The stream answered with an HTTP status other than 200. The client retries.

    (Also importable from :mod:`autoconfig_cache.stream.client`.)
    """

    def __init__(self, status: int, message: str | None = None) -> None:
        self.status = status
        super().__init__(message or f"unexpected HTTP status {status}")


class AuthenticationError(StreamHTTPError):
    """The stream rejected the AutoConfig key (HTTP 401 or 403).

    The client does not stop: it records this as the connection's last error and keeps retrying
    on the extended schedule, since the key can be made valid again in LaunchDarkly.
    """

    def __init__(self, status: int, key: str) -> None:
        from .secrets import mask

        super().__init__(
            status,
            f"the AutoConfig stream rejected the AutoConfig key {mask(key)} (HTTP {status}); "
            "check the key (LaunchDarkly > Integrations > Relay Proxy); retrying on the extended "
            "schedule in case it becomes valid",
        )


class SSEParseError(StreamError):
    """The byte stream is not a valid event stream (bad UTF-8, or a line over the size limit).

    The connection that produced it should be dropped and opened again. (Also importable from
    :mod:`autoconfig_cache.stream.sse`.)
    """


class MalformedEventError(StreamError):
    """An event's data is not the JSON its type requires; the connection should be restarted.

    (Also importable from :mod:`autoconfig_cache.stream.events`.)
    """


# -- the service and the tools --------------------------------------------------------------------


class PortInUseError(AutoConfigCacheError):
    """The status server's port is taken by another process.

    (Also importable from :mod:`autoconfig_cache.service.status`.)
    """


class KeyRotationError(AutoConfigCacheError):
    """:meth:`AutoConfigCache.rotate_keys` changed nothing; ``fields`` names the records why."""

    def __init__(self, message: str, fields: list[str]) -> None:
        self.fields = fields
        shown = ", ".join(fields[:10]) + (" ..." if len(fields) > 10 else "")
        super().__init__(f"{message} ({shown}); nothing was changed")


class UndecryptableRecordsError(KeyRotationError):
    """Records no configured key decrypts: add the key that wrote them as a previous key, or
    rotate with ``drop_undecryptable=True`` to delete them."""


class NewerRecordsError(KeyRotationError):
    """Records a newer release wrote, which this one cannot re-encrypt: rotate with that release,
    or with ``drop_undecryptable=True`` to re-encrypt the rest and keep those as they are."""


class PutDataError(AutoConfigCacheError):
    """A file of put data (``cache export`` output) cannot be imported; nothing is written."""


class NotPutDataError(PutDataError):
    """The data is not ``{"environments": {...}, "filters": {...}}``; ``detail`` says why, when
    more is known than the shape."""

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        self.detail = detail
        super().__init__(f"{message} ({detail})" if detail else message)


class NotJSONError(NotPutDataError):
    """The text is not JSON; ``detail`` is the decoder's message."""


class MalformedPutDataError(PutDataError):
    """Items of the put data are malformed; ``problems`` holds one error per item."""

    def __init__(self, problems: list[MalformedItemError]) -> None:
        self.problems = problems
        details = "; ".join(str(problem) for problem in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"{len(problems)} malformed item(s): {details}{more}")


class MaskedCredentialsError(PutDataError):
    """The put data holds masked credentials (exported without secrets); ``env_ids`` names the
    environments. Importing it would replace working keys with useless ones."""

    def __init__(self, env_ids: list[str]) -> None:
        self.env_ids = env_ids
        super().__init__(
            f"masked keys in environments {', '.join(env_ids[:5])}: the data was exported "
            "with its keys masked"
        )


class DemoFailed(AutoConfigCacheError):
    """A step of ``autoconfig-cache demo`` did not do what it shows."""


class CommandFailed(AutoConfigCacheError):
    """Ends a command line tool with a one-line message on stderr and exit status 1.

    (Also importable from :mod:`autoconfig_cache.cli.output`.)
    """
