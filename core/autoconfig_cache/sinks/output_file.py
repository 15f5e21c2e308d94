"""The output file: every environment, as ldactl's ``--output-file`` writes it.

One JSON object keyed by environment id, each value in ldactl's ``EnvironmentConfig`` shape
(:mod:`.ldactl_json`), pretty-printed as ldactl's ``serde_json::to_writer_pretty`` does (two
spaces; tarqd/ldactl ``ldactl/src/main.rs``), without a trailing newline as there. Unlike
ldactl, keys are sorted (ldactl's ``HashMap`` order changes from run to run), so the file only
changes when the configuration does.

Differences from ldactl, on purpose:

* the file is first written once a complete configuration is held (the first ``initialized``):
  a reader never sees the first few environments of a start-up as if they were all. ldactl
  writes after a 500 ms pause in the changes, whatever it holds by then;
* writes are atomic within the target's directory and flushed to disk
  (:func:`.atomic_file.write_file_atomically`), mode 0600 from creation;
* bursts are coalesced without a delay: while a write runs, the changes that arrive wait for
  one next write of the latest state (never more than one pending), where ldactl waits for
  500 ms of quiet.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from ..models import Environment
from .atomic_file import write_file_atomically
from .change import Change, ChangeKind
from .ldactl_json import environment_config


class OutputFileError(OSError):
    """The output file could not be written (the delivery is retried)."""


def render_environments(environments: dict[str, Environment]) -> bytes:
    """The output file's content for ``environments`` (UTF-8 JSON, keys in clear)."""
    document = {env_id: environment_config(env) for env_id, env in environments.items()}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")


class OutputFileSink:
    """Keeps ``path`` holding every environment, in ldactl's shape.

    :param path: the file to write (its directory must exist).
    :param name: the sink's name in logs and ``/status``.
    :param mode: the file's permissions (keys are in clear: 0600, owner only, by default).
    """

    #: A file on this host: every instance of a fleet writes its own.
    per_instance = True

    def __init__(
        self, path: str | os.PathLike[str], *, name: str = "output-file", mode: int = 0o600
    ) -> None:
        self.path = Path(path)
        self.name = name
        self.mode = mode
        self._environments: dict[str, Environment] = {}
        self._complete = False
        # Generations: every applied change bumps _applied; a write records the generation it
        # rendered. A delivery whose change a later write already covered has nothing to do.
        self._applied = 0
        self._written = 0
        self._write_lock = asyncio.Lock()

    async def deliver(self, change: Change) -> None:
        """Apply ``change`` to the configuration held, then make sure the file shows it."""
        self._apply(change)
        if self._complete:
            await self._write_at_least(self._applied)

    async def close(self) -> None:
        """Wait for a write still running (the file is never left half-replaced anyway)."""
        async with self._write_lock:
            pass

    def _apply(self, change: Change) -> None:
        if change.kind is ChangeKind.INITIALIZED:
            self._environments = dict(change.environments or {})
            self._complete = True
        elif change.kind is ChangeKind.DELETE:
            assert change.env is not None  # checked by Change
            self._environments.pop(change.env.env_id, None)
        else:
            assert change.env is not None
            self._environments[change.env.env_id] = change.env
        self._applied += 1

    async def _write_at_least(self, generation: int) -> None:
        async with self._write_lock:
            if self._written >= generation:
                return  # a write after this change already showed it: coalesced
            rendered = self._applied
            # Copied on the event loop (changes are applied there); rendered and written in a
            # thread, so a large configuration never stalls the loop.
            snapshot = dict(self._environments)
            await asyncio.to_thread(self._write_snapshot, snapshot)
            self._written = rendered

    def _write_snapshot(self, environments: dict[str, Environment]) -> None:
        """Render and write ``environments`` (in a worker thread)."""
        try:
            write_file_atomically(self.path, render_environments(environments), mode=self.mode)
        except OSError as exc:
            raise OutputFileError(
                f"cannot write the output file {self.path}: {exc.strerror or exc}; check that "
                "its directory exists and this process may write there (the previous content, "
                "if any, is unchanged)"
            ) from exc
