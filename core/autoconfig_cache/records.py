"""What crosses the boundary between the core and a store plugin.

Stores never see plaintext: a :class:`StoredRecord` carries the field name, the item's version
(so that a store can refuse to go back to an older one) and the encrypted blob.
"""

from __future__ import annotations

import enum

import attrs


class ItemKind(enum.StrEnum):
    """The two kinds of AutoConfig item."""

    ENVIRONMENT = "environment"
    FILTER = "filter"

    @property
    def field_prefix(self) -> str:
        """The prefix of this kind's store fields (``env`` or ``filter``), as the Relay Proxy uses."""
        return "env" if self is ItemKind.ENVIRONMENT else "filter"


#: ``env:`` and ``filter:`` by kind: :func:`field_name` runs once per item of every put.
FIELD_PREFIXES = {kind: f"{kind.field_prefix}:" for kind in ItemKind}


def field_name(kind: ItemKind, item_id: str) -> str:
    """The store field of an item: ``env:<envID>`` or ``filter:<filterID>``."""
    return FIELD_PREFIXES[kind] + item_id


def store_version(item_version: int, *, deleted: bool = False) -> int:
    """The version a store compares for an item at ``item_version``, or for its tombstone.

    Stores keep one integer per field and refuse to replace it with a lower one. Items are
    stored at ``2 * version`` and tombstones at ``2 * version + 1``, so that a deletion outranks
    the item it deleted at the same version (a ``put`` that drops an item records its tombstone
    at the item's own version), while any later version of the item outranks the deletion.
    """
    return 2 * item_version + (1 if deleted else 0)


#: The kind of each store field prefix (``env``, ``filter``), as :func:`parse_field` reads it.
FIELD_KINDS = {kind.field_prefix: kind for kind in ItemKind}


def parse_field(field: str) -> tuple[ItemKind, str] | None:
    """Split a store field into kind and id; ``None`` if it is not an item field."""
    prefix, _, item_id = field.partition(":")
    kind = FIELD_KINDS.get(prefix) if item_id else None  # no ":" leaves item_id empty
    return None if kind is None else (kind, item_id)


@attrs.frozen
class StoredRecord:
    """One encrypted item as a store keeps it.

    :param field: ``env:<id>`` or ``filter:<id>``.
    :param version: what stores compare for version-guarded writes: the item's version as
        :func:`store_version` encodes it (an integer that only grows). A store that cannot tell
        the version of a record it reads (e.g. one written by a Relay Proxy) returns 0.
    :param blob: the encrypted envelope, opaque to the store.
    :param deleted: the record is a tombstone (the item was deleted at ``version``). A store that
        declares ``keeps_tombstones_apart = True`` holds such records where a Relay Proxy sharing
        the store does not read them and returns them with ``deleted=True``; any other store may
        ignore the flag (the core also recognises a tombstone from its decrypted envelope).
    :param problem: set by a store that found something in its place it cannot return as a
        record (a value of the wrong type, a version that is not an integer, a field name that
        is not text): what is wrong, in words. The core skips such a record, reports it in the
        load report (``foreign-data``) and ``cache verify``, and the next full write replaces or
        removes it. ``None`` for every normal record.
    """

    field: str
    version: int
    blob: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    deleted: bool = False
    problem: str | None = None
