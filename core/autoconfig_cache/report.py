"""What a cache load found: how many items loaded, which were skipped and why."""

from __future__ import annotations

import enum
from datetime import UTC, datetime

import attrs


class SkipReason(enum.StrEnum):
    """Why a stored record was not loaded."""

    UNDECRYPTABLE = "undecryptable"
    """Authentication failed: wrong or missing key, tampered, truncated or moved blob."""
    MALFORMED = "malformed"
    """The plaintext is not a valid envelope, or the item's JSON is not a valid item."""
    UNKNOWN_KIND = "unknown-kind"
    """The envelope's kind is neither ``environment`` nor ``filter``."""
    UNKNOWN_MODEL_VERSION = "unknown-model-version"
    """No installed migration brings the item to the current model version."""
    FOREIGN_FIELD = "foreign-field"
    """The store field is not ``env:<id>`` or ``filter:<id>``."""
    FOREIGN_DATA = "foreign-data"
    """The store holds something other than a record in that place: a value of the wrong type
    (text where bytes belong, a version that is not a number), a field name that is not text.
    The next full write replaces or removes it."""
    INVALID_VERSION = "invalid-version"
    """The stored version is an integer outside the range this project writes (see
    :mod:`autoconfig_cache.validation`): damaged or written by something else. The version
    guards treat it as unknown, so the next write of the item replaces it."""


@attrs.frozen
class SkippedItem:
    """One record that was not loaded. ``message`` never contains a secret."""

    field: str
    reason: SkipReason
    message: str

    def to_json(self) -> dict[str, str]:
        """A JSON-ready dict."""
        return {"field": self.field, "reason": str(self.reason), "message": self.message}


@attrs.frozen
class LoadReport:
    """The outcome of :meth:`AutoConfigCache.get_all`.

    :param environments: environments loaded.
    :param filters: filters loaded.
    :param tombstones: deleted items recorded in the store (not served; they stop older updates).
    :param skipped: records skipped, each with its reason.
    :param oldest_cached_at: when the oldest loaded item that records its cache time was
        written; ``None`` when none does (items a Relay Proxy wrote, or 0.1 in ``relay``).
    :param stale_key_fields: fields encrypted under a previous key (re-encrypted on next write
        or by ``autoconfig-cache cache rotate-key``).
    """

    environments: int = 0
    filters: int = 0
    tombstones: int = 0
    skipped: tuple[SkippedItem, ...] = ()
    oldest_cached_at: datetime | None = None
    stale_key_fields: tuple[str, ...] = ()

    @property
    def loaded(self) -> int:
        """Items loaded, of both kinds."""
        return self.environments + self.filters

    def age_seconds(self, now: datetime | None = None) -> float | None:
        """Seconds since the oldest loaded item was cached, if known."""
        if self.oldest_cached_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.oldest_cached_at).total_seconds()

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "environments": self.environments,
            "filters": self.filters,
            "tombstones": self.tombstones,
            "skipped": [item.to_json() for item in self.skipped],
            "oldestCachedAt": self.oldest_cached_at.isoformat() if self.oldest_cached_at else None,
            "staleKeyFields": len(self.stale_key_fields),
        }
