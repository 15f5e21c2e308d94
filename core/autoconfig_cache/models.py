"""AutoConfig items: environments and payload filters, and a snapshot of both.

Each item keeps the JSON it was built from (``raw``), unchanged, so that fields added by a newer
LaunchDarkly schema survive a round trip through the cache. The typed attributes are a view on
the fields this project uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import attrs

from .errors import MalformedItemError
from .records import ItemKind
from .secrets import mask

JSONObject: TypeAlias = dict[str, Any]


def _require_str(data: Mapping[str, Any], name: str, what: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise MalformedItemError(
            f"{what}: field {name!r} must be a string, got {type(value).__name__}"
        )
    return value


def _require_int(data: Mapping[str, Any], name: str, what: str, default: int | None = None) -> int:
    value = data.get(name, default)
    # bool is an int subclass; a version of `true` is malformed, not 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise MalformedItemError(
            f"{what}: field {name!r} must be an integer, got {type(value).__name__}"
        )
    return value


@attrs.frozen
class ExpiringKey:
    """An SDK key that LaunchDarkly keeps valid until ``timestamp`` (ms since the epoch)."""

    value: str = attrs.field(repr=mask)
    timestamp: int


@attrs.frozen(repr=False)
class Environment:
    """A LaunchDarkly environment as the AutoConfig stream describes it.

    Only the identity, the version and the JSON as received are stored; the other attributes
    are read from that JSON on access. A start-up from a cache of 10,000 environments builds
    10,000 of these, and building fewer attributes is most of what makes that fast.
    """

    env_id: str
    version: int
    raw: JSONObject

    kind = ItemKind.ENVIRONMENT

    @property
    def id(self) -> str:
        """The item id (the environment's ``envID``)."""
        return self.env_id

    @property
    def env_key(self) -> str:
        """The environment's key (``envKey``)."""
        return str(self.raw["envKey"])

    @property
    def env_name(self) -> str:
        """The environment's display name (``envName``)."""
        return str(self.raw.get("envName", ""))

    @property
    def proj_key(self) -> str:
        """The project's key (``projKey``)."""
        return str(self.raw["projKey"])

    @property
    def proj_name(self) -> str:
        """The project's display name (``projName``)."""
        return str(self.raw.get("projName", ""))

    @property
    def sdk_key(self) -> str:
        """The current server-side SDK key. A secret: mask it before showing it."""
        return str(self.raw["sdkKey"]["value"])

    @property
    def mob_key(self) -> str:
        """The mobile key. A secret: mask it before showing it."""
        return str(self.raw.get("mobKey", ""))

    @property
    def expiring_sdk_key(self) -> ExpiringKey | None:
        """The previous SDK key while it is still valid, if any."""
        expiring = self.raw["sdkKey"].get("expiring")
        if not isinstance(expiring, dict):
            return None
        value = expiring.get("value")
        if not isinstance(value, str) or not value:
            return None
        timestamp = expiring.get("timestamp", 0)
        return ExpiringKey(value=value, timestamp=timestamp if isinstance(timestamp, int) else 0)

    @property
    def default_ttl(self) -> int:
        """``defaultTtl`` in minutes (0 when absent or not a number)."""
        ttl = self.raw.get("defaultTtl", 0)
        return ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else 0

    @property
    def secure_mode(self) -> bool:
        """Whether secure mode is on."""
        return bool(self.raw.get("secureMode", False))

    def __repr__(self) -> str:
        return (
            f"Environment(env_id={self.env_id!r}, env_key={self.raw.get('envKey')!r}, "
            f"version={self.version}, sdk_key={mask(self.sdk_key)})"
        )

    @classmethod
    def from_json(cls, data: Any, *, expected_id: str | None = None) -> Environment:
        """Build an environment from its stream JSON.

        :param expected_id: the map key or path segment the item came under; an ``envID`` that
            differs from it is malformed (the Relay Proxy ignores such items).
        :raises MalformedItemError: when required fields are missing or of the wrong type.
        """
        # Exact type checks (``type(x) is int`` also rejects booleans) keep this cheap: it
        # runs once per environment on every start-up from the cache.
        if type(data) is not dict:
            raise MalformedItemError(
                f"environment must be a JSON object, got {type(data).__name__}"
            )
        env_id = data.get("envID")
        version = data.get("version")
        sdk = data.get("sdkKey")
        if (
            type(env_id) is not str
            or type(version) is not int
            or type(data.get("envKey")) is not str
            or type(data.get("projKey")) is not str
            or type(sdk) is not dict
            or type(sdk.get("value")) is not str
        ):
            raise _environment_problem(data)
        if expected_id is not None and env_id != expected_id:
            raise MalformedItemError(
                f"environment {env_id!r}: envID does not match the key it was sent under "
                f"({expected_id!r})"
            )
        return cls(env_id, version, data)

    def to_json(self) -> JSONObject:
        """The item's JSON exactly as received (unknown fields included)."""
        return self.raw


def _environment_problem(data: JSONObject) -> MalformedItemError:
    """The specific error for an environment that failed the fast checks."""
    try:
        env_id = _require_str(data, "envID", "environment")
        what = f"environment {env_id!r}"
        _require_str(data, "envKey", what)
        _require_str(data, "projKey", what)
        _require_int(data, "version", what)
    except MalformedItemError as problem:
        return problem
    return MalformedItemError(f"{what}: field 'sdkKey.value' must be a string")


@attrs.frozen
class Filter:
    """A payload filter. Its id is the map key or path segment, not a JSON field."""

    filter_id: str
    proj_key: str
    key: str
    version: int
    raw: JSONObject = attrs.field(repr=False)

    kind = ItemKind.FILTER

    @property
    def id(self) -> str:
        """The item id (the filter's id from the stream path or map key)."""
        return self.filter_id

    @classmethod
    def from_json(cls, data: Any, *, filter_id: str) -> Filter:
        """Build a filter from its stream JSON and the id it was sent under.

        :raises MalformedItemError: when required fields are missing or of the wrong type.
        """
        if not filter_id:
            raise MalformedItemError("filter: empty filter id")
        if not isinstance(data, dict):
            raise MalformedItemError(f"filter {filter_id!r} must be a JSON object")
        what = f"filter {filter_id!r}"
        return cls(
            filter_id=filter_id,
            proj_key=_require_str(data, "projKey", what),
            key=_require_str(data, "key", what),
            version=_require_int(data, "version", what),
            raw=data,
        )

    def to_json(self) -> JSONObject:
        """The item's JSON exactly as received (unknown fields included)."""
        return self.raw


Item: TypeAlias = Environment | Filter


def item_from_json(kind: ItemKind, item_id: str, data: Any) -> Item:
    """Build an item of ``kind`` from its JSON, checking it against ``item_id``."""
    if kind is ItemKind.ENVIRONMENT:
        return Environment.from_json(data, expected_id=item_id)
    return Filter.from_json(data, filter_id=item_id)


@attrs.frozen
class Tombstone:
    """The record that an item was deleted at ``version``.

    Kept in memory by the stream manager and written to the store, so that a late, older
    update — from a lagging process sharing the cache key, say — cannot bring the item back.
    """

    kind: ItemKind
    item_id: str
    version: int

    @property
    def id(self) -> str:
        """The id of the deleted item."""
        return self.item_id


@attrs.frozen
class Snapshot:
    """A complete AutoConfig state: every environment and filter, keyed by id.

    ``tombstones`` lists the items known to be deleted (and at which version); it is empty for
    a snapshot that came from a stream ``put``.
    """

    environments: Mapping[str, Environment] = attrs.field(factory=dict)
    filters: Mapping[str, Filter] = attrs.field(factory=dict)
    tombstones: tuple[Tombstone, ...] = ()

    def items(self) -> list[Item]:
        """All items, environments first."""
        return [*self.environments.values(), *self.filters.values()]

    def __len__(self) -> int:
        return len(self.environments) + len(self.filters)

    @classmethod
    def from_put_data(cls, data: Any) -> tuple[Snapshot, list[MalformedItemError]]:
        """Parse the ``data`` of a ``put`` event (``{"environments": {...}, "filters": {...}}``).

        Malformed items are left out and returned beside the snapshot, so that one bad item
        never costs the others.
        """
        if not isinstance(data, dict):
            raise MalformedItemError("put data must be a JSON object")
        problems: list[MalformedItemError] = []
        environments: dict[str, Environment] = {}
        filters: dict[str, Filter] = {}
        raw_envs = data.get("environments") or {}
        raw_filters = data.get("filters") or {}
        if not isinstance(raw_envs, dict) or not isinstance(raw_filters, dict):
            raise MalformedItemError("put data: 'environments' and 'filters' must be objects")
        for env_id, raw in raw_envs.items():
            try:
                environments[env_id] = Environment.from_json(raw, expected_id=env_id)
            except MalformedItemError as exc:
                problems.append(exc)
        for filter_id, raw in raw_filters.items():
            try:
                filters[filter_id] = Filter.from_json(raw, filter_id=filter_id)
            except MalformedItemError as exc:
                problems.append(exc)
        return cls(environments=environments, filters=filters), problems

    def to_put_data(self) -> JSONObject:
        """The ``put`` data shape of this snapshot, items as received."""
        return {
            "environments": {k: v.to_json() for k, v in self.environments.items()},
            "filters": {k: v.to_json() for k, v in self.filters.items()},
        }
