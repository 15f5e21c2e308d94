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

import msgspec

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


class Extension(msgspec.Struct, frozen=True):
    """The fields of an envelope's extension object that this release reads (others are
    ignored); an absent field is ``None``, as ``null`` is."""

    cachedAt: Any = None
    deleted: Any = None
    version: Any = None


class _Envelope(msgspec.Struct):
    """An envelope with its ``data`` kept as JSON text; other fields are ignored, as before.
    An extension that is not an object (nor ``null``) fails here: the general path reports it."""

    kind: Any = None
    modelVersion: Any = None
    data: msgspec.Raw | msgspec.UnsetType = msgspec.UNSET
    extension: Extension | None = msgspec.field(default=None, name=EXTENSION_FIELD)


_envelope_decoder = msgspec.json.Decoder(_Envelope)


class _LegacyTombstone(msgspec.Struct, forbid_unknown_fields=True):
    """0.1's tombstone data: exactly these three fields (see :func:`legacy_tombstone`)."""

    deleted: Any = msgspec.UNSET
    version: Any = msgspec.UNSET
    cachedAt: Any = msgspec.UNSET


_legacy_tombstone_decoder = msgspec.json.Decoder(_LegacyTombstone)


def decode_envelope(
    plaintext: bytes,
) -> tuple[ItemKind, int, msgspec.Raw | Any, Extension | None]:
    """Parse an envelope into ``(kind, model version, data, extension)``.

    ``data`` is the item's JSON text as a :class:`msgspec.Raw` when msgspec read the envelope
    (the item is then built from its text, parsed only as far as validation needs, see
    :meth:`autoconfig_cache.models.Environment.from_json_bytes`), else the parsed value; read
    it with :func:`data_value` where the value is needed. ``extension`` holds the fields of
    the extension object this release reads (:class:`Extension`), ``None`` when the envelope
    has none (written by a Relay Proxy or by autoconfig-cache 0.1).

    :raises MalformedEnvelopeError: not JSON, not an object, or a field missing or mistyped.
    :raises UnknownKindError: the kind is not ``environment`` or ``filter``.
    """
    if jsoncodec.msgspec_depth_exact():
        try:
            fast = _envelope_decoder.decode(plaintext)
        except (msgspec.DecodeError, RecursionError):
            pass  # not an object, or JSON only the general parser reads: its checks decide
        else:
            kind = _KINDS.get(fast.kind) if type(fast.kind) is str else None
            model_version = fast.modelVersion
            if kind is not None and type(model_version) is int and type(fast.data) is msgspec.Raw:
                # What this release and a Relay Proxy write: no further check (runs per record).
                return kind, model_version, fast.data, fast.extension
            if fast.data is msgspec.UNSET:
                raise MalformedEnvelopeError("envelope has no 'data'")
            return _checked(fast.kind, model_version, fast.data, fast.extension)
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
    return _checked(kind_name, model_version, envelope["data"], envelope.get(EXTENSION_FIELD))


def _checked(
    kind_name: Any, model_version: Any, data: Any, extension: Any
) -> tuple[ItemKind, int, Any, Extension | None]:
    """The envelope's fields once their types are checked (see :func:`decode_envelope`)."""
    if isinstance(model_version, bool) or not isinstance(model_version, int):
        raise MalformedEnvelopeError("envelope's 'modelVersion' is missing or not an integer")
    kind = _KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise UnknownKindError(f"unknown item kind {kind_name!r}")
    if isinstance(extension, dict):
        extension = Extension(
            extension.get("cachedAt"), extension.get("deleted"), extension.get("version")
        )
    elif extension is not None and type(extension) is not Extension:
        raise MalformedEnvelopeError(f"envelope's {EXTENSION_FIELD!r} is not an object")
    return kind, model_version, data, extension


def data_value(data: msgspec.Raw | Any) -> Any:
    """The value of an envelope's ``data`` as :func:`decode_envelope` returned it."""
    return jsoncodec.loads(bytes(data)) if isinstance(data, msgspec.Raw) else data


def legacy_tombstone(data: msgspec.Raw | Any) -> tuple[int, int] | None:
    """``(version, cachedAt)`` if ``data`` is exactly a tombstone as 0.1 wrote it, else ``None``.

    0.1 wrote tombstones, in both formats, as model 2 envelopes whose data is exactly
    ``{"deleted": true, "version": N, "cachedAt": ms}`` (no extension field). No item has that
    shape (an environment has an ``envID``, a filter ``projKey`` and ``key``). ``data`` may be
    the JSON text (see :func:`decode_envelope`): an item's is refused at its first field.
    """
    if isinstance(data, msgspec.Raw):
        try:
            head = _legacy_tombstone_decoder.decode(data)
        except msgspec.DecodeError:
            return None  # not an object, or a field no tombstone has
        data = {
            name: value
            for name in _LegacyTombstone.__struct_fields__
            if (value := getattr(head, name)) is not msgspec.UNSET
        }
    if (
        type(data) is dict
        and data.keys() == {"deleted", "version", "cachedAt"}
        and data["deleted"] is True
        and type(data["version"]) is int
        and type(data["cachedAt"]) is int
    ):
        return data["version"], data["cachedAt"]
    return None
