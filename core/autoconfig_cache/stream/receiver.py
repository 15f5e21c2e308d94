"""Version and tombstone bookkeeping for one kind of AutoConfig item.

The rules (docs/stream.md, "Ordering rules"; the same as the Relay Proxy's ``MessageReceiver``):

* an upsert of an unknown id, or of an id whose last known state is a tombstone with a lower
  version, is an **insert**;
* an upsert with a higher version than the known item is an **update**;
* an upsert or delete whose version is <= the known version (item or tombstone) is a **no-op**;
* a delete of a live item with a higher version is a **delete** and leaves a tombstone, so that a
  late, older upsert cannot bring the item back;
* a delete of an unknown id is a no-op that still records a tombstone, for the same reason;
* :meth:`MessageReceiver.retain` (used by a ``put``) deletes every live item the put lacks.

The receiver only decides; the caller acts (notifies the handler, writes the store).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar


class Action(enum.Enum):
    """What the caller should do with a message the receiver has judged."""

    INSERT = "insert"
    UPDATE = "update"
    DELETE = "delete"
    NOOP = "noop"


class Versioned(Protocol):
    """What the receiver needs from an item: its version."""

    @property
    def version(self) -> int: ...


T = TypeVar("T", bound=Versioned)


class MessageReceiver(Generic[T]):
    """Known items of one kind, by id, with tombstones for deleted ones.

    Live items and tombstones are kept in two plain dicts (no wrapper object per item): a put of
    10,000 environments should cost little more than the items themselves.
    """

    def __init__(self) -> None:
        self._live: dict[str, T] = {}
        self._tombstones: dict[str, int] = {}

    def upsert(self, item_id: str, item: T) -> Action:
        """Record ``item`` if its version is newer than what is known; say what happened."""
        current = self._live.get(item_id)
        if current is not None:
            if item.version <= current.version:
                return Action.NOOP
            self._live[item_id] = item
            return Action.UPDATE
        tombstone = self._tombstones.get(item_id)
        if tombstone is not None:
            if item.version <= tombstone:
                return Action.NOOP
            del self._tombstones[item_id]
        self._live[item_id] = item
        return Action.INSERT

    def delete(self, item_id: str, version: int) -> tuple[Action, T | None]:
        """Delete ``item_id`` if ``version`` is newer than what is known.

        Returns the action and, for :attr:`Action.DELETE`, the item as it was before deletion.
        A delete of an unknown or deleted item is a no-op that still records (or raises) the
        tombstone's version.
        """
        current = self._live.get(item_id)
        if current is not None:
            if version <= current.version:
                return Action.NOOP, None
            del self._live[item_id]
            self._tombstones[item_id] = version
            return Action.DELETE, current
        tombstone = self._tombstones.get(item_id)
        if tombstone is None or version > tombstone:
            self._tombstones[item_id] = version
        return Action.NOOP, None

    def retain(self, keep: Callable[[str], bool]) -> list[T]:
        """Delete (tombstone at the item's own version) every live item for which ``keep`` is
        false; return the deleted items."""
        gone = [item_id for item_id in self._live if not keep(item_id)]
        deleted: list[T] = []
        for item_id in gone:
            item = self._live.pop(item_id)
            self._tombstones[item_id] = item.version
            deleted.append(item)
        return deleted

    def get(self, item_id: str) -> T | None:
        """The live item ``item_id``, or ``None`` if unknown or deleted."""
        return self._live.get(item_id)

    def known_version(self, item_id: str) -> int | None:
        """The version of the item or tombstone ``item_id``; ``None`` if never seen."""
        current = self._live.get(item_id)
        return current.version if current is not None else self._tombstones.get(item_id)

    def is_deleted(self, item_id: str) -> bool:
        """True if ``item_id`` has a tombstone."""
        return item_id in self._tombstones

    def tombstones(self) -> dict[str, int]:
        """A new dict of the deleted ids and the version each was deleted at."""
        return dict(self._tombstones)

    def items(self) -> Iterator[tuple[str, T]]:
        """The live items, by id."""
        return iter(self._live.items())

    def live_items(self) -> dict[str, T]:
        """A new dict of the live items, by id."""
        return dict(self._live)

    def __len__(self) -> int:
        return len(self._live)
