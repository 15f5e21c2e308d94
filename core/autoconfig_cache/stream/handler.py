"""The interface through which the embedding application hears about AutoConfig changes.

Implement :class:`AutoConfigHandler` (or subclass :class:`BaseHandler` and override only what you
need). Every method may be a plain function or an ``async def`` coroutine function: the
:class:`~autoconfig_cache.stream.manager.StreamManager` awaits whatever a method returns when it is
awaitable. Calls are made one at a time, in stream order, and the next change is not applied
before the previous call has returned, so a handler never sees changes out of order. A slow
async handler therefore slows the processing of the stream (the connection itself stays open).

An exception raised by a handler method is logged and otherwise ignored: the manager's state
and the store are already updated, and one failing callback must not stop the stream.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from ..models import Environment, Filter

logger = logging.getLogger(__name__)


class SnapshotSource(enum.StrEnum):
    """Where the configuration being served came from."""

    NONE = "none"
    CACHE = "cache"
    STREAM = "stream"


@runtime_checkable
class AutoConfigHandler(Protocol):
    """Receives AutoConfig changes. Methods may return ``None`` or an awaitable."""

    def on_environment_added(self, env: Environment) -> Awaitable[None] | None:
        """A new environment (or one deleted earlier and now back with a higher version)."""

    def on_environment_updated(self, env: Environment) -> Awaitable[None] | None:
        """A known environment changed; ``env`` is the new state (higher version)."""

    def on_environment_deleted(self, env: Environment) -> Awaitable[None] | None:
        """An environment was deleted; ``env`` is its last known state."""

    def on_filter_added(self, filter: Filter) -> Awaitable[None] | None:
        """A new payload filter."""

    def on_filter_updated(self, filter: Filter) -> Awaitable[None] | None:
        """A known payload filter changed (higher version)."""

    def on_filter_deleted(self, filter: Filter) -> Awaitable[None] | None:
        """A payload filter was deleted; ``filter`` is its last known state."""

    def on_all_environments_received(self, source: SnapshotSource) -> Awaitable[None] | None:
        """A complete configuration has been applied: from the cache at start-up, or from a
        stream ``put``. Called after the individual added/updated/deleted calls of that put."""


class BaseHandler:
    """A handler that does nothing; subclass it and override the methods you need."""

    def on_environment_added(self, env: Environment) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_environment_added`."""
        return None

    def on_environment_updated(self, env: Environment) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_environment_updated`."""
        return None

    def on_environment_deleted(self, env: Environment) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_environment_deleted`."""
        return None

    def on_filter_added(self, filter: Filter) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_filter_added`."""
        return None

    def on_filter_updated(self, filter: Filter) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_filter_updated`."""
        return None

    def on_filter_deleted(self, filter: Filter) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_filter_deleted`."""
        return None

    def on_all_environments_received(self, source: SnapshotSource) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_all_environments_received`."""
        return None


def invoke_handler(
    method: Callable[..., Awaitable[None] | None], *args: Any
) -> Awaitable[None] | None:
    """Call one handler method; return what is left to await (errors logged), or ``None``.

    Synchronous handlers cost a plain call: no coroutine is created for them, which matters
    when a ``put`` of 10,000 environments makes 10,000 calls.
    """
    try:
        result = method(*args)
    except Exception:
        # The traceback may name the item, never its keys: items' reprs mask SDK/mobile keys.
        logger.exception("AutoConfig handler %s raised; continuing", _name(method))
        return None
    if result is None or not inspect.isawaitable(result):
        return None
    return _awaited(result, method)


async def _awaited(result: Awaitable[None], method: Callable[..., object]) -> None:
    try:
        await result
    except Exception:
        logger.exception("AutoConfig handler %s raised; continuing", _name(method))


async def call_handler(method: Callable[..., Awaitable[None] | None], *args: Any) -> None:
    """Call one handler method, awaiting its result if needed; log (never raise) its errors."""
    pending = invoke_handler(method, *args)
    if pending is not None:
        await pending


def _name(method: Callable[..., object]) -> str:
    return str(getattr(method, "__name__", method))


class FanOutHandler:
    """Hands every call to several handlers, in the order given (the service's log handler
    and the sinks' change tracker, say).

    Each handler is called as the manager calls one (:func:`invoke_handler`): an error in one is
    logged and never keeps the call from the others. Synchronous handlers cost plain calls; when
    some return awaitables, the result awaits them one after the other, in the order given, so
    every handler still sees the changes in stream order.
    """

    def __init__(self, *handlers: AutoConfigHandler) -> None:
        self.handlers = handlers

    def _each(self, method_name: str, *args: Any) -> Awaitable[None] | None:
        pending = [
            result
            for handler in self.handlers
            if (result := invoke_handler(getattr(handler, method_name), *args)) is not None
        ]
        return _await_all(pending) if pending else None

    def on_environment_added(self, env: Environment) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_environment_added`."""
        return self._each("on_environment_added", env)

    def on_environment_updated(self, env: Environment) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_environment_updated`."""
        return self._each("on_environment_updated", env)

    def on_environment_deleted(self, env: Environment) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_environment_deleted`."""
        return self._each("on_environment_deleted", env)

    def on_filter_added(self, filter: Filter) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_filter_added`."""
        return self._each("on_filter_added", filter)

    def on_filter_updated(self, filter: Filter) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_filter_updated`."""
        return self._each("on_filter_updated", filter)

    def on_filter_deleted(self, filter: Filter) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_filter_deleted`."""
        return self._each("on_filter_deleted", filter)

    def on_all_environments_received(self, source: SnapshotSource) -> Awaitable[None] | None:
        """See :meth:`AutoConfigHandler.on_all_environments_received`."""
        return self._each("on_all_environments_received", source)


async def _await_all(pending: list[Awaitable[None]]) -> None:
    # invoke_handler's awaitables already log (never raise) their handler's errors.
    for awaitable in pending:
        await awaitable
