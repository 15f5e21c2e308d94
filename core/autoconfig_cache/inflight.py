"""Tracking operations in flight, so that ``close()`` can cancel them.

The cache facade and the stores share one rule: closing cancels whatever is still running and
waits for it to unwind, so no operation outlives the object that started it. Stores get it
through :class:`~autoconfig_cache.storebase.StoreBase` (``_track``), the cache facade directly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

T = TypeVar("T")


class InFlight:
    """A set of running operations that can all be cancelled at once."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` as a tracked task; :meth:`cancel_all` cancels it.

        :raises asyncio.CancelledError: when cancelled by :meth:`cancel_all` (or the caller).
        """
        task: asyncio.Task[T] = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return await task

    async def cancel_all(self) -> None:
        """Cancel every tracked operation and wait until each has finished unwinding."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
