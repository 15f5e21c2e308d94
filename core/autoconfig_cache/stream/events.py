"""Typed AutoConfig stream messages, parsed from server-sent events.

The stream sends four event types:

* ``put``: ``{"path": "/", "data": {"environments": {...}, "filters": {...}}}``;
* ``patch``: ``{"path": "/environments/<id>" | "/filters/<id>", "data": {...}}``;
* ``delete``: ``{"path": "/environments/<id>" | "/filters/<id>", "version": N}``;
* ``reconnect``: drop the connection and open it again.

:func:`parse_event` returns one of the message classes below, or ``None`` for a message to be
ignored (another path, an unknown event type); the reason is logged. Malformed JSON raises
:class:`MalformedEventError`, after which the caller restarts the connection.

Items are validated where they enter (:mod:`autoconfig_cache.validation`: ids, versions, strings
every store can hold). An invalid or malformed item is refused on its own, with a warning, and
counted by the manager: in a ``put`` it is left out (:attr:`PutMessage.rejected_items`; it keeps
what was known of it) and the rest applies; a ``patch`` or ``delete`` of one becomes a
:class:`RejectedMessage` and nothing is applied. A ``put`` is parsed into its items' JSON text,
each environment held as text and parsed only as far as validation needs (see
:class:`~autoconfig_cache.models.Environment`); an event msgspec refuses, and every ``patch`` and
``delete``, is parsed with :func:`~autoconfig_cache.jsoncodec.loads_lenient`, so that a lone
surrogate costs only the item holding it; nesting deeper than
:data:`~autoconfig_cache.jsoncodec.MAX_DEPTH`, or a number over the digit limit, still makes the
whole event malformed (no item is known before it is parsed).

A malformed credential set (:class:`~autoconfig_cache.models.MalformedCredentialsError`) is
handled as the Relay Proxy v9 handles it (ld-relay
``internal/autoconfig/stream_manager_malformed_credentials_test.go``): in a ``patch`` the event is
refused with :class:`MalformedEventError`, so the environment keeps its previous state, no version
is recorded (the replay after the reconnect is applied) and the stream restarts to get a fresh
``put``; in a ``put`` only that environment is left out (it keeps what was known about it) and
the connection stays up, since a new connection would bring the same data.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs
import msgspec

from .. import jsoncodec
from ..errors import MalformedEventError as MalformedEventError  # defined with every error
from ..errors import MalformedItemError
from ..gcpause import gc_paused
from ..models import (
    Environment,
    Filter,
    Item,
    MalformedCredentialsError,
    Snapshot,
    environment_from_text,
)
from ..records import ItemKind
from ..validation import check_item_id, check_version, item_id_problem
from .sse import ServerSentEvent

logger = logging.getLogger(__name__)

_PATH_PREFIXES = {
    "/environments/": ItemKind.ENVIRONMENT,
    "/filters/": ItemKind.FILTER,
}


@attrs.frozen
class PutMessage:
    """A complete state.

    :param snapshot: the items that parsed.
    :param skipped_ids: ids (by kind) that were present but malformed; a reconciliation keeps what
        it already knows about them rather than deleting them, so bad data costs nothing.
    :param rejected_items: how many items were refused as malformed or invalid.
    """

    snapshot: Snapshot
    skipped_ids: dict[ItemKind, frozenset[str]] = attrs.field(factory=dict)
    rejected_items: int = 0


@attrs.frozen
class PatchMessage:
    """One item, inserted or updated."""

    item: Item

    @property
    def kind(self) -> ItemKind:
        """The item's kind."""
        return self.item.kind


@attrs.frozen
class DeleteMessage:
    """One item deleted at ``version``."""

    kind: ItemKind
    item_id: str
    version: int


@attrs.frozen
class ReconnectMessage:
    """The server asks the client to reconnect."""


@attrs.frozen
class RejectedMessage:
    """A ``patch`` or ``delete`` of an item that is malformed or invalid: nothing is applied.

    The reason was logged as a warning; the manager counts the item.

    :param event_type: ``patch`` or ``delete``.
    :param reason: why it was refused (ids escaped; never a credential).
    """

    event_type: str
    reason: str


StreamMessage: TypeAlias = (
    PutMessage | PatchMessage | DeleteMessage | ReconnectMessage | RejectedMessage
)


class _PutData(msgspec.Struct):
    """A ``put``'s ``data`` in its usual shape: each item kept as its JSON text."""

    environments: dict[str, msgspec.Raw] | None = None
    filters: dict[str, msgspec.Raw] | None = None


class _PutBody(msgspec.Struct):
    """A ``put`` event's JSON; anything but the usual shape fails to decode into it."""

    path: Any = None
    data: _PutData | msgspec.UnsetType = msgspec.UNSET


_put_decoder = msgspec.json.Decoder(_PutBody)


def _parse_put_text(event: ServerSentEvent) -> PutMessage | None:
    """The :class:`PutMessage` of a ``put`` event, each environment held as its JSON text.

    Only the fields validation checks are parsed (see :meth:`Environment.from_json_bytes`), so
    10,000 environments cost their text plus a small object each, not a dict tree three times
    the size of the event. Any event not in the usual shape, or that msgspec refuses (a lone
    surrogate, ``NaN``, nesting msgspec cannot follow, ...), goes the general way,
    :func:`parse_put` over the parsed JSON: the same items, messages and refusals either way.
    """
    data = event.data_bytes
    try:
        if not jsoncodec.msgspec_depth_exact():
            raise RecursionError  # the general parser walks the value for MAX_DEPTH
        body = _put_decoder.decode(data)
    except (msgspec.DecodeError, RecursionError):
        general, clean = _load_object(event)
        return parse_put(general, clean=clean)
    if body.path != "/":
        logger.debug("ignoring put event with unrecognized path %r", body.path)
        return None
    if isinstance(body.data, msgspec.UnsetType):
        raise MalformedEventError("put event: 'data' must be a JSON object")
    raw_envs = body.data.environments or {}
    raw_filters = body.data.filters or {}
    del body, data  # the event's text is no longer needed once each item holds its own
    problems: list[MalformedItemError] = []
    environments: dict[str, Environment] = {}
    filters: dict[str, Filter] = {}
    for env_id, text in raw_envs.items():
        try:
            # bytes(): the item's own copy, so that the event's text can be freed.
            environments[env_id] = environment_from_text(bytes(text), env_id)
        except MalformedItemError as exc:
            problems.append(exc)
    for filter_id, text in raw_filters.items():
        try:
            filters[filter_id] = Filter.from_json(jsoncodec.loads(bytes(text)), filter_id=filter_id)
        except MalformedItemError as exc:
            problems.append(exc)
    return _put_message(
        Snapshot(environments=environments, filters=filters), problems, raw_envs, raw_filters
    )


def _load_object(event: ServerSentEvent) -> tuple[dict[str, Any], bool]:
    """The event's data as a JSON object, and whether it is ``clean`` (see
    :func:`~autoconfig_cache.jsoncodec.loads_lenient`)."""
    try:
        body, clean = jsoncodec.loads_lenient(event.data_bytes)
    except ValueError as exc:
        # The message says where, never what: the data may hold SDK keys.
        raise MalformedEventError(
            f"{event.type} event: data is not valid JSON ({exc.msg} at position {exc.pos})"
            if isinstance(exc, json.JSONDecodeError)
            else f"{event.type} event: data is not valid JSON"
        ) from None
    if not isinstance(body, dict):
        raise MalformedEventError(f"{event.type} event: data must be a JSON object")
    return body, clean


def _split_path(path: Any) -> tuple[ItemKind, str] | None:
    if not isinstance(path, str):
        return None
    for prefix, kind in _PATH_PREFIXES.items():
        if path.startswith(prefix):
            item_id = path[len(prefix) :]
            if item_id and "/" not in item_id:
                return kind, item_id
    return None


def parse_put(body: dict[str, Any], *, clean: bool = True) -> PutMessage | None:
    """The :class:`PutMessage` of a decoded ``put`` body, or ``None`` if its path is not ``/``.

    :param clean: ``False`` when the body may hold lone surrogates (see
        :func:`~autoconfig_cache.jsoncodec.loads_lenient`): each item's strings are then checked.
    """
    path = body.get("path")
    if path != "/":
        logger.debug("ignoring put event with unrecognized path %r", path)
        return None
    data = body.get("data")
    if not isinstance(data, dict):
        raise MalformedEventError("put event: 'data' must be a JSON object")
    try:
        snapshot, problems = Snapshot.from_put_data(data, check_strings=not clean)
    except MalformedItemError as exc:
        raise MalformedEventError(f"put event: {exc}") from None
    return _put_message(
        snapshot, problems, data.get("environments") or {}, data.get("filters") or {}
    )


def _put_message(
    snapshot: Snapshot,
    problems: list[MalformedItemError],
    raw_envs: Mapping[str, Any],
    raw_filters: Mapping[str, Any],
) -> PutMessage:
    """The :class:`PutMessage` of a put's items (``raw_*``: every id it sent) and refusals."""
    skipped: dict[ItemKind, frozenset[str]] = {}
    if problems:
        for problem in problems:
            # The item keeps what is already known of it (see PutMessage.skipped_ids).
            logger.warning("put event: ignoring an item: %s", problem)
        # An id no store can hold has no previous state to keep, here or in a store (and must
        # not reach the log lines that list kept items): it is left out like an absent item.
        skipped[ItemKind.ENVIRONMENT] = frozenset(
            k for k in raw_envs if k not in snapshot.environments and item_id_problem(k) is None
        )
        skipped[ItemKind.FILTER] = frozenset(
            k for k in raw_filters if k not in snapshot.filters and item_id_problem(k) is None
        )
    return PutMessage(snapshot=snapshot, skipped_ids=skipped, rejected_items=len(problems))


def parse_event(event: ServerSentEvent) -> StreamMessage | None:
    """Parse one server-sent event of the AutoConfig stream.

    :returns: the message, or ``None`` when the event is to be ignored (the reason is logged).
    :raises MalformedEventError: the event's data is not valid JSON or not of the right shape.
    """
    if event.type == "reconnect":
        return ReconnectMessage()
    if event.type == "put":
        with gc_paused():
            return _parse_put_text(event)
    if event.type == "patch":
        return _parse_patch(*_load_object(event))
    if event.type == "delete":
        return _parse_delete(_load_object(event)[0])
    logger.warning("ignoring unknown event type %r", event.type)
    return None


def _rejected(event_type: str, reason: str) -> RejectedMessage:
    logger.warning("ignoring %s event: %s", event_type, reason)
    return RejectedMessage(event_type, reason)


def _target(event_type: str, body: dict[str, Any]) -> tuple[ItemKind, str] | RejectedMessage | None:
    """The kind and valid id a ``patch``/``delete`` path names; a :class:`RejectedMessage` for an
    invalid id; ``None`` (logged) for a path that names no item."""
    target = _split_path(body.get("path"))
    if target is None:
        logger.debug("ignoring %s event with unrecognized path %r", event_type, body.get("path"))
        return None
    kind, item_id = target
    try:
        check_item_id(kind.value, item_id)
    except MalformedItemError as exc:
        return _rejected(event_type, str(exc))
    return target


def _parse_patch(body: dict[str, Any], clean: bool) -> PatchMessage | RejectedMessage | None:
    target = _target("patch", body)
    if not isinstance(target, tuple):
        return target
    kind, item_id = target
    item: Item
    try:
        if kind is ItemKind.ENVIRONMENT:
            item = Environment.from_json(
                body.get("data"), expected_id=item_id, check_strings=not clean
            )
        else:
            item = Filter.from_json(body.get("data"), filter_id=item_id, check_strings=not clean)
    except MalformedCredentialsError as exc:
        # Nothing is applied; the reconnect brings a put with what LaunchDarkly holds.
        raise MalformedEventError(f"patch event refused: {exc}") from None
    except MalformedItemError as exc:
        return _rejected("patch", str(exc))
    return PatchMessage(item=item)


def _parse_delete(body: dict[str, Any]) -> DeleteMessage | RejectedMessage | None:
    target = _target("delete", body)
    if not isinstance(target, tuple):
        return target
    kind, item_id = target
    version = body.get("version")
    if type(version) is not int:
        raise MalformedEventError("delete event: 'version' must be an integer")
    try:
        # The version becomes a tombstone's, which the store must hold like an item's.
        check_version(f"{kind} {item_id!r}: delete version", version)
    except MalformedItemError as exc:
        return _rejected("delete", str(exc))
    return DeleteMessage(kind=kind, item_id=item_id, version=version)
