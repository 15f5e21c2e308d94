"""Entry point of the dynamodb store plugin: registers the ``dynamodb`` URL scheme."""

from __future__ import annotations

from autoconfig_cache.hookspecs import RegisterStore, hookimpl

from .store import DynamoDBStore


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register :class:`DynamoDBStore` for ``dynamodb://TABLE?region=...&endpoint=...``."""
    register(
        ["dynamodb"],
        DynamoDBStore.from_spec,
        description="Amazon DynamoDB table in the Relay Proxy's schema (PynamoDB)",
    )
