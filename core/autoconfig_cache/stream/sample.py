"""Generated AutoConfig data: realistic shapes, fake keys that look like LaunchDarkly's.

The local stream server serves it (``python -m autoconfig_cache.stream --sample N``), the demo
tells its story with it, and tests and benchmarks use it. Everything is deterministic: the same
arguments give the same ids, keys and names.
"""

from __future__ import annotations

import hashlib
from typing import Any

_PROJECTS = (("web", "Web storefront"), ("mobile", "Mobile app"), ("billing", "Billing"))
_ENVIRONMENTS = (("production", "Production"), ("staging", "Staging"), ("test", "Test"))


def environment_json(
    env_id: str,
    *,
    proj_key: str = "web",
    proj_name: str = "Web storefront",
    env_key: str = "production",
    env_name: str = "Production",
    version: int = 1,
    sdk_key: str | None = None,
    concurrent_keys: bool = True,
) -> dict[str, Any]:
    """One environment as the AutoConfig stream sends it (keys are fake but key-shaped).

    With ``concurrent_keys`` (the default, as newer streams send it) the environment also lists
    its whole accepted credential set: ``sdkKeys`` holds the current SDK key and a previous one
    that is being rotated out (it expires on 2100-01-01), ``mobileKeys`` the mobile key. Every
    ``value`` there is a secret like ``sdkKey.value``, so the demo shows that none of them is
    ever printed in clear.
    """
    sdk = sdk_key or sdk_key_for(env_id, version, "sdk")
    mob = sdk_key_for(env_id, version, "mob")
    data: dict[str, Any] = {
        "envID": env_id,
        "envKey": env_key,
        "envName": env_name,
        "mobKey": mob,
        "projKey": proj_key,
        "projName": proj_name,
        "sdkKey": {"value": sdk},
        "defaultTtl": 0,
        "secureMode": False,
        "version": version,
    }
    if concurrent_keys:
        data["sdkKeys"] = [
            {"key": "default", "value": sdk, "hasViews": False},
            {
                "key": "previous",
                "value": sdk_key_for(f"{env_id}:previous", version, "sdk"),
                "expiry": ROTATED_KEY_EXPIRY_MS,
                "hasViews": False,
            },
        ]
        data["mobileKeys"] = [{"key": "default", "value": mob, "hasViews": False}]
    return data


#: When the demo's rotated-out SDK keys expire (2100-01-01T00:00:00Z, in ms since the epoch).
ROTATED_KEY_EXPIRY_MS = 4_102_444_800_000


def sdk_key_for(env_id: str, version: int, prefix: str) -> str:
    """A fake key shaped like LaunchDarkly's (``sdk-<uuid>``), stable for an id and version."""
    digest = hashlib.sha256(f"{prefix}:{env_id}:{version}".encode()).hexdigest()
    return f"{prefix}-{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


def sample_put_data(environments: int = 6, filters: int = 2) -> dict[str, Any]:
    """Put data with ``environments`` environments spread over a few projects and ``filters``
    payload filters."""
    envs: dict[str, Any] = {}
    for index in range(environments):
        proj_key, proj_name = _PROJECTS[index // len(_ENVIRONMENTS) % len(_PROJECTS)]
        env_key, env_name = _ENVIRONMENTS[index % len(_ENVIRONMENTS)]
        suffix = index // (len(_PROJECTS) * len(_ENVIRONMENTS))
        if suffix:
            env_key, env_name = f"{env_key}-{suffix}", f"{env_name} {suffix}"
        env_id = f"{index:04x}{proj_key[:4]}{env_key[:4]}".ljust(24, "0")[:24]
        envs[env_id] = environment_json(
            env_id,
            proj_key=proj_key,
            proj_name=proj_name,
            env_key=env_key,
            env_name=env_name,
        )
    flts: dict[str, Any] = {}
    for index in range(filters):
        proj_key, _ = _PROJECTS[index % len(_PROJECTS)]
        flts[f"filter{index:04d}"] = {"projKey": proj_key, "key": f"filter-{index}", "version": 1}
    return {"environments": envs, "filters": flts}
