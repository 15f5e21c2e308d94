"""Connection settings of the Redis/Valkey store, parsed from a :class:`StoreSpec`.

Parsing happens in the store factory, before any connection is attempted, so that a malformed
URL or option is reported at start-up as a :class:`ConfigurationError` while an unreachable
server never blocks start-up.

Supported URL forms (``valkey`` may replace ``redis`` everywhere; the ``s`` forms use TLS)::

    redis://[[username]:password@]host[:port][/db]
    rediss://...                                   (TLS)
    redis+cluster://[[username]:password@]host1[:port][,host2[:port]...]
    redis+sentinel://[[username]:password@]host1[:port][,host2[:port]...]/service_name[/db]

Options (``StoreSpec.options``, or query parameters of the URL; options win) are documented in
``docs/stores/redis.md`` and listed in :data:`KNOWN_OPTIONS`.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

import attrs

from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.store_spec import StoreSpec, parse_flag

logger = logging.getLogger(__name__)

DEFAULT_PORT = 6379
DEFAULT_SENTINEL_PORT = 26379
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_RETRIES = 1
DEFAULT_MAX_CONNECTIONS = 16


class Mode(enum.StrEnum):
    """How the store reaches its server(s)."""

    STANDALONE = "standalone"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


#: scheme -> (mode, TLS on by the scheme itself)
SCHEMES: dict[str, tuple[Mode, bool]] = {}
for _base, _tls in (("redis", False), ("rediss", True), ("valkey", False), ("valkeys", True)):
    SCHEMES[_base] = (Mode.STANDALONE, _tls)
    SCHEMES[f"{_base}+cluster"] = (Mode.CLUSTER, _tls)
    SCHEMES[f"{_base}+sentinel"] = (Mode.SENTINEL, _tls)

#: Every option this store understands, with a one-line description (shown in errors).
KNOWN_OPTIONS: dict[str, str] = {
    "tls": "true/false: use TLS on a redis:// URL (the Relay Proxy's REDIS_TLS)",
    "username": "ACL user name; overrides the URL's",
    "password": "password; overrides the URL's",
    "ca_file": "PEM file of the CA(s) that signed the server certificate",
    "cert_file": "PEM client certificate (mutual TLS)",
    "key_file": "PEM private key of cert_file",
    "tls_insecure": "true: do not verify the server certificate nor its host name",
    "timeout": "seconds: deadline of one store operation, retries included",
    "socket_timeout": "seconds: deadline of one socket read/write (default: timeout)",
    "connect_timeout": "seconds: deadline of one TCP/TLS connection attempt",
    "retries": "immediate retries of a command after a connection error (not a timeout)",
    "max_connections": "connection pool size (per node in a cluster)",
    "db": "database number (standalone and sentinel only)",
    "service_name": "sentinel: name of the monitored master (or the URL path)",
    "sentinel_username": "sentinel: user name for the sentinels themselves",
    "sentinel_password": "sentinel: password for the sentinels themselves",
}


@attrs.frozen
class Node:
    """One host and port."""

    host: str
    port: int


@attrs.frozen
class RedisSettings:
    """Everything needed to build a redis-py client; secrets are kept out of ``repr``."""

    mode: Mode
    nodes: tuple[Node, ...]
    redacted_url: str
    db: int = 0
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=False)
    tls: bool = False
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    tls_insecure: bool = False
    timeout: float = DEFAULT_TIMEOUT
    socket_timeout: float = DEFAULT_TIMEOUT
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = attrs.field(default=None, repr=False)

    @classmethod
    def from_spec(cls, spec: StoreSpec) -> RedisSettings:
        """Parse ``spec``; raise :class:`ConfigurationError` naming the bad setting."""
        return _parse(spec)


def _parse(spec: StoreSpec) -> RedisSettings:
    where = spec.redacted_url
    scheme = spec.scheme
    if scheme not in SCHEMES:
        raise ConfigurationError(
            f"store URL {where!r}: scheme {scheme!r} is not a Redis scheme; use one of "
            f"{', '.join(sorted(SCHEMES))}"
        )
    mode, scheme_tls = SCHEMES[scheme]
    try:
        parts = urlsplit(spec.url)
    except ValueError as exc:
        raise ConfigurationError(f"store URL {where!r} cannot be parsed: {exc}") from None
    options = spec.query()
    for name in options:
        if name not in KNOWN_OPTIONS:
            logger.warning(
                "redis store %s: unknown option %r ignored; known options: %s",
                where,
                name,
                ", ".join(sorted(KNOWN_OPTIONS)),
            )

    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username: str | None = None
    password: str | None = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    default_port = DEFAULT_SENTINEL_PORT if mode is Mode.SENTINEL else DEFAULT_PORT
    nodes = tuple(_parse_node(item, default_port, where) for item in hostlist.split(","))
    if mode is Mode.STANDALONE and len(nodes) != 1:
        raise ConfigurationError(
            f"store URL {where!r} lists {len(nodes)} hosts; a plain Redis URL takes one host "
            f"(use redis+cluster:// or redis+sentinel:// for several)"
        )

    path = [segment for segment in parts.path.split("/") if segment]
    db = 0
    service_name = options.get("service_name") or None
    if mode is Mode.SENTINEL:
        if path:
            service_name = options.get("service_name") or unquote(path.pop(0))
        if not service_name:
            raise ConfigurationError(
                f"store URL {where!r}: a sentinel URL needs the master's name, as "
                f"redis+sentinel://host:26379/<service_name> or the option service_name"
            )
    if path:
        if len(path) > 1 or not path[0].isdigit():
            raise ConfigurationError(
                f"store URL {where!r}: the path must be a database number, e.g. /0"
            )
        db = int(path[0])
    if "db" in options:
        db = _int_option(options, "db", db, where, minimum=0)
    if mode is Mode.CLUSTER and db != 0:
        raise ConfigurationError(f"store URL {where!r}: Redis Cluster has only database 0")

    username = options.get("username", username) or None
    password = options.get("password", password) or None
    tls = scheme_tls or _bool_option(options, "tls", False, where)
    timeout = _float_option(options, "timeout", DEFAULT_TIMEOUT, where)
    socket_timeout = _float_option(options, "socket_timeout", timeout, where)
    connect_timeout = _float_option(
        options, "connect_timeout", min(DEFAULT_CONNECT_TIMEOUT, timeout), where
    )
    settings = RedisSettings(
        mode=mode,
        nodes=nodes,
        redacted_url=where,
        db=db,
        username=username,
        password=password,
        tls=tls,
        ca_file=options.get("ca_file") or None,
        cert_file=options.get("cert_file") or None,
        key_file=options.get("key_file") or None,
        tls_insecure=_bool_option(options, "tls_insecure", False, where),
        timeout=timeout,
        socket_timeout=socket_timeout,
        connect_timeout=connect_timeout,
        retries=_int_option(options, "retries", DEFAULT_RETRIES, where, minimum=0),
        max_connections=_int_option(
            options, "max_connections", DEFAULT_MAX_CONNECTIONS, where, minimum=1
        ),
        service_name=service_name,
        sentinel_username=options.get("sentinel_username") or None,
        sentinel_password=options.get("sentinel_password") or None,
    )
    if settings.key_file and not settings.cert_file:
        raise ConfigurationError(
            f"redis store {where}: key_file is set without cert_file; set both for mutual TLS"
        )
    if not tls and (settings.ca_file or settings.cert_file or settings.tls_insecure):
        raise ConfigurationError(
            f"redis store {where}: TLS options are set but TLS is off; use rediss:// "
            f"(or valkeys://) or the option tls=true"
        )
    return settings


def _parse_node(item: str, default_port: int, where: str) -> Node:
    item = item.strip()
    if not item:
        raise ConfigurationError(f"store URL {where!r} has an empty host")
    if item.startswith("["):  # [IPv6]:port
        host, bracket, rest = item[1:].partition("]")
        if not bracket:
            raise ConfigurationError(f"store URL {where!r}: unclosed '[' in host {item!r}")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_text = item.partition(":")
    if not port_text:
        return Node(host, default_port)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigurationError(f"store URL {where!r}: bad port {port_text!r} in {item!r}")
    return Node(host, int(port_text))


def _bool_option(options: Mapping[str, str], name: str, default: bool, where: str) -> bool:
    if name not in options:
        return default
    value = options[name].strip().lower()
    flag = parse_flag(value) if value else False  # an empty option means "off"
    if flag is not None:
        return flag
    raise ConfigurationError(f"redis store {where}: option {name}={value!r} must be true or false")


def _float_option(options: Mapping[str, str], name: str, default: float, where: str) -> float:
    if name not in options or options[name].strip() == "":
        return default
    try:
        value = float(options[name])
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ConfigurationError(
            f"redis store {where}: option {name}={options[name]!r} must be a positive number "
            f"of seconds"
        )
    return value


def _int_option(
    options: Mapping[str, str], name: str, default: int, where: str, *, minimum: int
) -> int:
    if name not in options or options[name].strip() == "":
        return default
    text = options[name].strip()
    if not text.isdigit() or int(text) < minimum:
        raise ConfigurationError(
            f"redis store {where}: option {name}={text!r} must be an integer >= {minimum}"
        )
    return int(text)
