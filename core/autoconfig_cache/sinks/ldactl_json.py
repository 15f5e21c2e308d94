"""ldactl's JSON shape of an environment, for the output file and the ``change-json`` hooks.

ldactl serialises its ``EnvironmentConfig`` (tarqd/ldactl ``ldactl/src/messages.rs``,
``#[serde(rename_all = "camelCase")]``, ``env_id`` renamed ``envId``) as::

    {"envId", "envKey", "envName", "mobKey", "projKey", "projName",
     "sdkKey": {"value": ..., "expiring": null | {"value": ..., "expiresAt": ...}},
     "defaultTtl", "secureMode", "version"}

``expiring`` is an ``Option`` without ``skip_serializing_if``, so it is ``null`` when there is
no expiring key. ``expiresAt`` is the expiring key's time as the stream gives it (the stream's
``sdkKey.expiring.timestamp``, milliseconds since the epoch): ldactl passes the number through
unconverted. Keys are in clear: these documents exist to hand them on (the output file is
mode 0600; hooks get them on stdin).
"""

from __future__ import annotations

from typing import Any

from ..models import Environment

JSONObject = dict[str, Any]


def environment_config(env: Environment) -> JSONObject:
    """``env`` in ldactl's ``EnvironmentConfig`` shape (keys in clear)."""
    expiring = env.expiring_sdk_key
    return {
        "envId": env.env_id,
        "envKey": env.env_key,
        "envName": env.env_name,
        "mobKey": env.mob_key,
        "projKey": env.proj_key,
        "projName": env.proj_name,
        "sdkKey": {
            "value": env.sdk_key,
            "expiring": (
                None
                if expiring is None
                else {"value": expiring.value, "expiresAt": expiring.timestamp}
            ),
        },
        "defaultTtl": env.default_ttl,
        "secureMode": env.secure_mode,
        "version": env.version,
    }
