"""An example third-party sink, for the plugin guide: one file per environment in a directory.

It uses only the public API of :mod:`autoconfig_cache.sinks`, as a plugin would. Each file,
``<envId>.json``, holds the environment in ldactl's shape, keys in clear (so: mode 0600, written
atomically). A deleted environment's file is removed; ``initialized`` brings the directory in
line with the whole configuration (files of environments that are gone are removed), which
also repairs anything a dropped delivery left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

from autoconfig_cache.models import Environment
from autoconfig_cache.sinks import (
    Change,
    ChangeKind,
    PermanentDeliveryError,
    environment_config,
    write_file_atomically,
)

#: Environment ids are LaunchDarkly's 24 hex digits; anything else that could not be a plain
#: file name (a "/" or "..") is refused rather than written outside the directory.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


class DirectorySink:
    """Keeps ``directory`` holding one ``<envId>.json`` file per environment."""

    def __init__(self, directory: str | os.PathLike[str], *, name: str = "directory") -> None:
        self.directory = Path(directory)
        self.name = name
        #: The files are on this host: every instance of a fleet writes its own.
        self.per_instance = True

    async def deliver(self, change: Change) -> None:
        """Write, remove or reconcile files; an OSError makes the dispatcher retry."""
        # File system calls block: run them in a thread, off the event loop.
        await asyncio.to_thread(self._apply, change)

    async def close(self) -> None:
        """Nothing held open."""

    def _apply(self, change: Change) -> None:
        if change.kind is ChangeKind.INITIALIZED:
            environments = change.environments or {}
            for env in environments.values():
                self._write(env)
            for path in self.directory.glob("*.json"):
                if path.stem not in environments:
                    path.unlink(missing_ok=True)
        elif change.kind is ChangeKind.DELETE:
            assert change.env is not None
            self._path(change.env).unlink(missing_ok=True)
        else:
            assert change.env is not None
            self._write(change.env)

    def _path(self, env: Environment) -> Path:
        if not _SAFE_NAME.fullmatch(env.env_id):
            # No retry can make it a file name: dropped at once, with an error.
            raise PermanentDeliveryError(f"environment id {env.env_id!r} is not a file name")
        return self.directory / f"{env.env_id}.json"

    def _write(self, env: Environment) -> None:
        data = json.dumps(environment_config(env), indent=2, sort_keys=True).encode()
        write_file_atomically(self._path(env), data, mode=0o600)
