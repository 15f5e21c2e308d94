"""Builders of AutoConfig item JSON for tests (values generated, never hard-coded secrets)."""

from __future__ import annotations

import secrets
from typing import Any


def env_json(env_id: str, version: int = 1, **extra: Any) -> dict[str, Any]:
    """An environment as the AutoConfig stream sends it, with random keys."""
    data: dict[str, Any] = {
        "envID": env_id,
        "envKey": f"key-{env_id}",
        "envName": f"Env {env_id}",
        "mobKey": f"mob-{secrets.token_hex(12)}",
        "projKey": "proj",
        "projName": "Project",
        "sdkKey": {"value": f"sdk-{secrets.token_hex(12)}"},
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
