"""Records the store refused: which ones are refused now, how many were, and one log line each.

A store refuses a record it cannot hold (DynamoDB's 400 KB item limit, a version outside the
valid range, ...) and writes the others (:class:`~autoconfig_cache.errors.PartialWriteError`
with ``refused``). Sending the record again at the same version would fail the same way, so the
cache facade remembers it here: the refusal is logged once, counted once, shown in ``/status``
and ``/metrics`` while it lasts, and the record is not sent again by ``upsert`` until its
version changes. It ends when the field is written, or drops out of the data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from .errors import RefusedRecord
from .records import StoredRecord

logger = logging.getLogger("autoconfig_cache.cache")


class StoreRefusals:
    """The refusals one cache facade has met: current ones by field, and a running count."""

    def __init__(self) -> None:
        self._current: dict[str, RefusedRecord] = {}
        self._total = 0

    @property
    def current(self) -> tuple[RefusedRecord, ...]:
        """The records refused now (their field was not written since), by field name."""
        return tuple(self._current[field] for field in sorted(self._current))

    @property
    def total(self) -> int:
        """Refusals met since the facade was created, each (field, version) counted once."""
        return self._total

    def is_refused(self, record: StoredRecord) -> bool:
        """Whether ``record`` was refused at this very version (so sending it again is useless)."""
        entry = self._current.get(record.field)
        return entry is not None and entry.version == record.version

    def note(self, refused: Iterable[RefusedRecord]) -> None:
        """Record refusals; log and count those not already current at the same version."""
        for entry in refused:
            known = self._current.get(entry.field)
            self._current[entry.field] = entry
            if known is not None and known.version == entry.version:
                continue
            self._total += 1
            # RefusedRecord.describe escapes the field: ids come from data.
            logger.warning(
                "the store refused %s; the other records were written, and this one is not "
                "sent again until its version changes",
                entry.describe(),
            )

    def resolved(self, fields: Iterable[str]) -> None:
        """``fields`` were written (or their write was not needed): no longer refused."""
        for field in fields:
            self._current.pop(field, None)

    def replace(self, refused: Iterable[RefusedRecord]) -> None:
        """After a full write: exactly ``refused`` are refused now (the rest were written or
        left the data); new ones are logged and counted."""
        entries = list(refused)
        fields = {entry.field for entry in entries}
        self.resolved([field for field in self._current if field not in fields])
        self.note(entries)
