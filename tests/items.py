"""Builders of AutoConfig item JSON for tests (values generated, never hard-coded secrets).

Every SDK and mobile key comes from :func:`tests.secret_values.new_item_key`, so the session's
secret scan finds any of them logged in clear."""

from __future__ import annotations

import secrets
from typing import Any

from tests.secret_values import new_item_key


def env_json(env_id: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    """An environment as the AutoConfig stream sends it, with random keys."""
    data: dict[str, Any] = {
        "envID": env_id,
        "envKey": f"key-{env_id}",
        "envName": f"Env {env_id}",
        "mobKey": new_item_key("mob"),
        "projKey": "proj",
        "projName": "Project",
        "sdkKey": {"value": new_item_key("sdk")},
        "defaultTtl": 5,
        "secureMode": False,
        "version": version,
    }
    data.update(extra)
    return data


def filter_json(version: int = 1, **extra: Any) -> dict[str, Any]:
    """A payload filter as the AutoConfig stream sends it."""
    data: dict[str, Any] = {
        "projKey": "proj",
        "key": f"filter-{secrets.token_hex(3)}",
        "version": version,
    }
    data.update(extra)
    return data


def concurrent_env_json(env_id: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    """An environment as newer AutoConfig streams send it: ``sdkKeys`` and ``mobileKeys`` list
    the whole accepted credential set (the anchor ``sdkKey.value``/``mobKey`` among them), with
    an expiring and a view-scoped SDK key and a second mobile key. Every value is random."""
    data = env_json(env_id, version)
    sdk, mob = data["sdkKey"]["value"], data["mobKey"]
    data["sdkKeys"] = [
        {"key": "default", "value": sdk, "hasViews": False},
        {
            "key": "rotating",
            "value": new_item_key("sdk"),
            "expiry": 1_900_000_000_000,
            "hasViews": False,
        },
        {"key": "views-only", "value": new_item_key("sdk"), "hasViews": True},
    ]
    data["mobileKeys"] = [
        {"key": "default", "value": mob, "hasViews": False},
        {
            "key": "second",
            "value": new_item_key("mob"),
            "expiry": 1_900_000_000_000,
            "hasViews": False,
        },
    ]
    data.update(extra)
    return data


def credential_values(env: dict[str, Any]) -> list[str]:
    """Every secret in an environment's JSON: ``sdkKey.value``, ``sdkKey.expiring.value``,
    ``mobKey`` and each ``value`` of ``sdkKeys`` and ``mobileKeys`` (empty ones left out)."""
    values = [env["sdkKey"]["value"], env.get("mobKey")]
    expiring = env["sdkKey"].get("expiring")
    if isinstance(expiring, dict):
        values.append(expiring.get("value"))
    for field in ("sdkKeys", "mobileKeys"):
        for entry in env.get(field) or []:
            if isinstance(entry, dict):
                values.append(entry.get("value"))
    return [value for value in values if isinstance(value, str) and value]
