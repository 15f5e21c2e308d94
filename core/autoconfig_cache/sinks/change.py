"""The change model: what a sink is told.

A :class:`Change` is one of ldactl's four change events (``insert``, ``update``, ``delete``,
``initialized``: ``ConfigChangeEvent`` in tarqd/ldactl ``ldactl/src/autoconfigclient.rs``), built
from this project's :class:`~autoconfig_cache.models.Environment`, plus where it came from: the
stream, or the cache while LaunchDarkly was not reachable.

Only environments are delivered to sinks. Payload filters are not: they carry no credential, no
ldactl hook knows them, and ldactl's own model has none.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import attrs

from ..models import Environment


class ChangeKind(enum.StrEnum):
    """What happened, with ldactl's names (the value of ``LDAC_EVENT_KIND``)."""

    #: An environment this process did not hold (new, or back after a delete).
    INSERT = "insert"
    #: A held environment changed: a higher version.
    UPDATE = "update"
    #: An environment was deleted; the change carries its last known state.
    DELETE = "delete"
    #: A complete configuration is held (the cache's, or a stream ``put``'s): sent once per
    #: complete configuration, after the inserts, updates and deletes it caused.
    INITIALIZED = "initialized"


class ChangeSource(enum.StrEnum):
    """Where a change came from."""

    #: The AutoConfig stream: LaunchDarkly said so.
    STREAM = "stream"
    #: The cache, at a start-up while the stream had not answered yet (an outage, say).
    CACHE = "cache"


def _frozen_environments(
    value: Mapping[str, Environment] | None,
) -> Mapping[str, Environment] | None:
    # A read-only copy: every sink sees the same mapping, and none may change another's view.
    return None if value is None else MappingProxyType(dict(value))


@attrs.frozen
class Change:
    """One change of the AutoConfig configuration, as delivered to a :class:`~.base.Sink`.

    :param kind: what happened.
    :param env: the environment concerned: its new state (``insert``, ``update``) or its last
        known state (``delete``); ``None`` for ``initialized``.
    :param previous: for ``update``, the state the environment had before; else ``None``.
    :param source: where the change came from (:class:`ChangeSource`).
    :param environments: for ``initialized``, every environment held, by id (a read-only
        mapping); else ``None``. A sink that needs the whole configuration (the output file)
        keeps it from the changes, and resets it from this.
    :raises ValueError: when the fields do not fit ``kind``.
    """

    kind: ChangeKind
    env: Environment | None = None
    previous: Environment | None = None
    source: ChangeSource = ChangeSource.STREAM
    environments: Mapping[str, Environment] | None = attrs.field(
        default=None, converter=_frozen_environments
    )

    def __attrs_post_init__(self) -> None:
        if self.kind is ChangeKind.INITIALIZED:
            if self.env is not None or self.previous is not None or self.environments is None:
                raise ValueError("an initialized change has environments, and no env or previous")
            return
        if self.env is None or self.environments is not None:
            raise ValueError(f"a {self.kind} change has an env, and no environments")
        if (self.kind is ChangeKind.UPDATE) != (self.previous is not None):
            raise ValueError("an update, and only an update, has a previous state")
        if self.previous is not None and self.previous.env_id != self.env.env_id:
            raise ValueError("an update's previous state is of another environment")

    @property
    def env_id(self) -> str | None:
        """The id of the environment concerned (``None`` for ``initialized``)."""
        return None if self.env is None else self.env.env_id

    @property
    def version(self) -> int | None:
        """The version of :attr:`env` (``None`` for ``initialized``)."""
        return None if self.env is None else self.env.version

    def describe(self) -> str:
        """A short label for log lines: ``insert 6123... v4``; ids are not secrets."""
        if self.env is None:
            return f"{self.kind} ({len(self.environments or {})} environments, {self.source})"
        return f"{self.kind} {self.env.env_id} v{self.env.version} ({self.source})"

    def involved_environments(self) -> Iterator[Environment]:
        """Every environment state this change carries (to learn the secrets to mask)."""
        if self.env is not None:
            yield self.env
        if self.previous is not None:
            yield self.previous
        if self.environments is not None:
            yield from self.environments.values()
