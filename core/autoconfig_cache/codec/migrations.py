"""Model-version migration: this project's own steps and the chain that applies them.

Model version 1 is the Relay Proxy's: the envelope's ``data`` is the item JSON itself.
Model version 2 is this project's: ``data`` is ``{"item": <item JSON>, "cachedAt": <ms>}``, which
lets a process that starts from the cache say how old the configuration it serves is. The
``relay`` storage format keeps writing version 1 (the Relay Proxy skips any other version).
"""

from __future__ import annotations

from typing import Any

import pluggy

from ..errors import MalformedEnvelopeError, UnknownModelVersionError
from ..hookspecs import hookimpl

RELAY_MODEL_VERSION = 1
CURRENT_MODEL_VERSION = 2


class BuiltinMigrations:
    """The migration steps this project ships, registered into every cache's plugin manager."""

    @hookimpl(trylast=True)
    def cache_migrate_item(self, kind: str, model_version: int, data: Any) -> Any | None:
        """Model 1 → 2: wrap the item JSON; its cache time is unknown."""
        if model_version == 1:
            return {"item": data, "cachedAt": None}
        return None


def migrate_to_current(hook: pluggy.HookRelay, kind: str, model_version: int, data: Any) -> Any:
    """Apply migration steps until ``data`` is at :data:`CURRENT_MODEL_VERSION`.

    :raises UnknownModelVersionError: when the version is newer than this release knows, or a
        step is missing.
    """
    if model_version > CURRENT_MODEL_VERSION:
        raise UnknownModelVersionError(
            f"model version {model_version} is newer than this release knows "
            f"({CURRENT_MODEL_VERSION}); upgrade autoconfig-cache or install the plugin that "
            "writes it"
        )
    if model_version < 1:
        raise MalformedEnvelopeError(f"model version {model_version} is not a valid version")
    while model_version < CURRENT_MODEL_VERSION:
        upgraded = hook.cache_migrate_item(kind=kind, model_version=model_version, data=data)
        if upgraded is None:
            raise UnknownModelVersionError(
                f"no installed plugin migrates {kind} items from model version {model_version}"
            )
        data, model_version = upgraded, model_version + 1
    return data
