"""The conformance kit's checks of records a store cannot hold: a store may refuse one alone
(``PartialWriteError`` naming it, the others written) or hold it exactly; anything else fails.

Each test runs the kit with pytester against a store that breaks exactly that rule.
"""

from __future__ import annotations

import pytest

from tests.test_conformance_kit import failed_tests, kit_module, run_kit

pytest_plugins = ["pytester"]

#: The kit's tests of this contract.
REFUSAL_TESTS = {
    "test_set_all_with_a_record_it_cannot_hold_writes_the_others",
    "test_set_all_leaves_what_it_held_for_a_record_it_refuses",
    "test_upsert_of_a_record_it_cannot_hold_refuses_it_alone",
}
SELECT = ("-k", "cannot_hold or refuses")


def test_the_built_in_refusal_passes(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, kit_module("class Store(MemoryStore):\n    pass\n"), *SELECT)
    result.assert_outcomes(passed=len(REFUSAL_TESTS))


def test_a_store_that_holds_every_record_exactly_passes(pytester: pytest.Pytester) -> None:
    # A 0.1 store checks nothing: it holds the kit's out-of-range versions as they are.
    store = """
    class Store(MemoryStore):
        def _refusal(self, record):
            return None
    """
    result = run_kit(pytester, kit_module(store), *SELECT)
    result.assert_outcomes(passed=len(REFUSAL_TESTS))


def test_kit_catches_one_record_failing_the_whole_write(pytester: pytest.Pytester) -> None:
    # What the Redis store did with a negative version: StoreError for the whole set_all.
    store = """
    from autoconfig_cache.errors import StoreError

    class Store(MemoryStore):
        def _refusal(self, record):
            return None

        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            if any(r.version < 0 for r in records):
                raise StoreError("versions are never negative")
            await super().cache_set_all(records=records, rewrite_unchanged=rewrite_unchanged)
    """
    result = run_kit(pytester, kit_module(store), *SELECT)
    assert failed_tests(result) == REFUSAL_TESTS - {
        "test_upsert_of_a_record_it_cannot_hold_refuses_it_alone"
    }
    result.stdout.fnmatch_lines(["*one record must not fail the others*"])


def test_kit_catches_a_record_dropped_without_a_word(pytester: pytest.Pytester) -> None:
    # What the DynamoDB store did with an item over 400 KB: an ERROR log line, no error.
    store = """
    class Store(MemoryStore):
        def _refusal(self, record):
            return None

        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            kept = [r for r in records if r.version >= 0]
            await super().cache_set_all(records=kept, rewrite_unchanged=rewrite_unchanged)
    """
    result = run_kit(pytester, kit_module(store), *SELECT)
    assert "test_set_all_with_a_record_it_cannot_hold_writes_the_others" in failed_tests(result)


def test_kit_catches_a_refusal_that_deletes_what_was_held(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            accepted, refused = self._split_refused(records)
            await super().cache_set_all(records=accepted, rewrite_unchanged=rewrite_unchanged)
            self._raise_refused("set_all", refused)
    """
    result = run_kit(pytester, kit_module(store), *SELECT)
    assert failed_tests(result) == {"test_set_all_leaves_what_it_held_for_a_record_it_refuses"}


def test_kit_catches_a_refusal_that_names_the_wrong_record(pytester: pytest.Pytester) -> None:
    store = """
    from autoconfig_cache.errors import PartialWriteError, RefusedRecord

    class Store(MemoryStore):
        @hookimpl
        async def cache_upsert(self, record):
            if self._refusal(record):
                raise PartialWriteError(
                    "upsert", refused=[RefusedRecord("env:someone-else", 1, "why")]
                )
            return await super().cache_upsert(record=record)
    """
    result = run_kit(pytester, kit_module(store), *SELECT)
    assert failed_tests(result) == {"test_upsert_of_a_record_it_cannot_hold_refuses_it_alone"}
    result.stdout.fnmatch_lines(["*PartialWriteError.refused names*env:someone-else*"])
