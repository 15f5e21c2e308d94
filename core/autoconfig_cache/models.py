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


@attrs.frozen
class Environment:
    """A LaunchDarkly environment as the AutoConfig stream describes it."""

    env_id: str
    env_key: str
    env_name: str
    proj_key: str
    proj_name: str
    sdk_key: str = attrs.field(repr=mask)
    mob_key: str = attrs.field(repr=mask)
    expiring_sdk_key: ExpiringKey | None
    default_ttl: int
    secure_mode: bool
    version: int
    raw: JSONObject = attrs.field(repr=False, eq=False)

    kind = ItemKind.ENVIRONMENT

    @property
    def id(self) -> str:
        """The item id (the environment's ``envID``)."""
        return self.env_id

    @classmethod
    def from_json(cls, data: Any, *, expected_id: str | None = None) -> Environment:
        """Build an environment from its stream JSON.

        :param expected_id: the map key or path segment the item came under; an ``envID`` that
            differs from it is malformed (the Relay Proxy ignores such items).
        :raises MalformedItemError: when required fields are missing or of the wrong type.
        """
        if not isinstance(data, dict):
            raise MalformedItemError(
                f"environment must be a JSON object, got {type(data).__name__}"
            )
        env_id = _require_str(data, "envID", "environment")
        what = f"environment {env_id!r}"
        if expected_id is not None and env_id != expected_id:
            raise MalformedItemError(
                f"{what}: envID does not match the key it was sent under ({expected_id!r})"
            )
        sdk = data.get("sdkKey")
        if not isinstance(sdk, dict):
            raise MalformedItemError(f"{what}: field 'sdkKey' must be an object")
        sdk_value = sdk.get("value")
        if not isinstance(sdk_value, str):
            raise MalformedItemError(f"{what}: field 'sdkKey.value' must be a string")
        expiring = sdk.get("expiring")
        expiring_key: ExpiringKey | None = None
        if (
            isinstance(expiring, dict)
            and isinstance(expiring.get("value"), str)
            and expiring["value"]
        ):
            timestamp = expiring.get("timestamp", 0)
            expiring_key = ExpiringKey(
                value=expiring["value"], timestamp=timestamp if isinstance(timestamp, int) else 0
            )
        default_ttl = data.get("defaultTtl", 0)
        return cls(
            env_id=env_id,
            env_key=_require_str(data, "envKey", what),
            env_name=str(data.get("envName", "")),
            proj_key=_require_str(data, "projKey", what),
            proj_name=str(data.get("projName", "")),
            sdk_key=sdk_value,
            mob_key=str(data.get("mobKey", "")),
            expiring_sdk_key=expiring_key,
            default_ttl=default_ttl if isinstance(default_ttl, int) else 0,
            secure_mode=bool(data.get("secureMode", False)),
            version=_require_int(data, "version", what),
            raw=data,
        )

    def to_json(self) -> JSONObject:
        """The item's JSON exactly as received (unknown fields included)."""
        return self.raw


@attrs.frozen
class Filter:
    """A payload filter. Its id is the map key or path segment, not a JSON field."""

    filter_id: str
    proj_key: str
    key: str
    version: int
    raw: JSONObject = attrs.field(repr=False, eq=False)

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
class Snapshot:
    """A complete AutoConfig state: every environment and filter, keyed by id."""

    environments: Mapping[str, Environment] = attrs.field(factory=dict)
    filters: Mapping[str, Filter] = attrs.field(factory=dict)

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
