"""Configuration of the service and the CLI: environment variables and an optional TOML file.

Environment variables use the Relay Proxy's names where one exists (``AUTO_CONFIG_KEY``,
``AUTO_CONFIG_CACHE_KEY``, ``STREAM_URI``, ...), so a Relay Proxy deployment's settings can be
reused as they are. This project's own settings start with ``AUTO_CONFIG_CACHE_``. The settings
that select a database the Relay Proxy's way belong to the store plugins, which declare them
through the ``autoconfig_cache_environment_store`` hook (see :mod:`autoconfig_cache.environment`):
this module knows none of them by name.

Precedence: an environment variable overrides the same setting in the TOML file (the Relay
Proxy does the same with its configuration file), and both override the defaults. An environment
variable set to the empty string counts as unset, because that is how container manifests
commonly "unset" a variable.

Every error is a :class:`~autoconfig_cache.errors.ConfigurationError` that names the setting to
change (both its environment variable and its TOML key), and never shows a secret in clear.
``docs/configuration.md`` documents every setting.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import ssl
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from .codec import KeyDerivation, StorageFormat, parse_relay_key_derivation
from .environment import (
    EnvironmentStore,
    Setting,
    SettingsReader,
    StoreConfig,
    check_http_url,
    whole_number,
)
from .errors import ConfigurationError, UnknownStoreSchemeError
from .plugins import KNOWN_EXTRAS, PluginRegistry, get_registry
from .secrets import is_secret_name, mask, redact_url
from .stream.sse import DEFAULT_MAX_EVENT_BYTES

if TYPE_CHECKING:
    from .cache import AutoConfigCache

logger = logging.getLogger(__name__)

DEFAULT_STREAM_URI = "https://stream.launchdarkly.com"
DEFAULT_PORT = 8030
# All interfaces, as the Relay Proxy does: a readiness probe reaches the container from outside.
DEFAULT_BIND_ADDRESS = "0.0.0.0"  # noqa: S104
DEFAULT_LOG_LEVEL = "INFO"
#: Below this, even a put of a few environments could be refused.
MIN_MAX_EVENT_BYTES = 64 * 1024
#: The shortest store audit interval accepted (seconds): each audit reads the store.
MIN_AUDIT_INTERVAL = 1.0

_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

#: Sinks (docs/sinks.md): ldactl's default exec mode, and the dispatcher's defaults.
DEFAULT_EXEC_MODE = "env"
EXEC_MODES = ("env", "change-json")
DEFAULT_SINK_CONCURRENCY = 8
DEFAULT_SINK_TIMEOUT = 30.0
DEFAULT_SINK_MAX_ATTEMPTS = 5
#: Delivery records (docs/sinks.md, "Outage, restart and fleet"): ``once`` records deliveries in
#: the store so that no change is delivered twice; ``always`` delivers everything, as ldactl.
SINK_DELIVERY_MODES = ("once", "always")
#: ``run --once``: seconds to wait for the stream's first put before answering from the cache.
DEFAULT_ONCE_TIMEOUT = 10.0


# Every setting of the core, by a short internal name. The order is the order of docs/configuration.md.
SETTINGS: dict[str, Setting] = {
    # Aliases: ldactl's variables for the same things (tarqd/ldactl ldactl/src/main.rs, Args).
    "autoconfig_key": Setting(
        "AUTO_CONFIG_KEY", "autoconfig_key", secret=True, aliases=("LD_RELAY_AUTO_CONFIG_KEY",)
    ),
    # ldactl's LD_STREAM_URI is the same base URI (https://stream.launchdarkly.com/, to which it
    # appends relay_auto_config); the trailing slash is dropped before /relay_auto_config is added.
    "stream_uri": Setting("STREAM_URI", "stream_uri", aliases=("LD_STREAM_URI",)),
    "port": Setting("PORT", "port"),
    "bind_address": Setting("AUTO_CONFIG_CACHE_BIND_ADDRESS", "bind_address"),
    "status_environments": Setting("AUTO_CONFIG_CACHE_STATUS_ENVIRONMENTS", "status_environments"),
    "log_level": Setting("AUTO_CONFIG_CACHE_LOG_LEVEL", "log_level"),
    "max_event_bytes": Setting("AUTO_CONFIG_CACHE_MAX_EVENT_BYTES", "max_event_bytes"),
    "cache_key": Setting("AUTO_CONFIG_CACHE_KEY", "cache.key"),
    "encryption_key": Setting(
        "AUTO_CONFIG_CACHE_ENCRYPTION_KEY", "cache.encryption_key", secret=True
    ),
    "previous_encryption_keys": Setting(
        "AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS", "cache.previous_encryption_keys", secret=True
    ),
    "format": Setting("AUTO_CONFIG_CACHE_FORMAT", "cache.format"),
    "relay_key_derivation": Setting(
        "AUTO_CONFIG_CACHE_RELAY_KEY_DERIVATION", "cache.relay_key_derivation"
    ),
    "store": Setting("AUTO_CONFIG_CACHE_STORE", "cache.store"),
    "audit_interval": Setting("AUTO_CONFIG_CACHE_AUDIT_INTERVAL", "cache.audit_interval"),
    # The Relay Proxy's [Proxy] settings (ld-relay config/config.go, ProxyConfig), for the stream.
    "proxy_url": Setting("PROXY_URL", "proxy.url", secret=True),
    "proxy_user": Setting("PROXY_AUTH_USER", "proxy.user"),
    "proxy_password": Setting("PROXY_AUTH_PASSWORD", "proxy.password", secret=True),
    "proxy_domain": Setting("PROXY_AUTH_DOMAIN", "proxy.domain"),
    "proxy_ntlm": Setting("PROXY_AUTH_NTLM", "proxy.ntlm_auth"),
    "proxy_ca_certs": Setting("PROXY_CA_CERTS", "proxy.ca_certs"),
    # Sinks (docs/sinks.md); the aliases are ldactl's variables.
    "output_file": Setting(
        "AUTO_CONFIG_CACHE_OUTPUT_FILE", "sinks.output_file", aliases=("LDAC_OUTPUT_FILE",)
    ),
    "exec": Setting("AUTO_CONFIG_CACHE_EXEC", "sinks.exec", aliases=("LDAC_EXEC",)),
    "exec_mode": Setting(
        "AUTO_CONFIG_CACHE_EXEC_MODE", "sinks.exec_mode", aliases=("LDAC_EXEC_MODE",)
    ),
    "sinks": Setting("AUTO_CONFIG_CACHE_SINKS", "sinks.specs"),
    "sink_concurrency": Setting("AUTO_CONFIG_CACHE_SINK_CONCURRENCY", "sinks.concurrency"),
    "sink_timeout": Setting("AUTO_CONFIG_CACHE_SINK_TIMEOUT", "sinks.timeout"),
    "sink_max_attempts": Setting("AUTO_CONFIG_CACHE_SINK_MAX_ATTEMPTS", "sinks.max_attempts"),
    "sink_delivery": Setting("AUTO_CONFIG_CACHE_SINK_DELIVERY", "sinks.delivery"),
    "sink_claim_timeout": Setting("AUTO_CONFIG_CACHE_SINK_CLAIM_TIMEOUT", "sinks.claim_timeout"),
    "once_timeout": Setting("AUTO_CONFIG_CACHE_ONCE_TIMEOUT", "once_timeout"),
}

# TOML tables that hold free-form key/value pairs rather than named settings.
_STORE_OPTIONS_TABLE = "cache.store_options"


@attrs.frozen
class Config:
    """The validated configuration.

    :param autoconfig_key: the Relay Proxy AutoConfig key (needed by ``run``; the cache tools
        need it only when no encryption key is set, since it is then the encryption key).
    :param cache_key: the namespace of the cache in the store; ``None`` when no store is set.
    :param encryption_key: the key set explicitly, if any (see :attr:`effective_encryption_key`).
    :param previous_encryption_keys: keys that still decrypt, for rotation.
    :param format: the storage format.
    :param relay_key_derivation: the key derivation ``relay`` records are written with;
        ``None`` is ``auto`` (that of the records already stored, else HKDF).
    :param autoconfig_key_as_given: the AutoConfig key exactly as configured (not trimmed): the
        key material when no encryption key is set, as in the Relay Proxy.
    :param store_url: the store URL (secrets included: log :attr:`redacted_store_url`).
    :param store_options: settings given to the store beside its URL (``tls``, ``password``...).
    :param audit_interval: seconds between two audits of the store by ``run`` (0: off); ``None``
        takes the store's default (see :mod:`autoconfig_cache.audit`).
    :param stream_uri: base URI of the AutoConfig stream.
    :param port: port of the status server.
    :param bind_address: interface of the status server.
    :param status_environments: ``/status`` lists every environment (``False``: only the count).
    :param log_level: logging level name.
    :param max_event_bytes: the largest stream event accepted (its ``data`` lines, in bytes).
    :param proxy_url: the outbound proxy of the stream (``None``: the environment's, if any).
    :param proxy_user: proxy user name (Basic authentication), when not in ``proxy_url``.
    :param proxy_password: its password (log :attr:`describe`, never this).
    :param ca_cert_files: PEM files of CA certificates the stream trusts besides the defaults.
    :param source_file: the TOML file read, if any.
    :param warnings: things worth telling the operator that are not errors.
    :param store_switches: the settings of installed plugins that select a store the Relay
        Proxy's way (their ``USE_<DATABASE>`` switches), named in messages.
    :param output_file: the file every environment is written to (ldactl's ``--output-file``);
        ``None``: none.
    :param exec_program: the program run for every change (ldactl's ``--exec``); ``None``: none.
    :param exec_args: its arguments (``run ... -- ARGS``).
    :param exec_mode: ``env`` or ``change-json`` (ldactl's ``--exec-mode``).
    :param sink_specs: the plugin sinks, as URL-like specs (``directory:///var/lib/envs``).
    :param sink_concurrency: deliveries running at once, per sink.
    :param sink_timeout: seconds one delivery may take before it is stopped and retried.
    :param sink_max_attempts: attempts per change and sink before it is dropped.
    :param sink_delivery: ``once`` (deliveries recorded in the store: none twice) or ``always``
        (every start delivers everything, as ldactl).
    :param sink_claim_timeout: seconds a delivery claim of another instance may stand before
        this one takes it over; ``None``: derived from the sink timeout and attempts.
    :param once_timeout: ``run --once``: seconds to wait for the stream before the cache answers.
    """

    autoconfig_key: str | None = attrs.field(default=None, repr=mask)
    cache_key: str | None = None
    encryption_key: str | None = attrs.field(default=None, repr=mask)
    previous_encryption_keys: tuple[str, ...] = attrs.field(
        default=(), repr=lambda keys: f"<{len(keys)} key(s)>"
    )
    format: StorageFormat = StorageFormat.V2
    relay_key_derivation: KeyDerivation | None = None
    autoconfig_key_as_given: str | None = attrs.field(default=None, repr=False)
    store_url: str | None = attrs.field(
        default=None, repr=lambda url: repr(redact_url(url) if url else None)
    )
    store_options: Mapping[str, str] = attrs.field(
        factory=dict, repr=lambda options: repr(sorted(options))
    )
    audit_interval: float | None = None
    stream_uri: str = DEFAULT_STREAM_URI
    port: int = DEFAULT_PORT
    bind_address: str = DEFAULT_BIND_ADDRESS
    status_environments: bool = True
    log_level: str = DEFAULT_LOG_LEVEL
    max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES
    proxy_url: str | None = attrs.field(
        default=None, repr=lambda url: repr(redact_url(url) if url else None)
    )
    proxy_user: str | None = None
    proxy_password: str | None = attrs.field(
        default=None, repr=lambda password: "'****'" if password else "None"
    )
    ca_cert_files: tuple[str, ...] = ()
    source_file: Path | None = None
    warnings: tuple[str, ...] = ()
    store_switches: tuple[str, ...] = ()
    output_file: str | None = None
    exec_program: str | None = None
    exec_args: tuple[str, ...] = ()
    exec_mode: str = DEFAULT_EXEC_MODE
    sink_specs: tuple[str, ...] = attrs.field(
        default=(), repr=lambda specs: repr([redact_url(spec) for spec in specs])
    )
    sink_concurrency: int = DEFAULT_SINK_CONCURRENCY
    sink_timeout: float = DEFAULT_SINK_TIMEOUT
    sink_max_attempts: int = DEFAULT_SINK_MAX_ATTEMPTS
    sink_delivery: str = "once"
    sink_claim_timeout: float | None = None
    once_timeout: float = DEFAULT_ONCE_TIMEOUT

    @property
    def store_scheme(self) -> str:
        """The store URL's scheme, or ``none`` when no store is configured."""
        return urlsplit(self.store_url).scheme.lower() if self.store_url else "none"

    @property
    def redacted_store_url(self) -> str | None:
        """The store URL with its password masked."""
        return redact_url(self.store_url) if self.store_url else None

    @property
    def effective_encryption_key(self) -> str:
        """The key material of the cache: the encryption key (trimmed), else the AutoConfig key
        as given, not trimmed — what the Relay Proxy does (ld-relay
        ``internal/autoconfigcache/crypto.go``, ``resolveEncryptionKey``).

        :raises ConfigurationError: when neither is set.
        """
        key = self.encryption_key or self.autoconfig_key_as_given or self.autoconfig_key
        if not key:
            raise ConfigurationError(
                "no encryption key: set AUTO_CONFIG_CACHE_ENCRYPTION_KEY (TOML: "
                "cache.encryption_key), or AUTO_CONFIG_KEY, which is the encryption key when "
                "none is set (as in the Relay Proxy)"
            )
        return key

    def require_autoconfig_key(self) -> str:
        """The AutoConfig key, which the stream needs.

        :raises ConfigurationError: when it is not set.
        """
        if not self.autoconfig_key:
            raise ConfigurationError(
                "AUTO_CONFIG_KEY (TOML: autoconfig_key) is not set; set it to the Relay Proxy "
                "AutoConfig key (LaunchDarkly > Integrations > Relay Proxy)"
            )
        return self.autoconfig_key

    def require_store(self) -> tuple[str, str]:
        """The store URL and cache key, for the ``cache`` commands.

        :raises ConfigurationError: when no store is configured.
        """
        if not self.store_url or not self.cache_key:
            raise ConfigurationError(
                "no store is configured; set AUTO_CONFIG_CACHE_STORE (TOML: cache.store), e.g. "
                f"sqlite:///var/lib/autoconfig/cache.db{_or_switches(self.store_switches)}, "
                "together with AUTO_CONFIG_CACHE_KEY (TOML: cache.key)"
            )
        return self.store_url, self.cache_key

    def open_cache(self, *, read_only: bool = False) -> AutoConfigCache:
        """Open the configured cache (store, cache key, keys, format and store options).

        :param read_only: the store creates nothing (``AutoConfigCache.open``'s ``read_only``).
        :raises ConfigurationError: when no store is configured, or the store URL is unusable.
        """
        from .cache import AutoConfigCache

        store_url, cache_key = self.require_store()
        return AutoConfigCache.open(
            store_url,
            cache_key=cache_key,
            encryption_key=self.effective_encryption_key,
            previous_encryption_keys=self.previous_encryption_keys,
            format=self.format,
            options=self.store_options,
            trim_encryption_key=self.encryption_key is not None,
            relay_key_derivation=self.relay_key_derivation,
            read_only=read_only,
        )

    def describe(self) -> dict[str, object]:
        """A JSON-ready summary with every secret masked (for logs and ``--json`` output)."""
        return {
            "autoconfigKey": mask(self.autoconfig_key) or None,
            "cacheKey": self.cache_key,
            "encryptionKey": mask(self.encryption_key) or None,
            "previousEncryptionKeys": [mask(key) for key in self.previous_encryption_keys],
            "format": str(self.format),
            "relayKeyDerivation": str(self.relay_key_derivation or "auto"),
            "store": self.redacted_store_url,
            "storeOptions": {
                name: ("****" if is_secret_name(name) else value)
                for name, value in sorted(self.store_options.items())
            },
            "auditInterval": self.audit_interval,
            "streamUri": redact_url(self.stream_uri),
            "port": self.port,
            "bindAddress": self.bind_address,
            "statusEnvironments": self.status_environments,
            "logLevel": self.log_level,
            "maxEventBytes": self.max_event_bytes,
            "proxyUrl": redact_url(self.proxy_url) if self.proxy_url else None,
            "proxyUser": self.proxy_user,
            "proxyPassword": "****" if self.proxy_password else None,
            "caCertFiles": list(self.ca_cert_files),
            "configFile": str(self.source_file) if self.source_file else None,
            "outputFile": self.output_file,
            "exec": self.exec_program,
            "execArgCount": len(self.exec_args),  # arguments may carry anything: not shown
            "execMode": self.exec_mode,
            "sinks": [redact_url(spec) for spec in self.sink_specs],
            "sinkConcurrency": self.sink_concurrency,
            "sinkTimeout": self.sink_timeout,
            "sinkMaxAttempts": self.sink_max_attempts,
            "sinkDelivery": self.sink_delivery,
            "sinkClaimTimeout": self.sink_claim_timeout,
            "onceTimeout": self.once_timeout,
        }

    @classmethod
    def load(
        cls,
        *,
        config_file: str | Path | None = None,
        environ: Mapping[str, str] | None = None,
        registry: PluginRegistry | None = None,
    ) -> Config:
        """Read the TOML file (if given), then the environment, validate, and return the result.

        :param config_file: path of a TOML file (``--config``).
        :param environ: the environment (default: ``os.environ``).
        :param registry: plugin registry used to check the store scheme (default: the global one).
        :raises ConfigurationError: naming the setting to change.
        """
        registry = registry or get_registry()
        stores = registry.environment_stores()
        settings = _all_settings(stores)
        raw: dict[str, Any] = {}
        options: dict[str, str] = {}
        path: Path | None = None
        if config_file is not None:
            path = Path(config_file)
            raw, options = _read_toml(path, settings)
        environment = os.environ if environ is None else environ
        for name, setting in settings.items():
            value = setting.from_environment(environment)
            if value is not None:
                raw[name] = value
        return _build(SettingsReader(raw, settings), options, path, registry, stores)


def known_settings(registry: PluginRegistry | None = None) -> list[Setting]:
    """Every setting: the core's, then those the installed store plugins declare."""
    stores = (registry or get_registry()).environment_stores()
    return list(_all_settings(stores).values())


def _all_settings(stores: Sequence[EnvironmentStore]) -> dict[str, Setting]:
    """The core's settings by short name, then each plugin's by environment variable."""
    settings = dict(SETTINGS)
    for store in stores:
        for setting in store.all_settings():
            settings.setdefault(setting.env, setting)
    return settings


def _or_switches(switches: Sequence[str]) -> str:
    return f", or {' / '.join(switches)}" if switches else ""


# -- the TOML file -----------------------------------------------------------------------------


def _read_toml(
    path: Path, settings: Mapping[str, Setting]
) -> tuple[dict[str, Any], dict[str, str]]:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(
            f"configuration file {str(path)!r} does not exist; fix the --config path"
        ) from None
    except OSError as exc:
        raise ConfigurationError(
            f"configuration file {str(path)!r} cannot be read: {exc.strerror or exc}; "
            "fix its permissions or the --config path"
        ) from None
    import tomllib  # only with --config: a start from the environment never loads it

    try:
        document = tomllib.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigurationError(
            f"configuration file {str(path)!r} is not UTF-8 text; save it as UTF-8 TOML"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message says where (line, column) but never quotes the offending value.
        raise ConfigurationError(
            f"configuration file {str(path)!r} is not valid TOML: {exc}"
        ) from None

    by_toml = {setting.toml: name for name, setting in settings.items()}
    raw: dict[str, Any] = {}
    options: dict[str, str] = {}

    def walk(table: Mapping[str, Any], prefix: str) -> None:
        for key, value in table.items():
            dotted = f"{prefix}{key}"
            if dotted == _STORE_OPTIONS_TABLE:
                if not isinstance(value, dict):
                    raise ConfigurationError(
                        f"{path}: {dotted} must be a table of store options, e.g. "
                        f"[{_STORE_OPTIONS_TABLE}] with tls = true"
                    )
                for option, option_value in value.items():
                    options[option] = _option_text(path, f"{dotted}.{option}", option_value)
            elif dotted in by_toml:
                raw[by_toml[dotted]] = value
            elif isinstance(value, dict) and any(t.startswith(f"{dotted}.") for t in by_toml):
                walk(value, f"{dotted}.")
            else:
                known = sorted([*by_toml, _STORE_OPTIONS_TABLE])
                raise ConfigurationError(
                    f"{path}: unknown setting {dotted!r}; known settings: {', '.join(known)}"
                )

    walk(document, "")
    return raw, options


def _option_text(path: Path, where: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return str(value)
    raise ConfigurationError(f"{path}: {where} must be a string, number or boolean")


# -- validation --------------------------------------------------------------------------------


def _build(
    read: SettingsReader,
    store_options: dict[str, str],
    path: Path | None,
    registry: PluginRegistry,
    stores: Sequence[EnvironmentStore],
) -> Config:
    raw = read.raw
    warnings: list[str] = []

    autoconfig_key = read.secret("autoconfig_key")
    encryption_key = read.secret("encryption_key")
    previous = _previous_keys(raw.get("previous_encryption_keys"))
    cache_key = read.text("cache_key")
    if cache_key is not None:
        if not cache_key.strip():
            raise ConfigurationError(
                f"{SETTINGS['cache_key'].name()} is empty or only whitespace; set it to a name "
                "for this cache (e.g. 'autoconfig-prod'), or remove it to turn caching off"
            )
        cache_key = cache_key.strip()

    format_text = read.text("format")
    storage_format = StorageFormat.V2
    if format_text is not None:
        try:
            storage_format = StorageFormat.parse(format_text)
        except ConfigurationError:
            raise ConfigurationError(
                f"{SETTINGS['format'].name()} must be 'v2' (default) or 'relay' (shared with a "
                f"Relay Proxy), got {format_text!r}"
            ) from None

    derivation_text = read.text("relay_key_derivation")
    relay_key_derivation: KeyDerivation | None = None
    if derivation_text is not None:
        try:
            relay_key_derivation = parse_relay_key_derivation(derivation_text)
        except ConfigurationError:
            raise ConfigurationError(
                f"{SETTINGS['relay_key_derivation'].name()} must be 'auto' (default), 'hkdf' "
                f"(Relay Proxy v9 and later v8) or 'sha256' (earlier v8), got {derivation_text!r}"
            ) from None
        if relay_key_derivation is not None and storage_format is not StorageFormat.RELAY:
            warnings.append(
                f"{SETTINGS['relay_key_derivation'].env} ignored because "
                f"{SETTINGS['format'].env} is not 'relay'"
            )

    stream_uri = read.text("stream_uri") or DEFAULT_STREAM_URI
    # No user:password@ in it: the stream authenticates with its key.
    check_http_url(stream_uri, SETTINGS["stream_uri"], allow_credentials=False)
    port = read.port("port") or DEFAULT_PORT
    bind_address = (read.text("bind_address") or DEFAULT_BIND_ADDRESS).strip()
    # On unless set: flag() reads an unset setting as false.
    status_environments = read.raw.get("status_environments") is None or read.flag(
        "status_environments"
    )
    log_level = (read.text("log_level") or DEFAULT_LOG_LEVEL).strip().upper()
    if log_level not in _LOG_LEVELS:
        raise ConfigurationError(
            f"{SETTINGS['log_level'].name()} must be one of {', '.join(_LOG_LEVELS)}, "
            f"got {log_level.lower()!r}"
        )

    max_event_bytes = _max_event_bytes(read)
    audit_interval = _audit_interval(read)

    switches = tuple(store.switch.env for store in stores)
    store_url, store_options = _choose_store(read, stores, store_options, warnings, cache_key)
    if store_url is not None:
        _check_store_url(store_url, registry)

    if cache_key is not None and store_url is None:
        raise ConfigurationError(
            f"{SETTINGS['cache_key'].name()} is set but no store is configured; set "
            f"AUTO_CONFIG_CACHE_STORE (TOML: cache.store){_or_switches(switches)}, or unset "
            f"AUTO_CONFIG_CACHE_KEY to run without a cache"
        )
    if store_url is not None and cache_key is None:
        # Only AUTO_CONFIG_CACHE_STORE gets here: a plugin's switch (USE_<DATABASE>) without a
        # cache key was turned into "no cache" with a warning by _choose_store.
        raise ConfigurationError(
            f"a store is configured ({redact_url(store_url)}) but "
            f"{SETTINGS['cache_key'].name()} is not set; set it to a name for this cache "
            "(e.g. 'autoconfig-prod'): processes sharing a cache use the same name"
        )
    if previous and encryption_key is None and autoconfig_key is None:
        raise ConfigurationError(
            f"{SETTINGS['previous_encryption_keys'].name()} is set but there is no current key; "
            "set AUTO_CONFIG_CACHE_ENCRYPTION_KEY (TOML: cache.encryption_key)"
        )

    return Config(
        autoconfig_key=autoconfig_key,
        cache_key=cache_key,
        encryption_key=encryption_key,
        previous_encryption_keys=previous,
        format=storage_format,
        relay_key_derivation=relay_key_derivation,
        # Not trimmed: key material exactly as the Relay Proxy uses it (see Config).
        autoconfig_key_as_given=raw.get("autoconfig_key") if autoconfig_key else None,
        store_url=store_url,
        store_options=store_options,
        audit_interval=audit_interval,
        stream_uri=stream_uri.rstrip("/"),
        port=port,
        bind_address=bind_address,
        status_environments=status_environments,
        log_level=log_level,
        max_event_bytes=max_event_bytes,
        **_proxy_settings(read, raw.get("proxy_ca_certs"), warnings),
        source_file=path,
        warnings=tuple(warnings),
        store_switches=switches,
        **_sink_settings(read, registry),
        **_delivery_settings(read),
    )


def _delivery_settings(read: SettingsReader) -> dict[str, Any]:
    """Delivery records and ``run --once`` (docs/sinks.md, docs/operations.md)."""
    delivery = (read.text("sink_delivery") or "once").strip().lower()
    if delivery not in SINK_DELIVERY_MODES:
        raise ConfigurationError(
            f"{SETTINGS['sink_delivery'].name()} must be 'once' (deliveries recorded in the "
            "store: a restart or another instance never delivers a change twice) or 'always' "
            f"(every start delivers everything, as ldactl), got {read.raw['sink_delivery']!r}"
        )
    claim_timeout = None
    if read.raw.get("sink_claim_timeout") is not None:
        claim_timeout = _positive_seconds(read, "sink_claim_timeout", "derived")
    once_timeout = DEFAULT_ONCE_TIMEOUT
    if read.raw.get("once_timeout") is not None:
        once_timeout = _positive_seconds(read, "once_timeout", f"{DEFAULT_ONCE_TIMEOUT:g}")
    return {
        "sink_delivery": delivery,
        "sink_claim_timeout": claim_timeout,
        "once_timeout": once_timeout,
    }


def _positive_seconds(read: SettingsReader, name: str, default: str) -> float:
    """A setting that is a finite number of seconds, more than 0."""
    value = read.raw.get(name)
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().isascii():
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if number is None or not math.isfinite(number) or number <= 0:
        raise ConfigurationError(
            f"{SETTINGS[name].name()} must be a number of seconds more than 0 (default "
            f"{default}), got {value!r}"
        )
    return number


def _sink_settings(read: SettingsReader, registry: PluginRegistry) -> dict[str, Any]:
    """The sink settings, as :class:`Config` fields (docs/sinks.md)."""
    output_file = (read.text("output_file") or "").strip() or None
    # A program path or name, no shell (as ldactl): kept as given, but surrounding blanks are
    # never part of a file name a user meant.
    exec_program = (read.text("exec") or "").strip() or None
    exec_mode = (read.text("exec_mode") or DEFAULT_EXEC_MODE).strip().lower()
    if exec_mode not in EXEC_MODES:
        raise ConfigurationError(
            f"{SETTINGS['exec_mode'].name()} must be 'env' (LDAC_* variables) or 'change-json' "
            f"(the variables, and the change as JSON on stdin), got {read.raw['exec_mode']!r}"
        )
    specs: tuple[str, ...] = ()
    value = read.raw.get("sinks")
    if value is not None:
        parts = _text_list(
            value, SETTINGS["sinks"], "a comma-separated string (env) or a list of strings (TOML)"
        )
        specs = tuple(part.strip() for part in parts if part.strip())
    check_sink_specs(specs, registry, SETTINGS["sinks"].name())
    concurrency = _whole_setting(read, "sink_concurrency", DEFAULT_SINK_CONCURRENCY, 1, 1000)
    max_attempts = _whole_setting(read, "sink_max_attempts", DEFAULT_SINK_MAX_ATTEMPTS, 1, 100)
    return {
        "output_file": output_file,
        "exec_program": exec_program,
        "exec_mode": exec_mode,
        "sink_specs": specs,
        "sink_concurrency": concurrency,
        "sink_timeout": _sink_timeout(read),
        "sink_max_attempts": max_attempts,
    }


def check_sink_specs(specs: Sequence[str], registry: PluginRegistry, where: str) -> None:
    """Check that each spec parses and names an installed sink type (the sinks themselves are
    built when the service starts).

    :param where: the setting or flag the specs came from, for the error.
    :raises ConfigurationError: naming ``where`` and the installed sink types.
    """
    if not specs:
        return  # and the sinks' code stays unloaded (docs/operations.md, "Start-up")
    from .sinks.spec import SinkSpec, UnknownSinkTypeError

    for text in specs:
        try:
            spec = SinkSpec.parse(text)
            if spec.scheme not in registry.sink_types:
                raise UnknownSinkTypeError(spec.scheme, registry.sink_types)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None


def _whole_setting(read: SettingsReader, name: str, default: int, low: int, high: int) -> int:
    """A whole number from ``low`` to ``high``; ``default`` when unset."""
    value = read.raw.get(name)
    if value is None:
        return default
    number = whole_number(value, max_digits=6)
    if number is None or not low <= number <= high:
        raise ConfigurationError(
            f"{SETTINGS[name].name()} must be a whole number from {low} to {high} (default "
            f"{default}), got {value!r}"
        )
    return number


def _sink_timeout(read: SettingsReader) -> float:
    """Seconds a sink delivery may take: more than 0, finite."""
    if read.raw.get("sink_timeout") is None:
        return DEFAULT_SINK_TIMEOUT
    return _positive_seconds(read, "sink_timeout", f"{DEFAULT_SINK_TIMEOUT:g}")


def _max_event_bytes(read: SettingsReader) -> int:
    """``max_event_bytes``: a whole number of bytes, at least :data:`MIN_MAX_EVENT_BYTES`."""
    value = read.raw.get("max_event_bytes")
    if value is None:
        return DEFAULT_MAX_EVENT_BYTES
    number = whole_number(value, max_digits=20, underscores=True)
    if number is None or number < MIN_MAX_EVENT_BYTES:
        raise ConfigurationError(
            f"{SETTINGS['max_event_bytes'].name()} must be a number of bytes of at least "
            f"{MIN_MAX_EVENT_BYTES} (default {DEFAULT_MAX_EVENT_BYTES}, 256 MiB), got {value!r}"
        )
    return number


def _audit_interval(read: SettingsReader) -> float | None:
    """``audit_interval``: seconds, 0 (off) or at least :data:`MIN_AUDIT_INTERVAL`; ``None``
    when unset (the store's default)."""
    value = read.raw.get("audit_interval")
    if value is None:
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().isascii():
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if (
        number is None
        or not math.isfinite(number)
        or not (number == 0 or number >= MIN_AUDIT_INTERVAL)
    ):
        raise ConfigurationError(
            f"{SETTINGS['audit_interval'].name()} must be a number of seconds: 0 turns the store "
            f"audit off, otherwise at least {MIN_AUDIT_INTERVAL:g} (default: 30, or 300 on "
            f"DynamoDB), got {value!r}"
        )
    return number


def _previous_keys(value: object) -> tuple[str, ...]:
    setting = SETTINGS["previous_encryption_keys"]
    if value is None:
        return ()
    parts = _text_list(value, setting, "a comma-separated string (env) or a list of strings (TOML)")
    keys = tuple(part.strip() for part in parts)
    if any(not key for key in keys):
        raise ConfigurationError(
            f"{setting.name()} has an empty entry; list the previous keys separated by commas, "
            "with no empty entries"
        )
    return keys


def _text_list(value: object, setting: Setting, expected: str) -> list[str]:
    """A list setting: an environment variable's text split at commas, or a TOML list of strings.

    :raises ConfigurationError: naming ``setting`` and the ``expected`` form.
    """
    if isinstance(value, str):
        return value.split(",")
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ConfigurationError(f"{setting.name()} must be {expected}")


def _check_store_url(url: str, registry: PluginRegistry) -> None:
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError as exc:
        raise ConfigurationError(f"store URL {shown!r} is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    stores = registry.stores
    # "scheme:rest" without "//" is a URL too when a store registered the scheme, and that store
    # reads the rest (sqlite:cache.db, a relative path); "localhost:6379" has no such scheme.
    if not scheme or ("://" not in url and scheme not in stores):
        raise ConfigurationError(
            f"store URL {shown!r} is not a URL; set AUTO_CONFIG_CACHE_STORE (TOML: cache.store) "
            "to e.g. sqlite:///var/lib/autoconfig/cache.db (absolute path) or sqlite:cache.db "
            "(relative to the working directory)"
        )
    if scheme not in stores:
        raise UnknownStoreSchemeError(scheme, list(stores), KNOWN_EXTRAS.get(scheme))


def _choose_store(
    read: SettingsReader,
    stores: Sequence[EnvironmentStore],
    options: dict[str, str],
    warnings: list[str],
    cache_key: str | None,
) -> tuple[str | None, dict[str, str]]:
    """Pick the one configured store; two at once is an error.

    A plugin's switch (``USE_<DATABASE>``) without a cache key means no cache, with a warning: a
    Relay Proxy uses that database for flag data and caches AutoConfig only when its cache key
    is set (ld-relay ``internal/autoconfigcache/store.go``, ``NewStore``: an empty ``CacheKey``
    gives the no-op store), so a Relay's settings must run here as they do there. The plugin's
    ``build`` is not called then, so settings only the cache needs may be missing.
    """
    chosen: list[tuple[str, Callable[[], StoreConfig] | None]] = []
    generic = read.text("store")
    if generic is not None and generic.strip():
        chosen.append((SETTINGS["store"].env, None))
    for store in stores:
        switch = store.switch.env
        if read.flag(switch):
            chosen.append((switch, functools.partial(store.build, read)))
        else:
            unused = [setting.env for setting in store.settings if read.has(setting.env)]
            if unused:
                warnings.append(f"{', '.join(unused)} ignored because {switch} is not true")
    if len(chosen) > 1:
        names = " and ".join(name for name, _ in chosen)
        raise ConfigurationError(
            f"two stores are configured at once ({names}); the cache lives in one store: "
            "keep one of these settings and remove the other"
        )
    if not chosen:
        return None, options
    name, build = chosen[0]
    if build is None:
        assert generic is not None
        return generic.strip(), options
    if cache_key is None:
        warnings.append(
            f"{name} is set but {SETTINGS['cache_key'].name()} is not: running without a cache "
            f"(caching off), as a Relay Proxy does; set {SETTINGS['cache_key'].env} to keep the "
            "AutoConfig data in that store"
        )
        return None, {}
    built = build()
    # Explicit store options ([cache.store_options]) win over those the plugin derived.
    return built.url, {**built.options, **options}


def _proxy_settings(read: SettingsReader, ca_certs: object, warnings: list[str]) -> dict[str, Any]:
    """The stream's outbound proxy and extra CA certificates, as :class:`Config` fields.

    The names are the Relay Proxy's (ld-relay ``docs/configuration.md``, section ``[Proxy]``).
    Relay sends ``PROXY_AUTH_USER``/``PROXY_AUTH_PASSWORD`` only with NTLM and otherwise takes
    Basic credentials from ``PROXY_URL``; this project has no NTLM, so it sends them as Basic
    credentials, and takes them from ``PROXY_URL`` too.
    """
    url = (read.text("proxy_url") or "").strip() or None
    user = read.text("proxy_user") or None
    password = read.text("proxy_password") or None
    if read.flag("proxy_ntlm"):
        raise ConfigurationError(
            f"{SETTINGS['proxy_ntlm'].name()} is true, but NTLM proxy authentication is not "
            "supported; use a proxy that accepts Basic authentication (PROXY_AUTH_USER and "
            "PROXY_AUTH_PASSWORD, or user:password in PROXY_URL), or a local NTLM-to-Basic "
            "proxy, and unset PROXY_AUTH_NTLM"
        )
    if read.has("proxy_domain"):
        warnings.append("PROXY_AUTH_DOMAIN ignored: it is only used by NTLM authentication")
    if url is not None:
        check_http_url(url, SETTINGS["proxy_url"])
        if user is not None and urlsplit(url).username:
            raise ConfigurationError(
                "proxy credentials are set twice, in PROXY_URL (TOML: proxy.url) and in "
                "PROXY_AUTH_USER (TOML: proxy.user); keep one of them"
            )
    elif user is not None or password is not None:
        unused = [SETTINGS[n].env for n in ("proxy_user", "proxy_password") if read.has(n)]
        warnings.append(
            f"{', '.join(unused)} ignored because PROXY_URL is not set (a proxy from "
            "HTTPS_PROXY/HTTP_PROXY takes its credentials from its URL)"
        )
        user = password = None
    if password is not None and user is None:
        raise ConfigurationError(
            f"{SETTINGS['proxy_password'].name()} is set but {SETTINGS['proxy_user'].name()} "
            "is not; set the proxy user name too"
        )
    return {
        "proxy_url": url,
        "proxy_user": user,
        "proxy_password": password,
        "ca_cert_files": _ca_cert_files(ca_certs),
    }


def _ca_cert_files(value: object) -> tuple[str, ...]:
    """``PROXY_CA_CERTS``: comma-separated paths (env) or a list (TOML), each a readable PEM file
    with at least one certificate. Empty entries are skipped, as Relay does."""
    setting = SETTINGS["proxy_ca_certs"]
    if value is None:
        return ()
    parts = _text_list(
        value, setting, "a comma-separated string of paths (env) or a list of paths (TOML)"
    )
    files = tuple(part.strip() for part in parts if part.strip())
    for path in files:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            context.load_verify_locations(cafile=path)
        except FileNotFoundError:
            raise ConfigurationError(
                f"{setting.name()}: CA certificate file {path!r} does not exist"
            ) from None
        except ssl.SSLError:  # before OSError, of which it is a subclass
            raise ConfigurationError(
                f"{setting.name()}: {path!r} holds no PEM certificate; give the CA certificate "
                "in PEM format (-----BEGIN CERTIFICATE-----)"
            ) from None
        except OSError as exc:
            raise ConfigurationError(
                f"{setting.name()}: CA certificate file {path!r} cannot be read: "
                f"{exc.strerror or exc}"
            ) from None
    return files
