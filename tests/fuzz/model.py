"""The state the stream should leave behind, from what the generator sent and the documented rules.

The ordering rules are the ones docs/stream.md ("Ordering rules") states, re-implemented here from
the documentation rather than imported from ``stream/receiver.py``, so that the harness checks the
manager against the contract and not against itself:

* an upsert is applied only when its version is above the known item's or tombstone's;
* a delete above the known version removes the item and leaves a tombstone at its version; a
  delete of an unknown item still records (or raises) the tombstone;
* a ``put`` upserts each of its items, then deletes (tombstone at the item's own version) every
  live item it lacks, except the ids it refused as malformed: those keep what was known.

Items whose fate the contract leaves open (see ``strategies.py``, "uncertain" items) are tracked
apart: each has an id of its own, so it cannot disturb the certain ones.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import attrs

from autoconfig_cache.records import ItemKind

ItemKey = tuple[ItemKind, str]


@attrs.frozen
class ItemSpec:
    """One item the generator sent: its kind, id, version and JSON (as sent)."""

    kind: ItemKind
    item_id: str
    version: int
    raw: dict[str, Any] = attrs.field(eq=False, repr=False)

    @property
    def key(self) -> ItemKey:
        """``(kind, id)``."""
        return (self.kind, self.item_id)


@attrs.frozen
class PutEffect:
    """A ``put`` as the contract sees it: good items, refused ids, uncertain items."""

    items: tuple[ItemSpec, ...]
    refused: frozenset[ItemKey] = frozenset()
    uncertain: tuple[ItemSpec, ...] = ()


@attrs.frozen
class PatchEffect:
    """A ``patch`` of a good item."""

    item: ItemSpec


@attrs.frozen
class UncertainPatchEffect:
    """A ``patch`` of an item the contract lets the manager either store or refuse."""

    item: ItemSpec


@attrs.frozen
class DeleteEffect:
    """A ``delete`` with a valid path and version."""

    kind: ItemKind
    item_id: str
    version: int


Effect = PutEffect | PatchEffect | UncertainPatchEffect | DeleteEffect


@attrs.define
class ExpectedState:
    """Live items and tombstones after the effects applied so far; ``maybe`` holds uncertain
    items that may be live (stored) or may have been refused."""

    live: dict[ItemKey, ItemSpec] = attrs.Factory(dict)
    tombstones: dict[ItemKey, int] = attrs.Factory(dict)
    maybe: dict[ItemKey, ItemSpec] = attrs.Factory(dict)

    def apply_all(self, effects: Iterable[Effect]) -> ExpectedState:
        """Apply ``effects`` in order; returns ``self``."""
        for effect in effects:
            self.apply(effect)
        return self

    def apply(self, effect: Effect) -> None:
        """Apply one delivered effect."""
        if isinstance(effect, PutEffect):
            self._put(effect)
        elif isinstance(effect, PatchEffect):
            self._upsert(effect.item)
        elif isinstance(effect, UncertainPatchEffect):
            self.maybe[effect.item.key] = effect.item
        else:
            self._delete((effect.kind, effect.item_id), effect.version)

    def _upsert(self, item: ItemSpec) -> None:
        current = self.live.get(item.key)
        known = current.version if current is not None else self.tombstones.get(item.key)
        if known is not None and item.version <= known:
            return
        self.tombstones.pop(item.key, None)
        self.live[item.key] = item

    def _delete(self, key: ItemKey, version: int) -> None:
        current = self.live.get(key)
        if current is not None:
            if version > current.version:
                del self.live[key]
                self.tombstones[key] = version
            return
        if version > self.tombstones.get(key, version - 1):
            self.tombstones[key] = version

    def _put(self, put: PutEffect) -> None:
        for item in put.items:
            self._upsert(item)
        sent = {item.key for item in put.items} | put.refused
        for key in [key for key in self.live if key not in sent]:
            self.tombstones[key] = self.live.pop(key).version
        uncertain = {item.key: item for item in put.uncertain}
        # An uncertain item a later put lacks is deleted if it had been stored.
        self.maybe = {key: item for key, item in self.maybe.items() if key in uncertain}
        self.maybe.update(uncertain)
