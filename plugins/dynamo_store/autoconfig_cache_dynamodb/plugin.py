"""Entry point of the dynamodb store plugin: registers the ``dynamodb`` URL scheme."""

from __future__ import annotations

from autoconfig_cache.hookspecs import RegisterStore, hookimpl
from autoconfig_cache.store_spec import StoreSpec


def open_store(spec: StoreSpec) -> object:
    """Build a :class:`~autoconfig_cache_dynamodb.store.DynamoDBStore` for ``spec``.

    PynamoDB and botocore are imported here, not at discovery: every process discovers every
    installed plugin, and one that uses another store should not pay for importing them.
    """
    from .store import DynamoDBStore

    return DynamoDBStore.from_spec(spec)


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register the DynamoDB store for ``dynamodb://TABLE?region=...&endpoint=...``."""
    register(
        ["dynamodb"],
        open_store,
        description="Amazon DynamoDB table in the Relay Proxy's schema (PynamoDB)",
    )
