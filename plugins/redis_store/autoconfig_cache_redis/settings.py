"""Connection settings of the Redis/Valkey store, parsed from a :class:`StoreSpec`.

Parsing happens in the store factory, before any connection is attempted, so that a malformed
URL or option is reported at start-up as a :class:`ConfigurationError` while an unreachable
server never blocks start-up.

Supported URL forms (``valkey`` may replace ``redis`` everywhere; the ``s`` forms use TLS)::

    redis://[[username]:password@]host[:port][/db]
    rediss://...                                   (TLS)
    redis+cluster://[[username]:password@]host1[:port][,host2[:port]...]
    redis+sentinel://[[username]:password@]host1[:port][,host2[:port]...]/service_name[/db]

Options (``StoreSpec.options``, or query parameters of the URL; options win) are declared once in
:class:`RedisOptions`, from which ``docs/stores/redis.md`` shows a generated table.
"""

from __future__ import annotations

import logging
from urllib.parse import unquote, urlsplit

import attrs

from autoconfig_cache.plugin import ConfigurationError, StoreSpec, option, parse_options

# Re-exported: the store and older callers import them from here.
from .schemes import DEFAULT_PORT as DEFAULT_PORT
from .schemes import SCHEMES as SCHEMES
from .schemes import Mode as Mode

logger = logging.getLogger(__name__)

DEFAULT_SENTINEL_PORT = 26379
DEFAULT_TIMEOUT = 5.0
DEFAULT_CONNECT_TIMEOUT = 2.0
DEFAULT_RETRIES = 1
DEFAULT_MAX_CONNECTIONS = 16


@attrs.frozen
class RedisOptions:
    """The store's options (URL query parameters or ``StoreSpec.options``; options win).

    ``docs/stores/redis.md`` shows this table, generated from here.
    """

    tls: bool = option(
        False,
        doc="`true` turns TLS on for a `redis://` URL (the Relay Proxy's `REDIS_TLS`). "
        "`rediss://` always uses TLS.",
    )
    username: str | None = option(
        None, doc="ACL user name; overrides the one in the URL.", shown_default="URL's"
    )
    password: str | None = option(
        None,
        doc="Password; overrides the one in the URL (keep it out of the URL this way).",
        secret=True,
        shown_default="URL's",
    )
    ca_file: str | None = option(
        None,
        doc="PEM file of the CA(s) that signed the server certificate.",
        shown_default="system CAs",
    )
    cert_file: str | None = option(
        None, doc="PEM client certificate, for servers that require client authentication."
    )
    key_file: str | None = option(
        None, doc="PEM private key of `cert_file` (may be omitted if `cert_file` holds both)."
    )
    tls_insecure: bool = option(
        False,
        doc="`true` skips verification of the server certificate and its host name. "
        "For tests only.",
    )
    timeout: float = option(
        DEFAULT_TIMEOUT,
        doc="Seconds. Deadline of one store operation, retries included. Nothing waits longer.",
        positive=True,
    )
    socket_timeout: float | None = option(
        None,
        type=float,
        doc="Seconds. Deadline of one socket read or write.",
        positive=True,
        shown_default="`timeout`",
    )
    connect_timeout: float | None = option(
        None,
        type=float,
        doc="Seconds. Deadline of one TCP + TLS connection attempt.",
        positive=True,
        shown_default="`min(2, timeout)`",
    )
    retries: int = option(
        DEFAULT_RETRIES,
        doc="Immediate retries (no back-off) of a command after a *connection* error, on a new "
        "connection: this hides one server restart from the caller. A timeout is never retried.",
        minimum=0,
    )
    max_connections: int = option(
        DEFAULT_MAX_CONNECTIONS,
        doc="Connection pool size (per node in a cluster). Operations beyond it wait for a free "
        "connection, within `timeout`.",
        minimum=1,
    )
    db: int | None = option(
        None,
        type=int,
        doc="Database number (not in a cluster).",
        minimum=0,
        shown_default="URL path or `0`",
    )
    service_name: str | None = option(
        None, doc="Sentinel: the name of the monitored primary.", shown_default="URL path"
    )
    sentinel_username: str | None = option(
        None, doc="Sentinel: user name of the sentinels themselves (the URL's is the primary's)."
    )
    sentinel_password: str | None = option(
        None,
        doc="Sentinel: password of the sentinels themselves (the URL's is the primary's).",
        secret=True,
    )


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
    mode, scheme_tls = _mode_of(spec)
    options = parse_options(RedisOptions, spec, store="redis")
    username, password, nodes, path = _split_url(spec, mode)
    service_name, db = _service_and_db(path, options, mode, where)
    tls = scheme_tls or options.tls
    timeout = options.timeout
    settings = RedisSettings(
        mode=mode,
        nodes=nodes,
        redacted_url=where,
        db=db,
        username=options.username or username,
        password=options.password or password,
        tls=tls,
        ca_file=options.ca_file,
        cert_file=options.cert_file,
        key_file=options.key_file,
        tls_insecure=options.tls_insecure,
        timeout=timeout,
        socket_timeout=options.socket_timeout or timeout,
        connect_timeout=options.connect_timeout or min(DEFAULT_CONNECT_TIMEOUT, timeout),
        retries=options.retries,
        max_connections=options.max_connections,
        service_name=service_name,
        sentinel_username=options.sentinel_username,
        sentinel_password=options.sentinel_password,
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


def _mode_of(spec: StoreSpec) -> tuple[Mode, bool]:
    if spec.scheme not in SCHEMES:
        raise ConfigurationError(
            f"store URL {spec.redacted_url!r}: scheme {spec.scheme!r} is not a Redis scheme; "
            f"use one of {', '.join(sorted(SCHEMES))}"
        )
    return SCHEMES[spec.scheme]


def _split_url(
    spec: StoreSpec, mode: Mode
) -> tuple[str | None, str | None, tuple[Node, ...], list[str]]:
    """The URL's user name, password, nodes and path segments."""
    where = spec.redacted_url
    try:
        parts = urlsplit(spec.url)
    except ValueError as exc:
        raise ConfigurationError(f"store URL {where!r} cannot be parsed: {exc}") from None
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
    return username, password, nodes, [segment for segment in parts.path.split("/") if segment]


def _service_and_db(
    path: list[str], options: RedisOptions, mode: Mode, where: str
) -> tuple[str | None, int]:
    """The sentinel service name and the database number, from the URL path and the options
    (which win)."""
    service_name = options.service_name
    if mode is Mode.SENTINEL:
        if path:
            service_name = options.service_name or unquote(path.pop(0))
        if not service_name:
            raise ConfigurationError(
                f"store URL {where!r}: a sentinel URL needs the master's name, as "
                f"redis+sentinel://host:26379/<service_name> or the option service_name"
            )
    db = 0
    if path:
        if len(path) > 1 or not (path[0].isascii() and path[0].isdigit()):
            raise ConfigurationError(
                f"store URL {where!r}: the path must be a database number, e.g. /0"
            )
        db = int(path[0])
    if options.db is not None:
        db = options.db
    if mode is Mode.CLUSTER and db != 0:
        raise ConfigurationError(f"store URL {where!r}: Redis Cluster has only database 0")
    return service_name, db


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
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5) or not (
        0 < int(port_text) < 65536
    ):
        raise ConfigurationError(f"store URL {where!r}: bad port {port_text!r} in {item!r}")
    return Node(host, int(port_text))
