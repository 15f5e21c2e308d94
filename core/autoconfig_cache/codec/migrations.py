"""Model-version migration: this project's own steps and the chain that applies them.

Model versions follow the Relay Proxy's numbering (ld-relay ``internal/autoconfigcache/model.go``,
``CurrentModelVersion``), in both storage formats, so that a model version means one thing
everywhere:

* **1** — ``data`` is the item JSON as the AutoConfig stream sent it (before the concurrent-key
  arrays ``sdkKeys``/``mobileKeys``; an environment without them gets them synthesised from
  ``sdkKey``/``mobKey`` when read, never in stored data);
* **2** (current) — ``data`` is the item JSON as the AutoConfig stream sent it.

This project's own extras (the time an item was cached, the tombstone marker) live in an extra
envelope field (:data:`~autoconfig_cache.codec.envelope.EXTENSION_FIELD`) that the Relay
Proxy's JSON decoding ignores; they never change what ``data`` means.

**Legacy model 0.** autoconfig-cache 0.1 used model 2 for a different shape in the ``v2``
format: ``{"item": <item JSON>, "cachedAt": <ms>}``. The migration hook sees only a model
version, so the codec hands such data (recognised by the ``v2`` header format byte 2, see
:mod:`~autoconfig_cache.codec.aesgcm`) to the chain as the internal model version
:data:`LEGACY_V2_MODEL_VERSION` (0), which never appears in a stored envelope. The built-in
step 0 → 1 unwraps the item. 0.1's ``relay`` items are model 1 and need no step; 0.1's
tombstones are recognised by the codec from their exact shape (they are not items).
"""

from __future__ import annotations

from typing import Any

import pluggy

from ..errors import MalformedEnvelopeError, NewerFormatError, UnknownModelVersionError
from ..hookspecs import hookimpl

RELAY_MODEL_VERSION = 2
"""What a Relay Proxy (v8 and v9) writes; v8 reads only this one, v9 reads 1 and 2."""
CURRENT_MODEL_VERSION = 2
"""What this release writes, in both formats."""
LEGACY_V2_MODEL_VERSION = 0
"""Internal model number of 0.1's ``v2``-format model 2 data ``{"item", "cachedAt"}``."""


class BuiltinMigrations:
    """The migration steps this project ships, registered into every cache's plugin manager."""

    @hookimpl(trylast=True)
    def cache_migrate_item(self, kind: str, model_version: int, data: Any) -> Any | None:
        """Legacy 0 → 1: unwrap 0.1's ``{"item", "cachedAt"}``. 1 → 2: the same item JSON."""
        if model_version == LEGACY_V2_MODEL_VERSION:
            if not isinstance(data, dict) or "item" not in data:
                raise MalformedEnvelopeError(
                    "data written by autoconfig-cache 0.1 in the v2 format must be an object "
                    "with an 'item'"
                )
            return data["item"]
        if model_version == 1:
            if data is None:
                # None would read as "this plugin does not know the step".
                raise MalformedEnvelopeError("model version 1 data is null, not an item")
            return data
        return None


def check_model_version(model_version: int) -> None:
    """Refuse a stored model version this release cannot read.

    :raises NewerFormatError: newer than :data:`CURRENT_MODEL_VERSION`.
    :raises MalformedEnvelopeError: below 1 (the legacy number 0 is internal, never stored).
    """
    if model_version > CURRENT_MODEL_VERSION:
        raise NewerFormatError(
            f"model version {model_version} is newer than this release knows "
            f"({CURRENT_MODEL_VERSION}); upgrade autoconfig-cache or install the plugin that "
            "writes it. The record is left as it is"
        )
    if model_version < 1:
        raise MalformedEnvelopeError(f"model version {model_version} is not a valid version")


def migrate_to_current(hook: pluggy.HookRelay, kind: str, model_version: int, data: Any) -> Any:
    """Apply migration steps until ``data`` is at :data:`CURRENT_MODEL_VERSION`.

    :param model_version: the version ``data`` is in, :data:`LEGACY_V2_MODEL_VERSION` included.
    :raises UnknownModelVersionError: when the version is newer than this release knows, or a
        step is missing.
    """
    if model_version != LEGACY_V2_MODEL_VERSION:
        check_model_version(model_version)
    while model_version < CURRENT_MODEL_VERSION:
        upgraded = hook.cache_migrate_item(kind=kind, model_version=model_version, data=data)
        if upgraded is None:
            raise UnknownModelVersionError(
                f"no installed plugin migrates {kind} items from model version {model_version}"
            )
        data, model_version = upgraded, model_version + 1
    return data
