"""The plaintext item envelope ``{"kind", "modelVersion", "data"}``.

The item's JSON is kept as received, so fields a newer LaunchDarkly schema adds survive.
"""

from __future__ import annotations

from typing import Any

from .. import jsoncodec
from ..errors import MalformedEnvelopeError, UnknownKindError
from ..records import ItemKind
from .migrations import CURRENT_MODEL_VERSION, RELAY_MODEL_VERSION

_KINDS = {kind.value: kind for kind in ItemKind}


def encode_envelope(kind: ItemKind, item_json: Any, *, relay: bool, cached_at_ms: int) -> bytes:
    """Serialise an item into the envelope of the relay (model 1) or current model version."""
    if relay:
        envelope = {"kind": str(kind), "modelVersion": RELAY_MODEL_VERSION, "data": item_json}
    else:
        envelope = {
            "kind": str(kind),
            "modelVersion": CURRENT_MODEL_VERSION,
            "data": {"item": item_json, "cachedAt": cached_at_ms},
        }
    return jsoncodec.dumps(envelope)


def encode_tombstone_envelope(kind: ItemKind, version: int, *, cached_at_ms: int) -> bytes:
    """Serialise a tombstone. Always the current model version, in both formats: a Relay
    Proxy sharing the store skips (and logs) items of a model version it does not know, which
    is what it should do with a deleted item."""
    envelope = {
        "kind": str(kind),
        "modelVersion": CURRENT_MODEL_VERSION,
        "data": {"deleted": True, "version": version, "cachedAt": cached_at_ms},
    }
    return jsoncodec.dumps(envelope)


def decode_envelope(plaintext: bytes) -> tuple[ItemKind, int, Any]:
    """Parse an envelope into ``(kind, model version, data)``.

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
    return kind, model_version, envelope["data"]
