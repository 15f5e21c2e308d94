"""The session's search for secrets in logs (tests/secret_scan.py, tests/secret_values.py).

Every planted secret here is handed to a scan of the test's own, never logged: the session's
scan would (rightly) fail the run on it.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.secrets import mask
from tests.secret_scan import SESSION_SCAN, SecretScan
from tests.secret_values import (
    ITEM_KEY_SHAPE,
    find_secrets,
    known_secret,
    mask_found,
    new_item_key,
)

PLANTED = "planted-secret-value-7d3a"
PLANTED_ONLY = frozenset({PLANTED})


def planted_scan() -> SecretScan:
    """A scan that looks for PLANTED (and key-shaped values) instead of the registry."""
    scan = SecretScan(PLANTED_ONLY)
    scan.test = "tests/x.py::test_planted"
    return scan


def record(message: str, *args: object, exc_info: Any = None) -> logging.LogRecord:
    """A record made directly, not through the log record factory (so no scan sees it)."""
    return logging.LogRecord(
        "autoconfig_cache.example", logging.DEBUG, __file__, 1, message, args, exc_info
    )


def test_a_fixed_secret_is_found_and_described_masked() -> None:
    found = find_secrets(f"connecting with password {PLANTED} now", PLANTED_ONLY)
    assert found == [mask(PLANTED)]
    assert PLANTED not in found[0]


def test_a_masked_secret_is_not_a_leak() -> None:
    assert find_secrets(f"connecting with password {mask(PLANTED)}", PLANTED_ONLY) == []


def test_every_key_shaped_value_is_found_but_not_its_masked_form() -> None:
    sdk, mob = new_item_key("sdk"), new_item_key("mob")
    found = find_secrets(f"env e1 sdkKey={sdk} mobKey={mob}", frozenset())
    assert found == [f"key-shaped {mask(sdk)}", f"key-shaped {mask(mob)}"]
    assert find_secrets(f"env e1 sdkKey={mask(sdk)}", frozenset()) == []


def test_demo_keys_have_the_searched_shape() -> None:
    from autoconfig_cache.demo.data import sdk_key_for

    assert ITEM_KEY_SHAPE.fullmatch(sdk_key_for("e1", 1, "sdk"))
    assert ITEM_KEY_SHAPE.fullmatch(sdk_key_for("e1", 1, "mob"))


def test_a_planted_secret_in_a_record_is_reported_masked_with_test_and_logger() -> None:
    scan = planted_scan()
    scan.scan_record(record("redis error for %s", f"redis://:{PLANTED}@host"))
    assert scan.leak_count == 1
    (leak,) = scan.leaks
    assert leak.test == "tests/x.py::test_planted"
    assert "autoconfig_cache.example" in leak.source and "DEBUG" in leak.source
    assert PLANTED not in str(leak) and mask(PLANTED) in leak.line


def test_a_secret_in_a_records_traceback_is_found() -> None:
    try:
        raise ValueError(f"bad url redis://:{PLANTED}@host")
    except ValueError:
        exc_info = sys.exc_info()
    scan = planted_scan()
    scan.scan_record(record("connect failed", exc_info=exc_info))
    assert scan.leak_count == 1 and PLANTED not in str(scan.leaks[0])


def test_a_clean_record_is_counted_not_reported() -> None:
    scan = planted_scan()
    scan.scan_record(record("connected to %s", "redis://127.0.0.1:6379"))
    assert (scan.records, scan.leak_count) == (1, 0)


def test_records_of_a_prints_secrets_test_are_not_searched() -> None:
    scan = planted_scan()
    scan.excluded = True
    scan.scan_record(record("exported %s", PLANTED))
    assert (scan.leak_count, scan.excluded_records) == (0, 1)


def test_subprocess_output_reports_only_the_offending_lines(tmp_path: Path) -> None:
    scan = planted_scan()
    log = tmp_path / "service-0.log"
    log.write_text(f"INFO started\nERROR auth {PLANTED} refused\n")
    (tmp_path / "snapshot.json").write_text(PLANTED)  # not a log: not searched
    try:
        scan.scan_log_files(tmp_path)
    finally:
        log.unlink()  # the session's own scan searches this test's folder after it
    (leak,) = scan.leaks
    assert leak.source == "file service-0.log"
    assert leak.line == f"ERROR auth {mask(PLANTED)} refused"


def test_the_scan_sees_records_made_through_logging_once_installed() -> None:
    scan = planted_scan()
    uninstall = scan.install()
    try:
        logging.getLogger("autoconfig_cache.example").warning("an ordinary line")
        scan.emit_canary()
    finally:
        uninstall()
    assert (scan.records, scan.canaries) == (1, 1)
    logging.getLogger("autoconfig_cache.example").warning("after uninstall")
    assert scan.records == 1


def test_the_session_scan_sees_debug_records_of_the_product() -> None:
    before = SESSION_SCAN.records
    logging.getLogger("autoconfig_cache.example").debug("a debug line")
    assert SESSION_SCAN.records == before + 1
    assert SESSION_SCAN.test.endswith("test_the_session_scan_sees_debug_records_of_the_product")


def test_a_short_secret_is_refused_and_whitespace_is_not_searched() -> None:
    with pytest.raises(ValueError, match="at least 10 characters"):
        known_secret("testing")
    assert known_secret("  spaced-secret-0042 ") == "  spaced-secret-0042 "
    assert find_secrets("key spaced-secret-0042 used") == [mask("spaced-secret-0042")]


def test_mask_found_leaves_no_secret_in_a_report_line() -> None:
    key = new_item_key("sdk")
    line = mask_found(f"{PLANTED} and {key}", PLANTED_ONLY)
    assert find_secrets(line, PLANTED_ONLY) == []
    assert line == f"{mask(PLANTED)} and {mask(key)}"


def test_a_leak_repeated_in_a_loop_is_shown_once_and_counted_each_time() -> None:
    scan = planted_scan()
    for attempt in range(3):
        scan.scan_record(record("retry %d with %s", attempt, PLANTED))
    assert (scan.leak_count, len(scan.leaks)) == (3, 1)
