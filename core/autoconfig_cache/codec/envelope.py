"""The plaintext item envelope, as the Relay Proxy reads it, plus this project's extension.

An item (both storage formats)::

    {"kind": "environment", "modelVersion": 2, "data": <item JSON as received>,
     "x-autoconfig-cache": {"cachedAt": <ms since the epoch>}}

A tombstone (the record of a deletion)::

    {"kind": "environment", "modelVersion": 2, "data": "deleted",
     "x-autoconfig-cache": {"deleted": true, "version": <item version>, "cachedAt": <ms>}}

``kind``, ``modelVersion`` and ``data`` are the Relay Proxy's ``CachedItem`` (ld-relay
``internal/autoconfigcache/model.go``). The extension field is ignored by a Relay Proxy (Go's
``encoding/json`` skips unknown fields); its name is one no Go struct field would match, so
a later Relay Proxy adding envelope fields cannot collide with it. A tombstone's ``data`` is a
JSON string: a Relay Proxy that reads one fails to decode it as an environment or a filter and
skips it, instead of loading an empty item.

The item's JSON is kept as received, so fields a newer LaunchDarkly schema adds survive.
"""

from __future__ import annotations

from typing import Any

from .. import jsoncodec
from ..errors import MalformedEnvelopeError, UnknownKindError
from ..records import ItemKind
from .migrations import CURRENT_MODEL_VERSION

EXTENSION_FIELD = "x-autoconfig-cache"
TOMBSTONE_DATA = "deleted"

_KINDS = {kind.value: kind for kind in ItemKind}


def encode_envelope(kind: ItemKind, item_json: Any, *, cached_at_ms: int) -> bytes:
    """Serialise an item into the current model version's envelope."""
    envelope = {
        "kind": str(kind),
        "modelVersion": CURRENT_MODEL_VERSION,
        "data": item_json,
        EXTENSION_FIELD: {"cachedAt": cached_at_ms},
    }
    return jsoncodec.dumps(envelope)


def encode_tombstone_envelope(kind: ItemKind, version: int, *, cached_at_ms: int) -> bytes:
    """Serialise a tombstone: marked in the extension field, ``data`` no item can be."""
    envelope = {
        "kind": str(kind),
        "modelVersion": CURRENT_MODEL_VERSION,
        "data": TOMBSTONE_DATA,
        EXTENSION_FIELD: {"deleted": True, "version": version, "cachedAt": cached_at_ms},
    }
    return jsoncodec.dumps(envelope)


def decode_envelope(plaintext: bytes) -> tuple[ItemKind, int, Any, dict[str, Any] | None]:
    """Parse an envelope into ``(kind, model version, data, extension)``.

    ``extension`` is ``None`` when the envelope has none (written by a Relay Proxy or by
    autoconfig-cache 0.1).

    :raises MalformedEnvelopeError: not JSON, not an object, or a field missing or mistyped.
    :raises UnknownKindError: the kind is not ``environment`` or ``filter``.
    """
    try:
        envelope = jsoncodec.loads(plaintext)
    except (UnicodeDecodeError, jsoncodec.JSONDecodeError) as exc:
        raise MalformedEnvelopeError(
            f"envelope is not valid JSON: {exc.msg if hasattr(exc, 'msg') else exc}"
        ) from None
    if not isinstance(envelope, dict):
        raise MalformedEnvelopeError("envelope is not a JSON object")
    kind_name = envelope.get("kind")
    model_version = envelope.get("modelVersion")
    if "data" not in envelope:
        raise MalformedEnvelopeError("envelope has no 'data'")
    if isinstance(model_version, bool) or not isinstance(model_version, int):
        raise MalformedEnvelopeError("envelope's 'modelVersion' is missing or not an integer")
    kind = _KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise UnknownKindError(f"unknown item kind {kind_name!r}")
    extension = envelope.get(EXTENSION_FIELD)
    if extension is not None and not isinstance(extension, dict):
        raise MalformedEnvelopeError(f"envelope's {EXTENSION_FIELD!r} is not an object")
    return kind, model_version, envelope["data"], extension


def legacy_tombstone(data: Any) -> tuple[int, int] | None:
    """``(version, cachedAt)`` if ``data`` is exactly a tombstone as 0.1 wrote it, else ``None``.

    0.1 wrote tombstones, in both formats, as model 2 envelopes whose data is exactly
    ``{"deleted": true, "version": N, "cachedAt": ms}`` (no extension field). No item has that
    shape (an environment has an ``envID``, a filter ``projKey`` and ``key``).
    """
    if (
        type(data) is dict
        and data.keys() == {"deleted", "version", "cachedAt"}
        and data["deleted"] is True
        and type(data["version"]) is int
        and type(data["cachedAt"]) is int
    ):
        return data["version"], data["cachedAt"]
    return None
