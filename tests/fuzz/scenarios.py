"""Hand-written scripts the fuzz test always runs first (``@example``), whatever it generates:
the issue's "done when" stream, so that every CI run covers it."""

from __future__ import annotations

import json
from typing import Any

from autoconfig_cache.records import ItemKind

from .model import ItemSpec, PatchEffect, PutEffect
from .script import Script
from .wire import Connection, Segment, join_lines


def environment(env_id: str, version: Any, **extra: Any) -> dict[str, Any]:
    """An environment's JSON (the SDK key has the shape the secret check looks for)."""
    sdk = "sdk-" + env_id.encode().hex().ljust(16, "0")[:16]
    raw = {"envID": env_id, "envKey": env_id, "projKey": "p", "sdkKey": {"value": sdk}}
    return {**raw, "version": version, **extra}


def event(event_type: str, body: dict[str, Any], **segment: Any) -> Segment:
    """One event, its JSON ASCII-escaped (so a lone surrogate is a ``\\uXXXX`` escape)."""
    data = json.dumps(body).encode()
    return Segment((f"event: {event_type}".encode(), b"data: " + data, b""), **segment)


def connection(*segments: Segment) -> Connection:
    """A 200 connection with CRLF line ends, cut in 7-byte chunks."""
    data = join_lines([line for s in segments for line in s.lines], [b"\r\n"], bom=False)
    return Connection(200, segments, tuple(data[i : i + 7] for i in range(0, len(data), 7)))


def done_when_script() -> Script:
    """Huge and negative versions, a lone surrogate, ``retry: 0`` and an endless event, around
    good items: the store must hold every good one, memory stay bounded, reconnects be spaced
    and the instance be ready. The second ``put`` is the last, so what the store must end with
    depends on both being applied item by item."""
    e1, e1_later, e4 = environment("e1", 1), environment("e1", 2), environment("e4", 1)
    f1 = {"projKey": "p", "key": "f1", "version": 1}
    huge_and_negative = {"e2": environment("e2", 2**62), "e3": environment("e3", -1)}
    surrogate = {"e5": environment("e5", 3, envName="x\ud800x")}
    first_put = event(
        "put",
        {"path": "/", "data": {"environments": {"e1": e1, **huge_and_negative}}},
        effect=PutEffect(
            (ItemSpec(ItemKind.ENVIRONMENT, "e1", 1, e1),),
            frozenset((ItemKind.ENVIRONMENT, env_id) for env_id in huge_and_negative),
        ),
        label="put[e1 v1, e2 v2**62, e3 v-1]",
    )
    second_put = event(
        "put",
        {"path": "/", "data": {"environments": {"e1": e1, **surrogate}, "filters": {"f1": f1}}},
        effect=PutEffect(
            (ItemSpec(ItemKind.ENVIRONMENT, "e1", 1, e1), ItemSpec(ItemKind.FILTER, "f1", 1, f1)),
            frozenset({(ItemKind.ENVIRONMENT, "e5")}),
        ),
        label="put[e1 v1, f1 v1, e5 with a lone surrogate]",
    )
    retry_zero = Segment((b"retry: 0",), label="retry: 0")
    huge_patch = event(
        "patch",
        {"path": "/environments/e1", "data": environment("e1", 2**70)},
        label="patch v2**70",
    )
    endless = Segment(
        (b"event: put", b"data: {"), endless=True, ends_connection=True, label="endless event"
    )
    patches = [
        event(
            "patch",
            {"path": f"/environments/{env['envID']}", "data": env},
            effect=PatchEffect(ItemSpec(ItemKind.ENVIRONMENT, env["envID"], env["version"], env)),
            label=f"patch {env['envID']} v{env['version']}",
        )
        for env in (e4, e1_later)
    ]
    reconnect = event("reconnect", {}, ends_connection=True, label="reconnect")
    return Script(
        (
            connection(first_put, retry_zero, second_put, huge_patch, endless),
            connection(retry_zero, *patches, reconnect),
        )
    )
