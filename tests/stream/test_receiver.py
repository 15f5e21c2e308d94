"""MessageReceiver: the ordering rules of docs/stream.md ("Ordering rules"), as pure unit tests."""

from __future__ import annotations

import attrs

from autoconfig_cache.stream.receiver import Action, MessageReceiver


@attrs.frozen
class Item:
    version: int


def receiver_with(**items: int) -> MessageReceiver[Item]:
    receiver: MessageReceiver[Item] = MessageReceiver()
    for item_id, version in items.items():
        receiver.upsert(item_id, Item(version))
    return receiver


def test_upsert_of_unknown_id_is_insert() -> None:
    assert receiver_with().upsert("a", Item(1)) is Action.INSERT


def test_upsert_with_higher_version_is_update() -> None:
    receiver = receiver_with(a=1)
    assert receiver.upsert("a", Item(2)) is Action.UPDATE
    assert receiver.get("a") == Item(2)


def test_upsert_with_same_or_lower_version_is_noop() -> None:
    receiver = receiver_with(a=5)
    assert receiver.upsert("a", Item(5)) is Action.NOOP
    assert receiver.upsert("a", Item(4)) is Action.NOOP
    assert receiver.get("a") == Item(5)


def test_delete_with_higher_version_is_delete_and_returns_the_item() -> None:
    receiver = receiver_with(a=5)
    assert receiver.delete("a", 6) == (Action.DELETE, Item(5))
    assert receiver.get("a") is None and receiver.is_deleted("a")
    assert len(receiver) == 0


def test_delete_with_same_or_lower_version_is_noop() -> None:
    receiver = receiver_with(a=5)
    assert receiver.delete("a", 5) == (Action.NOOP, None)
    assert receiver.get("a") == Item(5)


def test_delete_of_deleted_item_is_noop() -> None:
    receiver = receiver_with(a=5)
    receiver.delete("a", 6)
    assert receiver.delete("a", 7) == (Action.NOOP, None)
    assert receiver.known_version("a") == 7


def test_delete_of_unknown_id_leaves_tombstone() -> None:
    receiver = receiver_with()
    assert receiver.delete("a", 3) == (Action.NOOP, None)
    assert receiver.upsert("a", Item(3)) is Action.NOOP
    assert receiver.upsert("a", Item(4)) is Action.INSERT


def test_upsert_older_than_tombstone_is_noop_and_newer_is_insert() -> None:
    receiver = receiver_with(a=5)
    receiver.delete("a", 8)
    assert receiver.upsert("a", Item(7)) is Action.NOOP
    assert receiver.upsert("a", Item(9)) is Action.INSERT
    assert len(receiver) == 1


def test_retain_deletes_live_items_not_kept_and_tombstones_them() -> None:
    receiver = receiver_with(a=1, b=2, c=3)
    receiver.delete("c", 4)
    deleted = receiver.retain(lambda item_id: item_id == "a")
    assert deleted == [Item(2)]
    assert receiver.live_items() == {"a": Item(1)}
    assert receiver.upsert("b", Item(2)) is Action.NOOP  # tombstone at the item's version
    assert receiver.upsert("b", Item(3)) is Action.INSERT
