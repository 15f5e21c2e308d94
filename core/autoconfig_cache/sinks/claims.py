"""The arithmetic of delivery claims: one integer per sink and environment says who delivers what.

The delivery records (:mod:`.store_ledger`) live in a store, whose only atomic operation shared
by every backend is the version-guarded upsert (``cache_upsert``: write unless the same or a
higher version is held; ``True`` when it wrote). That is a compare-and-set on one integer, so
the whole state of a delivery is encoded in the record's store version:

``store_version = env_version * 64 + phase * 32 + step``

* ``phase`` 0 is an ``insert`` or ``update`` of the environment at ``env_version``; phase 1 is
  its ``delete`` (a delete carries the environment's last version, so it needs a slot of its
  own above the change it deletes, and below any later version of the environment);
* ``step`` 0..30 is a claim, by attempt: an instance delivers only when its upsert of the claim
  wrote, so of several instances one wins; a claim no one settles within the claim timeout is
  taken over by another instance with the next attempt number;
* ``step`` 31 means delivered: every claim of that change (or of an older one) is refused.

Everything only grows: a delivered change cannot be claimed again, and an older change seen
late (by a slow instance, or from the cache at a restart) cannot be claimed once a newer one
was. The stores refuse store versions above ``2**54 - 1``
(:data:`autoconfig_cache.storebase.MAX_STORED_VERSION`), so environment versions up to
``2**48 - 1`` (:data:`MAX_LEDGER_VERSION`) can be recorded; a change of a higher version is
delivered without a record, as without a store (LaunchDarkly's versions are small counters).
"""

from __future__ import annotations

import enum

import attrs

from ..storebase import MAX_STORED_VERSION
from .change import ChangeKind

#: Store versions per environment version.
SLOTS_PER_VERSION = 64
#: Store versions per phase (change, delete) of one environment version.
PHASE_SLOTS = 32
#: The highest claim attempt (attempts are numbered from 0).
MAX_ATTEMPT = 30
#: The step that marks a change delivered.
DELIVERED_STEP = PHASE_SLOTS - 1
#: The highest environment version whose deliveries can be recorded.
MAX_LEDGER_VERSION = (MAX_STORED_VERSION + 1) // SLOTS_PER_VERSION - 1


class Phase(enum.IntEnum):
    """Which of an environment version's two slots a change uses."""

    #: ``insert`` or ``update``: the environment at that version exists.
    CHANGE = 0
    #: ``delete``: the environment at that version was deleted.
    DELETE = 1


def phase_of(kind: ChangeKind) -> Phase:
    """The phase of a change of ``kind`` (not ``initialized``, which is never claimed)."""
    if kind is ChangeKind.INITIALIZED:
        raise ValueError("an initialized change is never claimed")
    return Phase.DELETE if kind is ChangeKind.DELETE else Phase.CHANGE


def recordable(env_version: int) -> bool:
    """Whether a change at ``env_version`` fits the store's version range."""
    return 0 <= env_version <= MAX_LEDGER_VERSION


def _base(env_version: int, phase: Phase) -> int:
    if not recordable(env_version):
        raise ValueError(f"version {env_version} is outside 0..{MAX_LEDGER_VERSION}")
    return env_version * SLOTS_PER_VERSION + phase * PHASE_SLOTS


def claim_version(env_version: int, phase: Phase, attempt: int) -> int:
    """The store version of claim ``attempt`` (0..30) on the change at ``env_version``."""
    if not 0 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt {attempt} is outside 0..{MAX_ATTEMPT}")
    return _base(env_version, phase) + attempt


def delivered_version(env_version: int, phase: Phase) -> int:
    """The store version that marks the change at ``env_version`` delivered."""
    return _base(env_version, phase) + DELIVERED_STEP


class SlotState(enum.Enum):
    """What a stored version says about one change."""

    #: Nothing about this change yet (no record, or one of an older change): it can be claimed.
    OPEN = "open"
    #: An instance claimed it (:attr:`Slot.attempt` says which attempt) and has not settled it.
    CLAIMED = "claimed"
    #: It was delivered.
    DELIVERED = "delivered"
    #: A later change of the environment was claimed or delivered: this one is out of date.
    SUPERSEDED = "superseded"


@attrs.frozen
class Slot:
    """A change's state as read from a stored version.

    :param state: see :class:`SlotState`.
    :param attempt: for ``CLAIMED``, the attempt number of the claim; else ``None``.
    """

    state: SlotState
    attempt: int | None = None

    @property
    def settled(self) -> bool:
        """Nothing is left to do for this change (delivered, or out of date)."""
        return self.state in (SlotState.DELIVERED, SlotState.SUPERSEDED)


def read_slot(stored: int | None, env_version: int, phase: Phase) -> Slot:
    """The state of the change at ``env_version`` (``phase``), given the record's stored
    version (``None``: no record; a version that is not a non-negative integer counts as
    none, as the stores' guards treat a damaged version)."""
    base = _base(env_version, phase)
    if stored is None or type(stored) is not int or stored < base:
        return Slot(SlotState.OPEN)
    step = stored - base
    if step < DELIVERED_STEP:
        return Slot(SlotState.CLAIMED, step)
    if step == DELIVERED_STEP:
        return Slot(SlotState.DELIVERED)
    return Slot(SlotState.SUPERSEDED)
