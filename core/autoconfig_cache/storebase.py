"""The lifecycle every store shares, and the two seams the conformance kit uses.

Import it from :mod:`autoconfig_cache.plugin`. A store subclasses :class:`StoreBase`, runs each
operation through :meth:`StoreBase._track`, and releases its connections in
:meth:`StoreBase._release`; :meth:`StoreBase.cache_close` does the rest: it marks the store
closed, cancels the operations in flight, waits until they have unwound, then releases. After
that every tracked operation raises :class:`~autoconfig_cache.errors.StoreClosedError`.

The state lives in an object created on first use, so a subclass need not call
``super().__init__()`` (a ``__slots__`` subclass must leave room for ``__dict__``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import ClassVar, TypeVar

from .errors import StoreClosedError
from .hookspecs import hookimpl
from .inflight import InFlight

__all__ = ["StoreBase"]

T = TypeVar("T")


class _Lifecycle:
    """The closed flag (visible to worker threads) and the operations in flight."""

    def __init__(self) -> None:
        self.closed = threading.Event()
        self.in_flight = InFlight()


class StoreBase:
    """Base class of a store: tracked operations, cancel on close, idempotent close.

    Subclasses set :attr:`cache_key`, implement the ``cache_*`` store hooks with
    ``@hookimpl`` (``cache_get_all``, ``cache_set_all``, ``cache_upsert``, ``cache_delete``,
    ``cache_clear``; ``cache_create_storage`` if they have storage to create) and override
    :meth:`_release` to drop their connections. ``cache_close`` is provided.
    """

    #: The namespace the store's records live under (set by the subclass, usually from
    #: ``StoreSpec.cache_key``).
    cache_key: str

    #: How the store names itself in :class:`StoreClosedError` ("the redis store is closed").
    store_name: ClassVar[str] = "store"

    #: Records the store actually wrote or deleted, summed over its operations (the write-count
    #: probe the conformance kit reads to check that ``cache_set_all`` costs O(changed)). A
    #: store that does not maintain it sets :attr:`supports_write_probe` to ``False``.
    records_written: int = 0
    #: Whether :attr:`records_written` is maintained (the kit skips, visibly, when not).
    supports_write_probe: ClassVar[bool] = True

    @property
    def _lifecycle(self) -> _Lifecycle:
        state: _Lifecycle | None = self.__dict__.get("_store_lifecycle")
        if state is None:
            state = self.__dict__.setdefault("_store_lifecycle", _Lifecycle())
        return state

    @property
    def closed(self) -> bool:
        """True once :meth:`cache_close` has started. Safe to read from worker threads."""
        return self._lifecycle.closed.is_set()

    def _wait_closed(self, timeout: float) -> bool:
        """Block (a worker thread) up to ``timeout`` seconds or until close; True if closed."""
        return self._lifecycle.closed.wait(timeout)

    def _check_open(self) -> None:
        """Raise :class:`StoreClosedError` if the store is closed (for steps between awaits)."""
        if self.closed:
            raise StoreClosedError(self.store_name)

    async def _track(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` as a task that :meth:`cache_close` cancels.

        :raises StoreClosedError: when the store is closed before, during or as the operation
            ends (a close that interrupts it is reported as such, even when the client library
            swallowed the cancellation and completed anyway).
        :raises asyncio.CancelledError: when the caller itself is cancelled.
        """
        state = self._lifecycle
        if state.closed.is_set():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never awaited: close it so no warning is logged
            raise StoreClosedError(self.store_name)
        try:
            result = await state.in_flight.run(awaitable)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            # Cancelled by close rather than by our caller: say so with the typed error.
            if state.closed.is_set() and not (current is not None and current.cancelling()):
                raise StoreClosedError(self.store_name) from None
            raise
        if state.closed.is_set():
            raise StoreClosedError(self.store_name)
        return result

    async def _between_read_and_write(self, field: str | None) -> None:
        """Awaited by a store whose write is a client-side read-then-write, between the two.

        It does nothing; the conformance kit replaces it on an instance to hold the store there
        while another writer changes the data, which proves the write's guard.

        :param field: the field being written, or ``None`` for a whole-snapshot ``set_all``.
        """

    async def _release(self) -> None:
        """Drop connections, pools and threads. Called once, by :meth:`cache_close`, after the
        operations in flight have been cancelled and have unwound. Must not raise."""

    @hookimpl
    async def cache_create_storage(self) -> bool | None:
        """Nothing to create: ``False``. A store with tables or files to create overrides it."""
        return False

    @hookimpl
    async def cache_close(self) -> None:
        """Cancel operations in flight, wait for them to unwind, release. Idempotent."""
        state = self._lifecycle
        if state.closed.is_set():
            return
        state.closed.set()
        await state.in_flight.cancel_all()
        await self._release()
