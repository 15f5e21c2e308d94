"""Turning the stream manager's handler calls into :class:`~.change.Change` objects.

:class:`ChangeTracker` is an AutoConfig handler: the service adds it beside its other handlers,
and it hands every change to a callback (the dispatcher's :meth:`~.dispatcher.SinkDispatcher.submit`,
which only enqueues). Two things the handler calls do not say, the tracker supplies:

* the previous state of an updated environment (``on_environment_updated`` gives only the new
  one): the tracker keeps the last state of every environment it was told about;
* where the first batch came from. The calls a complete configuration causes come before
  ``on_all_environments_received(source)``, which names the source. After that first one, every
  change comes from the stream (the cache is read once, at start-up, and only before any stream
  ``put``; ``docs/architecture.md``, "Runtime behaviour"), so only the first batch is held back,
  for the time it takes the manager to apply it (one pass, no network wait in between).

Payload filters are not tracked (see :mod:`.change`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from types import MappingProxyType

import attrs

from ..models import Environment
from ..stream.handler import BaseHandler, SnapshotSource
from .change import Change, ChangeKind, ChangeSource

logger = logging.getLogger(__name__)

#: What the tracker calls for each change. It must not block: it runs inside the stream
#: manager's processing of the stream.
ChangeCallback = Callable[[Change], None]


class ChangeTracker(BaseHandler):
    """An AutoConfig handler that reports every environment change to ``callback``.

    :param callback: called once per :class:`Change`, in stream order; must return quickly
        (enqueue, never deliver).
    """

    def __init__(self, callback: ChangeCallback) -> None:
        self._callback = callback
        self._environments: dict[str, Environment] = {}
        # Changes of the first complete configuration, until its source is known.
        self._first_batch: list[Change] | None = []

    @property
    def environments(self) -> Mapping[str, Environment]:
        """Every environment currently held, by id (a read-only view)."""
        return MappingProxyType(self._environments)

    def _emit(self, change: Change) -> None:
        if self._first_batch is not None:
            self._first_batch.append(change)
        else:
            self._callback(change)

    def on_environment_added(self, env: Environment) -> None:
        """An ``insert``."""
        self._environments[env.env_id] = env
        self._emit(Change(ChangeKind.INSERT, env))

    def on_environment_updated(self, env: Environment) -> None:
        """An ``update``, with the state the tracker last saw as ``previous``."""
        previous = self._environments.get(env.env_id)
        self._environments[env.env_id] = env
        if previous is None:
            # Not seen before (the tracker was attached late): for this process it is new.
            logger.debug("update of environment %s not seen before: sent as insert", env.env_id)
            self._emit(Change(ChangeKind.INSERT, env))
        else:
            self._emit(Change(ChangeKind.UPDATE, env, previous=previous))

    def on_environment_deleted(self, env: Environment) -> None:
        """A ``delete``, carrying the environment's last known state."""
        self._environments.pop(env.env_id, None)
        self._emit(Change(ChangeKind.DELETE, env))

    def on_all_environments_received(self, source: SnapshotSource) -> None:
        """Release the first batch with its source, then send ``initialized`` with every
        environment held."""
        change_source = (
            ChangeSource.CACHE if source is SnapshotSource.CACHE else ChangeSource.STREAM
        )
        batch, self._first_batch = self._first_batch, None
        for change in batch or ():
            self._callback(attrs.evolve(change, source=change_source))
        self._callback(
            Change(ChangeKind.INITIALIZED, source=change_source, environments=self._environments)
        )
