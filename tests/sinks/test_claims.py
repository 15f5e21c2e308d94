"""The claim arithmetic of the delivery records (pure logic, no store)."""

from __future__ import annotations

import pytest

from autoconfig_cache.sinks.change import ChangeKind
from autoconfig_cache.sinks.claims import (
    MAX_ATTEMPT,
    MAX_LEDGER_VERSION,
    Phase,
    SlotState,
    claim_version,
    delivered_version,
    phase_of,
    read_slot,
    recordable,
)
from autoconfig_cache.storebase import MAX_STORED_VERSION


def test_every_claim_of_a_change_ranks_below_its_delivered_mark() -> None:
    claims = [claim_version(7, Phase.CHANGE, attempt) for attempt in range(MAX_ATTEMPT + 1)]
    assert claims == sorted(claims) and len(set(claims)) == len(claims)
    assert max(claims) < delivered_version(7, Phase.CHANGE)


def test_a_delete_ranks_above_the_change_it_deletes_and_below_the_next_version() -> None:
    assert delivered_version(7, Phase.CHANGE) < claim_version(7, Phase.DELETE, 0)
    assert delivered_version(7, Phase.DELETE) < claim_version(8, Phase.CHANGE, 0)


def test_the_highest_recordable_version_fits_the_stores_range() -> None:
    assert delivered_version(MAX_LEDGER_VERSION, Phase.DELETE) <= MAX_STORED_VERSION
    assert recordable(MAX_LEDGER_VERSION) and not recordable(MAX_LEDGER_VERSION + 1)
    with pytest.raises(ValueError, match="outside"):
        claim_version(MAX_LEDGER_VERSION + 1, Phase.CHANGE, 0)


def test_attempts_beyond_the_last_are_refused() -> None:
    with pytest.raises(ValueError, match="attempt"):
        claim_version(1, Phase.CHANGE, MAX_ATTEMPT + 1)


def test_phases_of_the_change_kinds() -> None:
    assert phase_of(ChangeKind.INSERT) is Phase.CHANGE
    assert phase_of(ChangeKind.UPDATE) is Phase.CHANGE
    assert phase_of(ChangeKind.DELETE) is Phase.DELETE
    with pytest.raises(ValueError, match="never claimed"):
        phase_of(ChangeKind.INITIALIZED)


def test_reading_a_slot() -> None:
    assert read_slot(None, 5, Phase.CHANGE).state is SlotState.OPEN
    # An older version's delivered mark leaves the newer change open.
    assert read_slot(delivered_version(4, Phase.DELETE), 5, Phase.CHANGE).state is SlotState.OPEN
    claimed = read_slot(claim_version(5, Phase.CHANGE, 3), 5, Phase.CHANGE)
    assert claimed.state is SlotState.CLAIMED and claimed.attempt == 3 and not claimed.settled
    delivered = read_slot(delivered_version(5, Phase.CHANGE), 5, Phase.CHANGE)
    assert delivered.state is SlotState.DELIVERED and delivered.settled
    # The delete of v5 was claimed: the insert of v5 seen late is out of date.
    late = read_slot(claim_version(5, Phase.DELETE, 0), 5, Phase.CHANGE)
    assert late.state is SlotState.SUPERSEDED and late.settled
    # ...while the delete itself is only claimed.
    assert read_slot(claim_version(5, Phase.DELETE, 0), 5, Phase.DELETE).state is SlotState.CLAIMED


def test_a_damaged_stored_version_reads_as_no_record() -> None:
    assert read_slot(True, 0, Phase.CHANGE).state is SlotState.OPEN
