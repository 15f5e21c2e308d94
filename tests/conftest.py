"""The whole test session is searched for secrets in clear.

Every log record of the session (all loggers, DEBUG included) and the output of the command-line
and ``run`` subprocesses the tests start go through :data:`tests.secret_scan.SESSION_SCAN`,
which looks for every secret of ``tests/secret_values.py``. A secret in clear fails the run at
the end (exit status 1), with each offending line shown masked; so does a scan that saw nothing.

A test whose purpose is to print a secret (``cache export --include-secrets``) is marked
``@pytest.mark.prints_secrets``: what it logs and prints is not searched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from pathlib import Path

import pytest

from autoconfig_cache.plugins import get_registry
from tests import secret_values
from tests.secret_scan import SESSION_SCAN

#: With this many tests run, the suite's logging reached the scan if it saw this many records
#: (the Redis tests alone make thousands; a few unit tests may log nothing at all, so a small
#: run is not held to it).
_LARGE_RUN = 200
_LARGE_RUN_RECORDS = 100

_undo: list[Callable[[], None]] = []
_tests_run = 0
_log_folder = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "prints_secrets: the test's purpose is to print a secret (e.g. export "
        "--include-secrets); its log records and subprocess output are not searched for secrets",
    )
    root = logging.getLogger()
    root_level = root.level
    # Every logger that does not set its own level makes DEBUG records.
    root.setLevel(logging.DEBUG)
    # pytest's own handlers (caplog, the "Captured log" of a failed test) stay at the level they
    # saw before the root logger went to DEBUG, so tests see the records they always saw and
    # pytest keeps no DEBUG text per test. caplog.set_level/at_level still lower them.
    if config.getoption("log_level") is None and not config.getini("log_level"):
        config.option.log_level = logging.getLevelName(root_level)
    # The loggers the service holds at WARNING whatever its level (setup_logging: botocore logs
    # the AWS session token at DEBUG) are held there as in the service, so that the suite
    # checks what the product logs; a logger dropped from that list is searched at DEBUG.
    noisy = {name: logging.getLogger(name).level for name in get_registry().noisy_loggers()}
    for name in noisy:
        logging.getLogger(name).setLevel(logging.WARNING)
    _undo.append(SESSION_SCAN.install())

    def restore_levels() -> None:
        root.setLevel(root_level)
        for name, level in noisy.items():
            logging.getLogger(name).setLevel(level)

    _undo.append(restore_levels)


def pytest_unconfigure(config: pytest.Config) -> None:
    while _undo:
        _undo.pop()()


def pytest_sessionstart(session: pytest.Session) -> None:
    SESSION_SCAN.emit_canary()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, object, object]:
    global _tests_run
    _tests_run += 1
    SESSION_SCAN.test = item.nodeid
    # Honest exception: this test prints a secret on purpose (that is what it checks).
    SESSION_SCAN.excluded = item.get_closest_marker("prints_secrets") is not None
    try:
        return (yield)
    finally:
        SESSION_SCAN.test = f"<after {item.nodeid}>"
        SESSION_SCAN.excluded = False


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        folder = getattr(item, "funcargs", {}).get("tmp_path")
        if isinstance(folder, Path):
            item.stash[_log_folder] = folder


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, object, object]:
    try:
        return (yield)
    finally:
        # After teardown: the test's processes are stopped and their log files complete.
        folder = item.stash.get(_log_folder, None)
        if folder is not None and folder.is_dir():
            SESSION_SCAN.scan_log_files(folder)


def _vacuity_problems() -> list[str]:
    """Why the scan may not have looked at anything (empty when it did)."""
    problems = []
    if SESSION_SCAN.canaries != 2:
        problems.append(
            f"saw {SESSION_SCAN.canaries} of its 2 DEBUG probe records: records stopped being "
            "made at DEBUG or stopped reaching the scan (a test changed the root logger's level "
            "or the log record factory and did not restore it)"
        )
    if _tests_run >= _LARGE_RUN:
        if SESSION_SCAN.records < _LARGE_RUN_RECORDS:
            problems.append(
                f"saw {SESSION_SCAN.records} log records for {_tests_run} tests: the suite's "
                "DEBUG logging did not reach it"
            )
        if not secret_values.known_secrets():
            problems.append("no known secret is registered (tests/secret_values.py)")
    return problems


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    SESSION_SCAN.emit_canary()
    if _tests_run and (SESSION_SCAN.leak_count or _vacuity_problems()):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _tests_run:
        return
    scan = SESSION_SCAN
    write = terminalreporter.write_line
    terminalreporter.section("secrets in logs and output")
    write(
        f"searched {scan.records} log records and {scan.outputs} subprocess outputs "
        f"({scan.output_chars} characters) for {len(secret_values.known_secrets())} known "
        f"secrets and every key-shaped value ({secret_values.item_keys_made()} item keys "
        f"generated); {scan.masked_sightings} showed a known secret masked; "
        f"{scan.excluded_records} records of prints_secrets tests not searched"
    )
    for leak in scan.leaks:
        write(f"SECRET IN CLEAR: {leak}", red=True)
    if scan.leak_count > len(scan.leaks):
        write(
            f"... {scan.leak_count} in all (repeats and any past the first 50 not shown)", red=True
        )
    for problem in _vacuity_problems():
        write(f"SCAN DID NOT LOOK: {problem}", red=True)
    if scan.leak_count:
        write(f"FAILED: {scan.leak_count} secret(s) in clear (shown masked above)", red=True)
