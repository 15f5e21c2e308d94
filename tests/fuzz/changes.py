"""Segments that change the state: ``put``, ``patch`` and ``delete`` events the contract applies.

A ``put`` may also carry hostile items, which must be refused (keeping what was known of their
id), and an uncertain one (``items.py``).
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import strategies as st

from autoconfig_cache.records import ItemKind

from .events import event_segment, id_for, kinds, path_of
from .items import good_item, good_versions, hostile_item, uncertain_item
from .jsonvalues import shown
from .model import DeleteEffect, ItemSpec, PatchEffect, PutEffect, UncertainPatchEffect
from .wire import Segment

#: Levels of a ``put`` around an item (event, ``data``, ``environments``); a ``patch`` has one.
PUT_DEPTH = 3
PATCH_DEPTH = 1


@st.composite
def put_segment(draw: st.DrawFn, counter: itertools.count[int]) -> Segment:
    """A ``put``: good items, maybe hostile ones and an uncertain one."""
    collections: dict[ItemKind, dict[str, Any]] = {kind: {} for kind in ItemKind}
    good: list[ItemSpec] = []
    for kind in ItemKind:
        for item_id in draw(st.lists(id_for(kind), unique=True, max_size=3)):
            item = draw(good_item(kind, item_id))
            collections[kind][item_id] = item.raw
            good.append(item)
    labels = [f"{i.kind.field_prefix}:{i.item_id} v{i.version}" for i in good]
    refused = set()
    for _ in range(draw(st.integers(0, 2))):
        kind = draw(kinds)
        item, what = draw(
            hostile_item(kind, draw(id_for(kind) | st.just(f"h{next(counter)}")), credentials=True)
        )
        if item.item_id not in collections[kind]:
            collections[kind][item.item_id] = item.raw
            refused.add(item.key)
            labels.append(f"refused {kind.field_prefix}:{shown(item.item_id)} ({what})")
    uncertain = []
    if draw(st.integers(0, 3)) == 0:
        kind = draw(kinds)
        item = draw(uncertain_item(kind, f"u{next(counter)}", event_depth=PUT_DEPTH))
        collections[kind][item.item_id] = item.raw
        uncertain.append(item)
        labels.append(f"uncertain {kind.field_prefix}:{item.item_id} (deep)")
    data: dict[str, Any] = {
        "environments": collections[ItemKind.ENVIRONMENT],
        "filters": collections[ItemKind.FILTER],
    }
    if not data["filters"] and draw(st.booleans()):
        if draw(st.booleans()):
            del data["filters"]  # absent: no filters
        else:
            data["filters"] = None  # null: no filters
    effect = PutEffect(tuple(good), frozenset(refused), tuple(uncertain))
    body = {"path": "/", "data": data}
    return draw(event_segment("put", body, effect=effect, label=f"put[{', '.join(labels)}]"))


@st.composite
def patch_segment(draw: st.DrawFn) -> Segment:
    """A ``patch`` of a good item."""
    kind = draw(kinds)
    item = draw(good_item(kind, draw(id_for(kind))))
    body = {"path": path_of(kind, item.item_id), "data": item.raw}
    label = f"patch {kind.field_prefix}:{item.item_id} v{item.version}"
    return draw(event_segment("patch", body, effect=PatchEffect(item), label=label))


@st.composite
def uncertain_patch_segment(draw: st.DrawFn, counter: itertools.count[int]) -> Segment:
    """A ``patch`` of an uncertain (deeply nested) item."""
    kind = draw(kinds)
    item = draw(uncertain_item(kind, f"u{next(counter)}", event_depth=PATCH_DEPTH))
    body = {"path": path_of(kind, item.item_id), "data": item.raw}
    label = f"patch uncertain {kind.field_prefix}:{item.item_id} (deep)"
    return draw(event_segment("patch", body, effect=UncertainPatchEffect(item), label=label))


@st.composite
def delete_segment(draw: st.DrawFn) -> Segment:
    """A ``delete`` with a good path and version."""
    kind = draw(kinds)
    item_id = draw(id_for(kind))
    version = draw(good_versions)
    body = {"path": path_of(kind, item_id), "version": version}
    effect = DeleteEffect(kind, item_id, version)
    label = f"delete {kind.field_prefix}:{item_id} v{version}"
    return draw(event_segment("delete", body, effect=effect, label=label))
