"""Version and tombstone bookkeeping for one kind of AutoConfig item.

The rules (DESIGN.md "Ordering", the same as the Relay Proxy's ``MessageReceiver``):

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


class _Entry(Generic[T]):
    __slots__ = ("item", "version")

    def __init__(self, item: T | None, version: int) -> None:
        self.item = item  # None: a tombstone
        self.version = version


class MessageReceiver(Generic[T]):
    """Known items of one kind, by id, with tombstones for deleted ones."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry[T]] = {}
        self._live = 0

    def upsert(self, item_id: str, item: T) -> Action:
        """Record ``item`` if its version is newer than what is known; say what happened."""
        entry = self._entries.get(item_id)
        if entry is None:
            self._entries[item_id] = _Entry(item, item.version)
            self._live += 1
            return Action.INSERT
        if item.version <= entry.version:
            return Action.NOOP
        was_tombstone = entry.item is None
        entry.item = item
        entry.version = item.version
        if was_tombstone:
            self._live += 1
            return Action.INSERT
        return Action.UPDATE

    def delete(self, item_id: str, version: int) -> tuple[Action, T | None]:
        """Delete ``item_id`` if ``version`` is newer than what is known.

        Returns the action and, for :attr:`Action.DELETE`, the item as it was before deletion.
        """
        entry = self._entries.get(item_id)
        if entry is None:
            self._entries[item_id] = _Entry(None, version)
            return Action.NOOP, None
        if version <= entry.version:
            return Action.NOOP, None
        previous = entry.item
        entry.item = None
        entry.version = version
        if previous is None:
            return Action.NOOP, None  # already deleted: only the tombstone's version moves on
        self._live -= 1
        return Action.DELETE, previous

    def retain(self, keep: Callable[[str], bool]) -> list[T]:
        """Delete (tombstone at the item's own version) every live item for which ``keep`` is
        false; return the deleted items."""
        deleted: list[T] = []
        for entry_id, entry in self._entries.items():
            if entry.item is not None and not keep(entry_id):
                deleted.append(entry.item)
                entry.item = None
        self._live -= len(deleted)
        return deleted

    def get(self, item_id: str) -> T | None:
        """The live item ``item_id``, or ``None`` if unknown or deleted."""
        entry = self._entries.get(item_id)
        return None if entry is None else entry.item

    def known_version(self, item_id: str) -> int | None:
        """The version of the item or tombstone ``item_id``; ``None`` if never seen."""
        entry = self._entries.get(item_id)
        return None if entry is None else entry.version

    def is_deleted(self, item_id: str) -> bool:
        """True if ``item_id`` has a tombstone."""
        entry = self._entries.get(item_id)
        return entry is not None and entry.item is None

    def items(self) -> Iterator[tuple[str, T]]:
        """The live items, by id."""
        for entry_id, entry in self._entries.items():
            if entry.item is not None:
                yield entry_id, entry.item

    def live_items(self) -> dict[str, T]:
        """A new dict of the live items, by id."""
        return dict(self.items())

    def __len__(self) -> int:
        return self._live
