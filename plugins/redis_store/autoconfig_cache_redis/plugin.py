"""Entry point of the Redis/Valkey store plugin: registers the store factory for its schemes and
reads the Relay Proxy's ``USE_REDIS``/``REDIS_*`` settings."""

from __future__ import annotations

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
    redact_url,
)

from .schemes import DEFAULT_PORT, SCHEMES


def open_store(spec: StoreSpec) -> Store:
    """Build a :class:`~autoconfig_cache_redis.store.RedisStore` for ``spec``.

    redis-py (and the option schema of :mod:`.settings`) is imported here, not at discovery:
    every process discovers every installed plugin, and one that uses another store should not
    pay for importing this one's client.
    """
    from .store import RedisStore

    return RedisStore.from_spec(spec)


@hookimpl
def autoconfig_cache_register_stores(register: RegisterStore) -> None:
    """Register the Redis store for redis, rediss, valkey, valkeys and their +cluster and
    +sentinel forms."""
    register(
        sorted(SCHEMES),
        open_store,
        description="Redis/Valkey hash per cache key (Relay Proxy compatible); "
        "standalone, TLS, Cluster and Sentinel",
    )


# -- Relay-style settings (USE_REDIS, REDIS_*) ---------------------------------------------------

DEFAULT_HOST = "localhost"

#: The Relay Proxy's Redis variables (ld-relay ``docs/configuration.md``, section ``[Redis]``).
SWITCH = Setting(
    "USE_REDIS",
    "redis.enabled",
    doc="Use Redis/Valkey. `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`).",
    default="`false`",
)
SETTINGS = (
    Setting(
        "REDIS_URL",
        "redis.url",
        secret=True,
        doc="`redis://[user:password@]host:port[/db]` (or `rediss://` for TLS). Not together "
        "with `REDIS_HOST`/`REDIS_PORT`.",
    ),
    Setting(
        "REDIS_HOST", "redis.host", doc="Host, when `REDIS_URL` is not set.", default="`localhost`"
    ),
    Setting("REDIS_PORT", "redis.port", doc="Port, when `REDIS_URL` is not set.", default="`6379`"),
    Setting(
        "REDIS_TLS",
        "redis.tls",
        doc="Use TLS on a `redis://` URL (store option `tls=true`).",
        default="`false`",
    ),
    Setting("REDIS_USERNAME", "redis.username", doc="ACL user name (store option `username`)."),
    Setting(
        "REDIS_PASSWORD", "redis.password", secret=True, doc="Password (store option `password`)."
    ),
)


def build_from_settings(read: SettingsReader) -> StoreConfig:
    """The store URL and options of the ``USE_REDIS`` settings.

    :raises ConfigurationError: naming the setting to change.
    """
    url = read.text("REDIS_URL")
    host = read.text("REDIS_HOST")
    port = read.port("REDIS_PORT")
    if url is not None and (host is not None or port is not None):
        raise ConfigurationError(
            "REDIS_URL and REDIS_HOST/REDIS_PORT are both set; set either REDIS_URL or "
            "REDIS_HOST and REDIS_PORT (TOML: redis.url or redis.host/redis.port)"
        )
    if url is None:
        url = f"redis://{host or DEFAULT_HOST}:{port or DEFAULT_PORT}"
    elif "://" not in url:
        raise ConfigurationError(
            f"{read.setting('REDIS_URL').name()} must be a URL such as redis://host:6379, got "
            f"{redact_url(url)!r}"
        )
    options: dict[str, str] = {}
    if read.flag("REDIS_TLS"):
        options["tls"] = "true"
    username = read.text("REDIS_USERNAME")
    if username:
        options["username"] = username
    password = read.text("REDIS_PASSWORD")
    if password:
        options["password"] = password
    return StoreConfig(url, options)


def environment_store() -> EnvironmentStore:
    """The declaration of the Relay-style Redis settings (also used to generate the docs)."""
    return EnvironmentStore(
        switch=SWITCH, settings=SETTINGS, build=build_from_settings, plugin="autoconfig-cache-redis"
    )


@hookimpl
def autoconfig_cache_environment_store() -> EnvironmentStore:
    """Read ``USE_REDIS`` and ``REDIS_*`` (TOML ``[redis]``), as a Relay Proxy does."""
    return environment_store()
