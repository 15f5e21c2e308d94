"""Entry point of the dynamodb store plugin: registers the ``dynamodb`` URL scheme, reads the
Relay Proxy's ``USE_DYNAMODB``/``DYNAMODB_*`` settings and names its noisy loggers."""

from __future__ import annotations

from urllib.parse import quote

from autoconfig_cache.plugin import (
    ConfigurationError,
    EnvironmentStore,
    RegisterStore,
    Setting,
    SettingsReader,
    Store,
    StoreConfig,
    StoreSpec,
    hookimpl,
)


def open_store(spec: StoreSpec) -> Store:
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


# -- Relay-style settings (USE_DYNAMODB, DYNAMODB_*) ---------------------------------------------

#: The Relay Proxy's DynamoDB variables (ld-relay ``docs/configuration.md``, section
#: ``[DynamoDB]``). Region and credentials come from the usual AWS variables, as in the Relay.
SWITCH = Setting("USE_DYNAMODB", "dynamodb.enabled", doc="Use DynamoDB.", default="`false`")
SETTINGS = (
    Setting(
        "DYNAMODB_TABLE",
        "dynamodb.table",
        doc="Table name; `USE_DYNAMODB` with a cache key but without a table is an error.",
        default="— (required)",
    ),
    Setting(
        "DYNAMODB_URL",
        "dynamodb.url",
        doc="Endpoint URL (DynamoDB Local, a VPC endpoint); store option `endpoint`. Region and "
        "credentials come from the usual AWS variables (`AWS_REGION`, ...).",
        default="AWS",
    ),
)


def build_from_settings(read: SettingsReader) -> StoreConfig:
    """The store URL and options of the ``USE_DYNAMODB`` settings.

    :raises ConfigurationError: naming the setting to change.
    """
    table = (read.text("DYNAMODB_TABLE") or "").strip()
    if not table:
        raise ConfigurationError(
            "USE_DYNAMODB is true but DYNAMODB_TABLE (TOML: dynamodb.table) is not set; set it "
            "to the name of the table that holds the cache"
        )
    endpoint = read.http_url("DYNAMODB_URL")
    options = {"endpoint": endpoint} if endpoint else {}
    return StoreConfig(f"dynamodb://{quote(table, safe='')}", options)


def environment_store() -> EnvironmentStore:
    """The declaration of the Relay-style DynamoDB settings (also used to generate the docs)."""
    return EnvironmentStore(
        switch=SWITCH,
        settings=SETTINGS,
        build=build_from_settings,
        plugin="autoconfig-cache-dynamodb",
    )


@hookimpl
def autoconfig_cache_environment_store() -> EnvironmentStore:
    """Read ``USE_DYNAMODB`` and ``DYNAMODB_*`` (TOML ``[dynamodb]``), as a Relay Proxy does."""
    return environment_store()


@hookimpl
def autoconfig_cache_noisy_loggers() -> list[str]:
    """pynamodb logs its settings file look-up at INFO on import, which says nothing useful;
    botocore at DEBUG logs every request with its signed headers (the AWS access key id and the
    session token) and urllib3, which it sends through, the requests' URLs: both stay at WARNING.
    """
    return ["botocore", "pynamodb", "urllib3"]
