"""The conformance kit catches broken stores (and passes a correct one).

Each test writes a small test module with pytester: a store that breaks exactly one rule, a
``Test...`` subclass of :class:`StoreConformance`, and runs pytest on it in-process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import autoconfig_cache.testing

pytest_plugins = ["pytester"]

#: Options of every inner run: no cache files, no hypothesis plugin (re-importing it costs a
#: second per run), and an explicit fixture loop scope (silences a pytest-asyncio warning).
INNER_OPTIONS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
)

PREAMBLE = textwrap.dedent(
    """
    import asyncio
    import random
    import pytest
    import pytest_asyncio
    from autoconfig_cache.errors import StoreClosedError
    from autoconfig_cache.hookspecs import hookimpl
    from autoconfig_cache.records import StoredRecord
    from autoconfig_cache.stores.memory import MemoryStore
    from autoconfig_cache.testing import StoreConformance

    """
)


def kit_module(store_class: str, attributes: str = "many_items_count = 500") -> str:
    """A test module running the kit against ``store_class`` (source defining ``Store``).

    :param attributes: class attribute lines of the ``TestKit`` subclass (the default keeps
        runs against broken stores quick).
    """
    lines = [
        "class TestKit(StoreConformance):",
        *(f"    {line}" for line in attributes.splitlines()),
        "    @pytest_asyncio.fixture",
        "    async def store(self):",
        "        store = Store()",
        "        yield store",
        "        await store.cache_close()",
    ]
    return PREAMBLE + textwrap.dedent(store_class) + "\n\n" + "\n".join(lines) + "\n"


#: Independent runs of a race test against each broken store: it must fail every one of them.
RUNS = 20


def repeated_kit_module(store_class: str, runs: int = RUNS) -> str:
    """A test module running the kit ``runs`` times against ``store_class`` (one class per run,
    each with fresh stores), so that one pytest run shows how often a test catches the store."""
    source = kit_module(store_class).replace("class TestKit(", "class Kit(", 1)
    return source + "".join(
        f"\n\nclass TestRun{index:02d}(Kit):\n    pass\n" for index in range(runs)
    )


def failed_runs(result: pytest.RunResult, test_name: str) -> tuple[int, int]:
    """How many runs of ``test_name`` failed, out of how many ran."""
    failed = ran = 0
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if report.when == "call" and report.nodeid.rsplit("::", 1)[-1] == test_name:
            ran += 1
            failed += report.failed
    return failed, ran


def run_kit(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(test_kit_subject=source)
    return pytester.runpytest(*INNER_OPTIONS, "-o", "asyncio_mode=auto", *args)


def failed_tests(result: pytest.RunResult) -> set[str]:
    """Names of failed kit tests (without class or parameters)."""
    names = set()
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        if report.failed:
            names.add(report.nodeid.rsplit("::", 1)[-1].split("[", 1)[0])
    return names


CORRECT_STORE = """
class Store(MemoryStore):
    pass
"""


def test_kit_passes_a_correct_store(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, kit_module(CORRECT_STORE, attributes=""))
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 40


def test_kit_is_not_collected_without_a_test_subclass(pytester: pytest.Pytester) -> None:
    result = run_kit(pytester, PREAMBLE + "\nclass Unused(StoreConformance):\n    pass\n")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_kit_runs_in_strict_asyncio_mode(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_kit_subject=kit_module(CORRECT_STORE))
    result = pytester.runpytest(
        *INNER_OPTIONS, "-o", "asyncio_mode=strict", "-k", "upsert or close"
    )
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    assert outcomes["passed"] >= 10


def test_kit_catches_a_store_that_ignores_the_upsert_version_guard(
    pytester: pytest.Pytester,
) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_upsert(self, record):
            self._check_open()
            self._data.records[record.field] = record
            return True
    """
    result = run_kit(pytester, kit_module(store), "-k", "upsert")
    assert {
        "test_upsert_ignores_an_equal_version",
        "test_upsert_ignores_a_lower_version",
        "test_concurrent_upserts_keep_the_highest_version_of_every_field",
    } <= failed_tests(result)


def test_kit_catches_an_upsert_whose_check_and_write_are_not_atomic(
    pytester: pytest.Pytester,
) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_upsert(self, record):
            current = self._data.records.get(record.field)
            await asyncio.sleep(0)  # another writer runs between the check and the write
            if current is not None and current.version >= record.version:
                return False
            self._data.records[record.field] = record
            return True
    """
    result = run_kit(pytester, kit_module(store), "-k", "concurrent_upserts")
    assert failed_tests(result) == {
        "test_concurrent_upserts_keep_the_highest_version_of_every_field"
    }


def test_kit_catches_a_set_all_that_keeps_stale_fields(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            for record in records:
                await self.cache_upsert(record=record)
    """
    result = run_kit(pytester, kit_module(store), "-k", "set_all")
    assert {
        "test_set_all_removes_fields_absent_from_the_snapshot",
        "test_set_all_with_an_empty_snapshot_empties_the_store",
        "test_set_all_with_rewrite_unchanged_rewrites_an_equal_version",
    } <= failed_tests(result)


def test_kit_catches_a_set_all_that_overwrites_newer_versions(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            self._check_open()
            self._data.records = {record.field: record for record in records}
    """
    result = run_kit(pytester, kit_module(store), "-k", "set_all")
    assert {
        "test_set_all_keeps_a_stored_higher_version",
        "test_set_all_leaves_an_equal_version_alone_without_rewrite_unchanged",
        "test_concurrent_set_all_and_upserts_never_lower_a_version",
    } <= failed_tests(result)


def test_kit_catches_a_set_all_that_readers_see_half_done(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            self._data.records.clear()
            for record in records:
                self._data.records[record.field] = record
                await asyncio.sleep(0)
    """
    result = run_kit(pytester, kit_module(store), "-k", "never_a_mixture")
    assert failed_tests(result) == {
        "test_concurrent_reader_sees_the_old_or_the_new_snapshot_never_a_mixture"
    }


def test_kit_catches_a_delete_without_a_version_guard(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_delete(self, field, version):
            self._check_open()
            return self._data.records.pop(field, None) is not None
    """
    result = run_kit(pytester, kit_module(store), "-k", "delete")
    assert failed_tests(result) == {
        "test_delete_keeps_a_field_stored_at_an_equal_version",
        "test_delete_keeps_a_field_stored_at_a_higher_version",
        "test_delete_removes_a_tombstone_stored_at_a_lower_version_only",
    }


def test_kit_catches_a_store_that_keeps_working_after_close(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_close(self):
            pass
    """
    result = run_kit(pytester, kit_module(store), "-k", "close")
    failed = failed_tests(result)
    assert "test_operation_after_close_raises_store_closed" in failed
    assert "test_close_of_an_unused_store_succeeds" in failed


def test_kit_catches_a_close_that_leaves_operations_hanging(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_get_all(self):
            self._check_open()
            await asyncio.Event().wait()  # an operation that only close could stop
    """
    result = run_kit(
        pytester,
        kit_module(store, "hang_guard_seconds = 0.2\nmany_items_count = 500"),
        "-k",
        "in_flight_get_all",
    )
    assert failed_tests(result) == {"test_close_cancels_an_in_flight_get_all"}
    result.stdout.fnmatch_lines(["*still running*"])


def test_kit_catches_a_store_returning_mutable_blobs(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_get_all(self):
            self._check_open()
            return [StoredRecord(r.field, r.version, bytearray(r.blob))
                    for r in self._data.records.values()]
    """
    result = run_kit(pytester, kit_module(store), "-k", "round_trip")
    assert "test_set_all_then_get_all_round_trips_fields_versions_and_blobs" in failed_tests(result)
    result.stdout.fnmatch_lines(["*blob of * is not bytes*"])


def test_kit_catches_a_store_that_loses_large_items(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_upsert(self, record):
            if len(record.blob) > 100_000:  # silently truncates, as a size limit might
                record = StoredRecord(record.field, record.version, record.blob[:100_000])
            return await super().cache_upsert(record=record)
    """
    result = run_kit(pytester, kit_module(store), "-k", "large")
    assert failed_tests(result) == {"test_large_item_upsert_round_trips"}


def test_kit_large_item_size_is_a_class_attribute(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_upsert(self, record):
            assert len(record.blob) <= 1000, "store refuses blobs over 1000 bytes"
            return await super().cache_upsert(record=record)
    """
    result = run_kit(
        pytester, kit_module(store, "large_item_size = 1000"), "-k", "large_item_upsert"
    )
    result.assert_outcomes(passed=1)


def test_kit_skips_the_tombstone_capability_checks_visibly_for_a_store_without_it(
    pytester: pytest.Pytester,
) -> None:
    store = """
    class Store(MemoryStore):
        keeps_tombstones_apart = False
    """
    result = run_kit(pytester, kit_module(store), "-rs", "-k", "tombstone")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0, result.stdout.str()
    # The generic check (a tombstone is a guarded record) still runs; the capability's are
    # skipped, each with a reason naming the attribute, never passed silently.
    assert outcomes["passed"] == 1
    assert outcomes["skipped"] >= 10
    result.stdout.fnmatch_lines(["*SKIPPED*does not declare keeps_tombstones_apart = True*"])


def test_kit_catches_a_store_that_declares_the_capability_but_drops_the_deleted_flag(
    pytester: pytest.Pytester,
) -> None:
    store = """
    class Store(MemoryStore):
        keeps_tombstones_apart = True

        @hookimpl
        async def cache_get_all(self):
            self._check_open()
            return [StoredRecord(r.field, r.version, r.blob)
                    for r in self._data.records.values()]
    """
    result = run_kit(pytester, kit_module(store), "-k", "tombstone")
    failed = failed_tests(result)
    assert {
        "test_upserted_tombstone_round_trips_with_deleted_true",
        "test_set_all_round_trips_items_and_tombstones_with_their_deleted_flags",
        "test_tombstone_at_a_higher_version_replaces_the_item",
    } <= failed
    # The flag is all this store loses: guards and plain records still pass.
    assert "test_tombstone_records_are_version_guarded_like_any_record" not in failed


def test_kit_catches_a_version_guard_that_ignores_the_other_kind_of_record(
    pytester: pytest.Pytester,
) -> None:
    # The bug of a store that keeps items and tombstones in two places and checks only the one
    # it writes to.
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_upsert(self, record):
            self._check_open()
            current = self._data.records.get(record.field)
            if (current is not None and current.deleted == record.deleted
                    and current.version >= record.version):
                return False
            self._data.records[record.field] = record
            return True
    """
    result = run_kit(pytester, kit_module(store), "-k", "tombstone or item")
    failed = failed_tests(result)
    assert {
        "test_tombstone_at_an_equal_or_lower_version_leaves_the_item",
        "test_item_at_an_equal_or_lower_version_leaves_the_tombstone",
        "test_tombstone_records_are_version_guarded_like_any_record",
    } <= failed
    assert "test_item_at_a_higher_version_replaces_the_tombstone" not in failed


def test_kit_catches_a_set_all_that_keeps_stale_tombstones(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            self._check_open()
            stored = self._data.records
            wanted = {record.field for record in records}
            for field in [f for f, r in stored.items() if f not in wanted and not r.deleted]:
                del stored[field]
                self.records_written += 1
            for record in records:
                current = stored.get(record.field)
                if current is None or current.version < record.version or (
                        rewrite_unchanged and current.version == record.version):
                    stored[record.field] = record
                    self.records_written += 1
    """
    result = run_kit(pytester, kit_module(store), "-k", "set_all")
    assert failed_tests(result) == {"test_set_all_removes_tombstones_absent_from_the_snapshot"}


def test_kit_catches_a_set_all_that_writes_tombstones_as_items(pytester: pytest.Pytester) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_set_all(self, records, rewrite_unchanged):
            live = [StoredRecord(r.field, r.version, r.blob) for r in records]
            await super().cache_set_all(records=live, rewrite_unchanged=rewrite_unchanged)
    """
    result = run_kit(pytester, kit_module(store), "-k", "set_all")
    assert {
        "test_set_all_turns_items_into_tombstones_and_back",
        "test_set_all_round_trips_items_and_tombstones_with_their_deleted_flags",
        "test_set_all_with_rewrite_unchanged_rewrites_an_equal_version_tombstone",
    } <= failed_tests(result)


# ---------------------------------------------------------------------------------------------
# races and cost: each broken variant fails the kit in every one of RUNS runs
# ---------------------------------------------------------------------------------------------

#: A round trip to a server, as a random pause (so that racing writers interleave differently in
#: every run, as they do against a real server).
ROUND_TRIP = "await asyncio.sleep(random.random() / 1000)"

#: A store whose set_all reads the stored versions, then writes what changed with per-record
#: guards (Dynamo-style conditional writes): correct. The broken variants below alter one part.
GUARDED_SET_ALL_STORE = """
class Store(MemoryStore):
    @hookimpl
    async def cache_set_all(self, records, rewrite_unchanged):
        await self._track(self._set_all(records, rewrite_unchanged))  # close cancels it

    async def _set_all(self, records, rewrite_unchanged):
        ROUND_TRIP
        seen = {field: stored.version for field, stored in self._data.records.items()}
        await self._between_read_and_write(None)
        ROUND_TRIP
        stored = self._data.records
        wanted = {record.field for record in records}
        for field, version in seen.items():
            current = stored.get(field)
            if field not in wanted and current is not None and DELETE_GUARD:
                del stored[field]
                self.records_written += 1
        for record in records:
            read = seen.get(record.field)
            if read is not None and not (read < record.version
                                         or (rewrite_unchanged and read == record.version)):
                continue  # unchanged according to the read
            current = stored.get(record.field)
            if WRITE_GUARD:
                stored[record.field] = record
                self.records_written += 1
""".replace("ROUND_TRIP", ROUND_TRIP)

#: The guards of the correct store: delete only what was read (or older), write only over a
#: lower version (or an equal one with rewrite_unchanged) stored now.
DELETE_GUARD = "current.version <= version"
WRITE_GUARD = (
    "current is None or current.version < record.version "
    "or (rewrite_unchanged and current.version == record.version)"
)


def guarded_store(delete_guard: str = DELETE_GUARD, write_guard: str = WRITE_GUARD) -> str:
    return GUARDED_SET_ALL_STORE.replace("DELETE_GUARD", delete_guard).replace(
        "WRITE_GUARD", write_guard
    )


def check_then_write_upsert(seam: bool) -> str:
    """(a) An upsert that reads the stored version, awaits, then writes."""
    hold = "await self._between_read_and_write(record.field)" if seam else "pass"
    return f"""
class Store(MemoryStore):
    @hookimpl
    async def cache_upsert(self, record):
        return await self._track(self._upsert(record))  # close cancels it

    async def _upsert(self, record):
        {ROUND_TRIP}
        current = self._data.records.get(record.field)
        {hold}
        {ROUND_TRIP}
        if current is not None and current.version >= record.version:
            return False
        self._data.records[record.field] = record
        self.records_written += 1
        return True
"""


#: (c) A set_all that rewrites the whole snapshot every time (guarded, so correct otherwise).
FULL_REWRITE_STORE = """
class Store(MemoryStore):
    @hookimpl
    async def cache_set_all(self, records, rewrite_unchanged):
        self._check_open()
        stored = self._data.records
        wanted = {record.field for record in records}
        for field in [field for field in stored if field not in wanted]:
            del stored[field]
            self.records_written += 1
        for record in records:
            current = stored.get(record.field)
            if current is None or current.version <= record.version:
                stored[record.field] = current if (
                    current is not None and current.version == record.version
                    and not rewrite_unchanged) else record
                self.records_written += 1  # it writes each record, changed or not
"""

BROKEN_VARIANTS = {
    # (a) caught by the barrier rounds whether or not the store uses the seam ...
    "check_then_write_upsert": (
        check_then_write_upsert(seam=False),
        "test_racing_upserts_write_a_record_once_and_keep_the_highest_version",
    ),
    # ... and, when it does, by the held interleaving.
    "check_then_write_upsert_using_the_seam": (
        check_then_write_upsert(seam=True),
        "test_upsert_held_between_its_read_and_its_write_keeps_a_newer_version",
    ),
    # (b) set_all writes what its read said had changed, with no guard on the write itself.
    "set_all_without_its_version_guard": (
        guarded_store(write_guard="True"),
        "test_racing_set_alls_keep_the_highest_version_of_every_field",
    ),
    "set_all_without_its_version_guard_held": (
        guarded_store(write_guard="True"),
        "test_set_all_held_between_its_read_and_its_write_keeps_a_newer_version",
    ),
    # (c) a full rewrite on every set_all.
    "full_rewrite_on_identical_set_all": (
        FULL_REWRITE_STORE,
        "test_identical_set_all_writes_no_record",
    ),
    "full_rewrite_on_small_change": (
        FULL_REWRITE_STORE,
        "test_set_all_writes_one_record_per_changed_item",
    ),
    # (d) set_all's delete of a vanished field has lost its condition.
    "set_all_whose_delete_lost_its_condition": (
        guarded_store(delete_guard="True"),
        "test_set_all_held_between_its_read_and_its_delete_keeps_a_field_re_added",
    ),
}


@pytest.mark.parametrize("variant", sorted(BROKEN_VARIANTS))
def test_kit_fails_a_broken_store_in_every_run(pytester: pytest.Pytester, variant: str) -> None:
    store, test_name = BROKEN_VARIANTS[variant]
    result = run_kit(pytester, repeated_kit_module(store), "-k", test_name)
    assert failed_runs(result, test_name) == (RUNS, RUNS), result.stdout.str()


def test_kit_passes_a_correct_read_then_write_store_and_holds_it(pytester: pytest.Pytester) -> None:
    # The correct guarded store reaches the seam, so the held checks run (not skip) and pass;
    # so do the races, the O(changed) probe and every other test.
    result = run_kit(pytester, kit_module(guarded_store()), "-rs")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("errors", 0) == 0, result.stdout.str()
    passed = {
        report.nodeid.rsplit("::", 1)[-1]
        for report in result.reprec.getreports("pytest_runtest_logreport")  # type: ignore[attr-defined]
        if report.when == "call" and report.passed
    }
    assert {
        "test_set_all_held_between_its_read_and_its_write_keeps_a_newer_version",
        "test_set_all_held_between_its_read_and_its_delete_keeps_a_field_re_added",
        "test_racing_set_alls_keep_the_highest_version_of_every_field",
        "test_racing_upserts_write_a_record_once_and_keep_the_highest_version",
        "test_identical_set_all_writes_no_record",
        "test_set_all_writes_one_record_per_changed_item",
    } <= passed


def test_kit_skips_the_o_changed_checks_visibly_for_a_store_without_the_probe(
    pytester: pytest.Pytester,
) -> None:
    store = """
    class Store(MemoryStore):
        supports_write_probe = False
    """
    result = run_kit(pytester, kit_module(store), "-rs", "-k", "set_all_writes_one or identical")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*write probe not implemented: O(changed) not checked*"])


def test_kit_fails_a_write_probe_that_does_not_count(pytester: pytest.Pytester) -> None:
    # A probe stuck at zero would make "an identical set_all writes nothing" pass vacuously.
    store = """
    class Store(MemoryStore):
        @property
        def records_written(self):
            return 0

        @records_written.setter
        def records_written(self, value):
            pass
    """
    result = run_kit(pytester, kit_module(store), "-k", "set_all_writes_one or identical")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*the write-count probe does not count what is written*"])


def test_kit_runs_the_set_all_race_checks_as_expected_failures_for_an_unguarded_store(
    pytester: pytest.Pytester,
) -> None:
    # A store that declares guarded_set_all = False (a trade-off such as unconditional batch
    # writes) shows its races as xfailed, never as passed.
    attributes = "many_items_count = 500\nguarded_set_all = False"
    result = run_kit(
        pytester,
        kit_module(guarded_store(write_guard="True", delete_guard="True"), attributes),
        "-k",
        "set_all_held or racing_set_alls",
    )
    result.assert_outcomes(xfailed=3)


def test_kit_catches_hook_signatures_that_do_not_match_the_specification(
    pytester: pytest.Pytester,
) -> None:
    store = """
    class Store(MemoryStore):
        @hookimpl
        async def cache_delete(self, field, version, extra):
            return False
    """
    result = run_kit(pytester, kit_module(store), "-k", "empty_store")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*PluginValidationError*"])


def test_kit_uses_store_factory_for_separate_store_objects(pytester: pytest.Pytester) -> None:
    # Private memory stores share nothing, so a factory of them breaks multi-writer tests: this
    # proves the kit really writes through the objects the factory opens.
    source = kit_module(CORRECT_STORE) + textwrap.dedent(
        """
        class TestWithFactory(TestKit):
            @pytest.fixture
            def store_factory(self):
                return Store
        """
    )
    result = run_kit(pytester, source, "-k", "TestWithFactory and see_each_others_writes")
    assert failed_tests(result) == {"test_store_objects_on_one_cache_key_see_each_others_writes"}


def test_service_missing_skips_unless_services_are_required(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(
        test_needs_server="""
        from autoconfig_cache.testing import service_missing

        def test_needs_a_server():
            service_missing("example-server is not installed")
        """
    )
    monkeypatch.delenv("AUTOCONFIG_CACHE_REQUIRE_SERVICES", raising=False)
    pytester.runpytest(*INNER_OPTIONS).assert_outcomes(skipped=1)
    monkeypatch.setenv("AUTOCONFIG_CACHE_REQUIRE_SERVICES", "1")
    required = pytester.runpytest(*INNER_OPTIONS)
    required.assert_outcomes(failed=1)
    required.stdout.fnmatch_lines(["*required service missing: example-server*"])


# ---------------------------------------------------------------------------------------------
# compatibility: test modules written against the 0.1 kit keep working
# ---------------------------------------------------------------------------------------------

#: The store of the docstring example (``from my_store import MyStore``): any correct store.
EXAMPLE_STORE_MODULE = """
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.memory import MemoryStore


def MyStore(cache_key):
    return MemoryStore.from_spec(StoreSpec("memory://", cache_key))
"""


def run_pytest_subprocess(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """pytest in a fresh interpreter with only pytest-asyncio loaded, as a plugin's CI runs it.

    Run as on a developer's machine (``AUTOCONFIG_CACHE_REQUIRE_SERVICES`` unset): the 0.1 module
    checks that a missing server skips, which the variable turns into a failure on purpose.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if key != "AUTOCONFIG_CACHE_REQUIRE_SERVICES"
    }
    environment.update(PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", PYTHONPATH=str(directory))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "asyncio", "-p", "no:cacheprovider", "-q", *args],
        cwd=directory,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_docstring_example_of_the_testing_module_passes_in_strict_asyncio_mode(
    tmp_path: Path,
) -> None:
    example = autoconfig_cache.testing.__doc__ or ""
    code = textwrap.dedent(example.split("::\n", 1)[1].split("\nIt runs in", 1)[0])
    assert "class TestMyStore(StoreConformance)" in code
    (tmp_path / "my_store.py").write_text(EXAMPLE_STORE_MODULE)
    (tmp_path / "test_example.py").write_text(code)
    result = run_pytest_subprocess(
        tmp_path, "--asyncio-mode=strict", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout and "failed" not in result.stdout


#: A test module as a plugin author wrote it against the 0.1 kit and guide: a 0.1-style store
#: (hooks by hand, no StoreBase), the ``store`` and ``store_factory`` fixtures, the skip-or-fail
#: helpers, the record helpers.
TEST_MODULE_0_1 = """
import asyncio

import pytest
import pytest_asyncio

from autoconfig_cache.errors import StoreClosedError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.records import StoredRecord
from autoconfig_cache.testing import (
    StoreConformance, StoreHooks, as_map, blob_for, record, require_executable,
    service_missing, services_required,
)

SHARED = {}


class DictStore:
    cache_key = "conformance"

    def __init__(self):
        self.records = SHARED
        self.closed = False

    def check(self):
        if self.closed:
            raise StoreClosedError("dict store")

    @hookimpl
    async def cache_get_all(self):
        self.check()
        return list(self.records.values())

    @hookimpl
    async def cache_set_all(self, records, rewrite_unchanged):
        self.check()
        wanted = {r.field for r in records}
        for field in [f for f in self.records if f not in wanted]:
            del self.records[field]
        for r in records:
            current = self.records.get(r.field)
            if current is None or current.version < r.version or (
                    rewrite_unchanged and current.version == r.version):
                self.records[r.field] = r

    @hookimpl
    async def cache_upsert(self, record):
        self.check()
        current = self.records.get(record.field)
        if current is not None and current.version >= record.version:
            return False
        self.records[record.field] = record
        return True

    @hookimpl
    async def cache_delete(self, field, version):
        self.check()
        current = self.records.get(field)
        if current is None or current.version >= version:
            return False
        del self.records[field]
        return True

    @hookimpl
    async def cache_clear(self):
        self.check()
        self.records.clear()

    @hookimpl
    async def cache_close(self):
        self.closed = True


class TestDictStore(StoreConformance):
    many_items_count = 500

    @pytest_asyncio.fixture
    async def store(self):
        SHARED.clear()
        store = DictStore()
        yield store
        await store.cache_close()

    @pytest.fixture
    def store_factory(self):
        return DictStore


def test_helpers_of_the_0_1_kit():
    assert isinstance(services_required(), bool)
    assert require_executable("python3")
    assert as_map([record("env:a", 1)]) == {"env:a": (1, blob_for("env:a", 1))}
    assert StoreHooks(DictStore()).implements("cache_upsert")
    with pytest.raises(pytest.skip.Exception):
        service_missing("example-server is not installed")
"""


def test_a_test_module_written_against_the_0_1_kit_keeps_working(tmp_path: Path) -> None:
    (tmp_path / "test_dict_store.py").write_text(TEST_MODULE_0_1)
    result = run_pytest_subprocess(
        tmp_path,
        "--asyncio-mode=strict",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-rs",
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "failed" not in result.stdout and "error" not in result.stdout.lower(), output
    # What the 0.1 store cannot show is skipped with a reason, never passed silently.
    assert "write probe not implemented: O(changed) not checked" in result.stdout, output
