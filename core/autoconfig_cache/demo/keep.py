"""``demo --keep``: the settings of the kept cache, in a private file, and how to use them.

The kept SQLite cache is encrypted with the demo's throwaway AutoConfig key. Secrets never
appear in output except masked, so the key goes to an environment file next to the database,
readable by its owner only (mode 0600); the terminal shows the variables (the key masked), the
file's path and the command that inspects the cache with them.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

from ..config import SETTINGS
from ..secrets import mask

#: The environment file ``--keep`` writes beside the database.
ENV_FILE_NAME = "demo.env"

_SECRET_VARIABLES = frozenset(setting.env for setting in SETTINGS.values() if setting.secret)


def write_env_file(folder: Path, settings: Mapping[str, str]) -> Path:
    """Write ``settings`` (environment variable → value) to ``folder/demo.env``, mode 0600.

    One ``NAME=value`` line each, values shell-quoted, so that ``set -a; . demo.env`` exports
    exactly these values. The file is created with its final mode (never readable by others,
    not even for a moment) and must not exist yet.
    """
    path = folder / ENV_FILE_NAME
    lines = [
        "# autoconfig-cache demo: the settings of the cache it kept (throwaway demo keys).",
        f"# Use them with: {inspect_command(path)}",
        *(f"{name}={shlex.quote(value)}" for name, value in settings.items()),
    ]
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return path


def shown_settings(settings: Mapping[str, str]) -> list[str]:
    """``NAME=value`` for each setting, secret values masked (last four characters)."""
    return [
        f"{name}={mask(value) if name in _SECRET_VARIABLES else value}"
        for name, value in settings.items()
    ]


def inspect_command(env_file: Path) -> str:
    """A shell command that inspects the kept cache with the settings in ``env_file``.

    A subshell, so that the demo's settings do not stay in the user's shell.
    """
    return f"(set -a; . {shlex.quote(str(env_file))}; autoconfig-cache cache inspect)"
