"""The exec sink: runs a program for every change, as ldactl's ``--exec`` does.

``PROGRAM [ARGS]`` is run as an argument list, never through a shell (ldactl:
``std::process::Command::new(cmd).args(args)`` in tarqd/ldactl ``ldactl/src/main.rs``), once per
change. What the program receives is described in :mod:`.hook_payload`: ``LDAC_*`` variables
in both modes, and the change as JSON on stdin in ``change-json`` mode. Keys reach the child
only through its environment and stdin, never its argument list, which any local user can read
(``ps``).

Differences from ldactl, on purpose:

* output is not inherited but read line by line into our log (logger
  ``autoconfig_cache.sinks.exec``: stdout at INFO, stderr at WARNING), every key of the
  configuration masked and control characters escaped;
* stdin is ``/dev/null`` in ``env`` mode (a hook reading stdin would otherwise wait on ours);
* a hook that runs past the dispatcher's timeout is stopped: its whole process group (it runs in
  a session of its own) gets SIGTERM, then SIGKILL after a grace period, so the programs it
  started stop with it. ldactl waits for a hook forever;
* a non-zero exit status, a hook that cannot be started or one that was stopped is a failed
  attempt: the dispatcher retries it (ldactl logs it and moves on).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import os
import signal
from collections.abc import Collection, Mapping, Sequence

from ..logsetup import escape_control
from .base import PermanentDeliveryError
from .change import Change
from .hook_payload import WITHHELD_VARIABLES, change_json, child_environment
from .masking import SecretMasker

logger = logging.getLogger(__name__)

#: Read size of the output pipes.
_CHUNK = 65536
#: Room kept past the cut of an over-long line, so a key that starts before the cut is seen
#: whole, and masked, before the line is cut (no credential is this long).
_LOOKAHEAD = 512


class ExecMode(enum.StrEnum):
    """How a hook is told about a change (ldactl's ``--exec-mode``)."""

    #: ``LDAC_*`` environment variables only.
    ENV = "env"
    #: The ``LDAC_*`` variables, and the change as one JSON document on stdin.
    CHANGE_JSON = "change-json"


class HookFailedError(Exception):
    """A hook could not be started, exited with a non-zero status, or was stopped."""


class ExecSink:
    """Runs ``argv`` for every change.

    :param argv: the program and its arguments (no shell; the program is looked up on ``PATH``).
    :param mode: :class:`ExecMode`.
    :param name: the sink's name in logs and ``/status``.
    :param per_instance: ``True`` when the hook acts on this host only (writes a local file),
        so that every instance of a fleet runs it; see :class:`~.base.Sink`.
    :param environ: the environment the child's is made from (default: ours, read at each run).
    :param withheld: variables of that environment never passed on (besides any whose name
        contains ``ENCRYPTION_KEY``): our own secrets.
    :param cwd: the child's working directory (default: ours).
    :param kill_grace: seconds between SIGTERM and SIGKILL when a hook is stopped.
    :param output_drain: seconds to keep reading output after the hook exited (a program it left
        running in the background may hold the pipes open).
    :param max_line: longer output lines are cut (in bytes).
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        mode: ExecMode = ExecMode.ENV,
        name: str = "exec",
        per_instance: bool = False,
        environ: Mapping[str, str] | None = None,
        withheld: Collection[str] = WITHHELD_VARIABLES,
        cwd: str | os.PathLike[str] | None = None,
        kill_grace: float = 5.0,
        output_drain: float = 2.0,
        max_line: int = 8192,
    ) -> None:
        if not argv or not argv[0]:
            raise ValueError("the exec sink needs a program to run")
        self.argv = tuple(argv)
        self.mode = mode
        self.name = name
        self.per_instance = per_instance
        self._environ = environ
        self._withheld = withheld
        self._cwd = cwd
        self._kill_grace = kill_grace
        self._output_drain = output_drain
        self._max_line = max_line
        self._masker = SecretMasker()

    @property
    def program(self) -> str:
        """The program run (no secret: keys never go in the argument list)."""
        return self.argv[0]

    async def deliver(self, change: Change) -> None:
        """Run the hook for ``change``; raise :class:`HookFailedError` unless it exits 0."""
        # Every key seen, not only this change's: a hook may print any key it knows of.
        self._masker.learn(change.involved_environments())
        environment = child_environment(
            os.environ if self._environ is None else self._environ,
            change,
            withheld=self._withheld,
        )
        stdin = change_json(change) if self.mode is ExecMode.CHANGE_JSON else None
        label = change.describe()
        process = await self._start(environment, stdin is not None)
        logger.debug(
            "hook %s [%s]: started %s (pid %d)", self.name, label, self.program, process.pid
        )
        io_tasks = [
            asyncio.create_task(self._pump(process.stdout, logging.INFO, "stdout", label)),
            asyncio.create_task(self._pump(process.stderr, logging.WARNING, "stderr", label)),
        ]
        if stdin is not None:
            io_tasks.append(asyncio.create_task(_feed(process, stdin)))
        try:
            try:
                returncode = await process.wait()
            except asyncio.CancelledError:
                # Timed out (or the service is stopping): the hook and what it started stop.
                await self._stop(process)
                raise
        finally:
            await self._finish_io(io_tasks)
        if returncode != 0:
            raise HookFailedError(f"hook {self.program!r} {_exit_reason(returncode)}")

    async def close(self) -> None:
        """Nothing to release: a hook runs only during its delivery."""

    async def _start(
        self, environment: dict[str, str], with_stdin: bool
    ) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.PIPE if with_stdin else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=environment,
                cwd=self._cwd,
                # Its own session, so its process group can be stopped as a whole.
                start_new_session=True,
            )
        except ValueError as exc:
            # A NUL character in a value (an environment name, say): no retry can pass it in an
            # environment variable.
            raise PermanentDeliveryError(
                f"cannot pass this change to hook {self.program!r}: {exc}"
            ) from None
        except OSError as exc:
            raise HookFailedError(
                f"cannot start hook {self.program!r}: {exc.strerror or exc}; check the path and "
                "that it is executable"
            ) from None

    async def _stop(self, process: asyncio.subprocess.Process) -> None:
        """SIGTERM to the hook's process group, SIGKILL to what is left after the grace period."""
        group = process.pid  # a session leader's process group id is its pid
        _signal_group(group, signal.SIGTERM)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), self._kill_grace)
        finally:
            # Always, even if the leader is gone: a child that ignored SIGTERM is still running.
            _signal_group(group, signal.SIGKILL)
        if process.returncode is None:
            await process.wait()
        logger.warning(
            "hook %s: stopped %s (pid %d) and its process group", self.name, self.program, group
        )

    async def _finish_io(self, tasks: list[asyncio.Task[None]]) -> None:
        _, pending = await asyncio.wait(tasks, timeout=self._output_drain)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _pump(
        self, stream: asyncio.StreamReader | None, level: int, what: str, label: str
    ) -> None:
        """Log ``stream`` line by line (masked, escaped); cut lines over ``max_line`` bytes."""
        if stream is None:
            return
        buffer = b""
        cutting = False  # dropping the rest of an over-long line
        while True:
            chunk = await stream.read(_CHUNK)
            if not chunk:
                break
            buffer += chunk
            while True:
                end = buffer.find(b"\n")
                if end >= 0:
                    if not cutting:
                        line = buffer[:end]
                        self._log_line(level, what, label, line, cut=len(line) > self._max_line)
                    buffer, cutting = buffer[end + 1 :], False
                elif not cutting and len(buffer) >= self._max_line + _LOOKAHEAD:
                    self._log_line(level, what, label, buffer, cut=True)
                    buffer, cutting = b"", True
                else:
                    if cutting:
                        buffer = b""
                    break
        if buffer and not cutting:
            self._log_line(level, what, label, buffer, cut=len(buffer) > self._max_line)

    def _log_line(
        self, level: int, what: str, label: str, raw: bytes, *, cut: bool = False
    ) -> None:
        text = raw.decode("utf-8", errors="replace").removesuffix("\r")
        # Masked before it is cut, so a key across the cut is masked whole.
        text = self._masker.mask(text)
        if cut:
            text = text[: self._max_line] + f" ... (line cut at {self._max_line} bytes)"
        logger.log(level, "hook %s [%s] %s: %s", self.name, label, what, escape_control(text))


async def _feed(process: asyncio.subprocess.Process, data: bytes) -> None:
    """Write ``data`` to the hook's stdin and close it (the hook reads to end of file)."""
    stdin = process.stdin
    if stdin is None:
        return
    try:
        stdin.write(data)
        await stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the hook exited without reading it all: its exit status says whether that is wrong
    finally:
        stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await stdin.wait_closed()


def _signal_group(group: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


def _exit_reason(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"was killed by signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"
