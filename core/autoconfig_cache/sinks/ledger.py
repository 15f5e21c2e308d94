"""The delivery ledger: which changes a sink was already given, across restarts and instances.

The dispatcher asks the ledger before it delivers a change to a sink that is not
``per_instance``, and tells it how the delivery ended. The default, :class:`DeliverAllLedger`,
keeps nothing and delivers everything: ldactl's behaviour, where every start delivers the whole
configuration again. A ledger backed by the store (a later change) records, per cache key, sink
and environment, what was delivered, and lets several instances on one cache key claim each
delivery so that one of them runs it.

A ledger is told the whole :class:`~.change.Change`, not only an environment id and a version:
a ``delete`` carries the environment's last state, so its version is the one its ``insert`` or
``update`` had, and only the kind tells the two apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # annotations only: the service imports this module even with no sink
    from .change import Change


class DeliveryLedger(Protocol):
    """Remembers deliveries, so that none is made twice."""

    async def should_deliver(self, sink: str, change: Change) -> bool:
        """Whether ``change`` still has to be delivered to the sink named ``sink`` (``False``:
        already delivered, or claimed by another instance). Asked once per change, before the
        first attempt. An exception counts as ``True``: a change is never lost to a ledger
        failure (delivered at least once)."""
        ...

    async def delivered(self, sink: str, change: Change) -> None:
        """``change`` was delivered to ``sink``. An exception is logged; the delivery stands."""
        ...

    async def abandoned(self, sink: str, change: Change) -> None:
        """``change`` was dropped for ``sink`` (every attempt failed, or it can never be
        delivered): a claim on it can be released. An exception is logged."""
        ...


class DeliverAllLedger:
    """The default ledger: records nothing, so every change is delivered (as ldactl does)."""

    async def should_deliver(self, sink: str, change: Change) -> bool:
        """Always ``True``."""
        return True

    async def delivered(self, sink: str, change: Change) -> None:
        """Nothing to record."""

    async def abandoned(self, sink: str, change: Change) -> None:
        """Nothing to release."""
