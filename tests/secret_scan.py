"""One test session's search for secrets in clear in everything it logged.

:class:`SecretScan` looks at every log record the session creates (all loggers, every level the
logger is enabled for) and at the output of the command-line and ``run`` subprocesses the tests
start, and keeps only what it found (masked) and a few counts, so its memory stays small however
much the suite logs. ``tests/conftest.py`` wires the one instance, :data:`SESSION_SCAN`, into
pytest and fails the run on a leak.

Records are caught where they are made (the log record factory), not by a handler on the root
logger: ``setup_logging`` (called in-process by tests of the service's log set-up) replaces the
root logger's handlers, and a logger that does not propagate never reaches the root, but every
record goes through the factory.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.secret_values import find_secrets, mask_found, shows_masked_secret

__all__ = ["CANARY_LOGGER", "SESSION_SCAN", "Leak", "SecretScan", "record_text"]

#: The logger of the scan's own probe records (see :meth:`SecretScan.emit_canary`).
CANARY_LOGGER = "tests.secret_scan.canary"
#: At most this many leaks are kept with their line; the rest are only counted.
_KEPT_LEAKS = 50
#: A reported line is cut to this many characters.
_SHOWN_CHARS = 300
_TRACEBACKS = logging.Formatter()


@dataclass(frozen=True)
class Leak:
    """A secret found in clear: where, and the offending line with every secret masked."""

    test: str
    source: str
    secrets: tuple[str, ...]
    line: str

    def __str__(self) -> str:
        return f"{self.test} | {self.source} | {', '.join(self.secrets)} | {self.line}"


def record_text(record: logging.LogRecord) -> str:
    """What a handler would write for ``record``: its message, traceback and stack."""
    try:
        parts = [record.getMessage()]
    except Exception:  # a broken format call: logging reports it; its parts may still leak
        parts = [f"{record.msg!r} % {record.args!r}"]
    if record.exc_info:
        parts.append(_TRACEBACKS.formatException(record.exc_info))
    elif record.exc_text:
        parts.append(record.exc_text)
    if record.stack_info:
        parts.append(record.stack_info)
    return "\n".join(parts)


def _shown(line: str, fixed: frozenset[str] | None) -> str:
    line = mask_found(line, fixed).replace("\n", "\\n")
    return line if len(line) <= _SHOWN_CHARS else line[:_SHOWN_CHARS] + "..."


class SecretScan:
    """Secrets in clear in a session's log records and subprocess output.

    :param fixed: the fixed secrets to look for besides key-shaped values (default: every one
        registered in :mod:`tests.secret_values`, as registered at the time of each search; a
        unit test passes a planted one).
    """

    def __init__(self, fixed: frozenset[str] | None = None) -> None:
        self._fixed = fixed
        #: The test whose records are being looked at (a pytest node id).
        self.test = "<before the first test>"
        #: True while a test marked ``prints_secrets`` runs: its records are not searched.
        self.excluded = False
        self.records = 0
        self.excluded_records = 0
        self.outputs = 0
        self.output_chars = 0
        #: Records and outputs showing a known secret masked: the data held secrets and they
        #: were masked where they were logged.
        self.masked_sightings = 0
        self.canaries = 0
        self.leak_count = 0
        #: The first leak of each (test, source, secrets), up to a limit; :attr:`leak_count`
        #: counts them all.
        self.leaks: list[Leak] = []
        self._places: set[tuple[str, str, tuple[str, ...]]] = set()
        self._canary_text = f"secret scan canary {secrets.token_hex(8)}"

    # ---- what is searched ----------------------------------------------------------------------

    def scan_record(self, record: logging.LogRecord) -> None:
        """Search one log record (called for every record the process makes)."""
        if record.name == CANARY_LOGGER and record.msg == self._canary_text:
            self.canaries += 1
            return
        if self.excluded:
            self.excluded_records += 1
            return
        self.records += 1
        text = record_text(record)
        found = find_secrets(text, self._fixed)
        if found:
            self._add(f"log {record.name} {record.levelname}", found, text)
        elif shows_masked_secret(text):
            self.masked_sightings += 1

    def scan_output(self, source: str, text: str) -> None:
        """Search what a subprocess wrote (``source`` names it in a report)."""
        if self.excluded or not text:
            return
        self.outputs += 1
        self.output_chars += len(text)
        if not find_secrets(text, self._fixed):
            if shows_masked_secret(text):
                self.masked_sightings += 1
            return
        for line in text.splitlines():
            found = find_secrets(line, self._fixed)
            if found:
                self._add(source, found, line)

    def scan_log_files(self, folder: Path) -> None:
        """Search every ``*.log`` file under ``folder`` (the logs of ``run`` and stream-server
        processes a test started in its temporary folder)."""
        for path in sorted(folder.rglob("*.log")):
            if path.is_file():
                self.scan_output(f"file {path.name}", path.read_text(errors="replace"))

    def _add(self, source: str, found: list[str], text: str) -> None:
        self.leak_count += 1
        shown_source, found_masked = _shown(source, self._fixed), tuple(sorted(set(found)))
        # One line per test, source and secret: a leak in a loop is one finding, not thousands.
        place = (self.test, shown_source, found_masked)
        if place not in self._places and len(self.leaks) < _KEPT_LEAKS:
            self._places.add(place)
            self.leaks.append(
                Leak(self.test, shown_source, found_masked, _shown(text, self._fixed))
            )

    # ---- being sure it looked ------------------------------------------------------------------

    def emit_canary(self) -> None:
        """Log a DEBUG probe record; :attr:`canaries` counts the ones the scan saw. A probe
        unseen means records were no longer made at DEBUG or no longer reached the scan."""
        logging.getLogger(CANARY_LOGGER).debug(self._canary_text)

    def install(self) -> Callable[[], None]:
        """Make every log record of this process go through :meth:`scan_record`; returns the
        function that undoes it."""
        previous = logging.getLogRecordFactory()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            self.scan_record(record)
            return record

        logging.setLogRecordFactory(factory)

        def uninstall() -> None:
            if logging.getLogRecordFactory() is factory:
                logging.setLogRecordFactory(previous)

        return uninstall


#: The scan of this test session (a process runs one pytest session).
SESSION_SCAN = SecretScan()
