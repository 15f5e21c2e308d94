"""The service behind ``autoconfig-cache run``: cache, stream manager and status server, wired.

Start-up never waits for the store: the store factory does not connect, and the manager's cache
read failing is only logged and counted. So an instance whose store is down starts and serves
from the stream; one whose stream is down serves from the cache.

The command line (``cli/run_cmd.py``) reads the configuration, sets up logging and calls
:func:`serve`; this module never imports the command line.

Shutdown on SIGTERM or SIGINT: stop answering HTTP, stop the stream (queued store writes get a
moment to finish), close the store, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from ..cache import AutoConfigCache
from ..config import SETTINGS, Config
from ..errors import ConfigurationError
from ..models import Environment, Filter
from ..project import installed_version
from ..secrets import redact_url
from ..sinks.ledger import DeliverAllLedger, DeliveryLedger
from ..stream.client import BackoffPolicy, StreamClient
from ..stream.handler import AutoConfigHandler, BaseHandler, FanOutHandler, SnapshotSource
from ..stream.manager import StreamManager
from .deliveries import close_delivery_ledger, open_delivery_ledger
from .sink_setup import build_sinks
from .status import StatusServer

if TYPE_CHECKING:
    from ..sinks.dispatcher import SinkDispatcher

logger = logging.getLogger(__name__)


class LoggingHandler(BaseHandler):
    """Logs each change at INFO: what changed, never its keys (item reprs mask them).

    The initial load — every item added until the first complete configuration is held, from
    the cache or the stream's first put — is logged as one INFO line with the counts; its
    items are logged at DEBUG. Formatting and writing one line per environment costs tens of
    microseconds each, so a start from a 10,000-environment cache would spend a large part of
    its start-up (~0.3 s) logging before ``/readyz`` could answer. The Relay Proxy, which has
    no cache to start from, logs one "Received configuration for N environment(s)" line per
    put and then each added environment (ld-relay ``internal/autoconfig/messages.go``,
    ``logMsgPutEvent``, ``logMsgAddEnv``); here every change after the initial load is logged
    per item at INFO, as there.

    Each method returns at once when its level is off: reading an item's keys for the message
    decodes them from its JSON, which a start from a large cache would otherwise pay for every
    environment, for nothing.
    """

    def __init__(self) -> None:
        # Items added before the first complete configuration (the initial load), by kind.
        self._initial: dict[str, int] | None = {"environments": 0, "filters": 0}

    def _added_level(self, kind: str) -> int | None:
        """The level to log an added item at (DEBUG during the initial load, which counts it,
        else INFO); ``None`` when that level is off."""
        if self._initial is None:
            level = logging.INFO
        else:
            self._initial[kind] += 1
            level = logging.DEBUG
        return level if logger.isEnabledFor(level) else None

    def on_environment_added(self, env: Environment) -> None:
        """Log an added environment."""
        level = self._added_level("environments")
        if level is None:
            return
        logger.log(
            level,
            "environment added: %s/%s (%s) v%d",
            env.proj_key,
            env.env_key,
            env.env_id,
            env.version,
        )

    def on_environment_updated(self, env: Environment) -> None:
        """Log an updated environment."""
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info(
            "environment updated: %s/%s (%s) v%d",
            env.proj_key,
            env.env_key,
            env.env_id,
            env.version,
        )

    def on_environment_deleted(self, env: Environment) -> None:
        """Log a deleted environment."""
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info("environment deleted: %s/%s (%s)", env.proj_key, env.env_key, env.env_id)

    def on_filter_added(self, filter: Filter) -> None:
        """Log an added filter."""
        level = self._added_level("filters")
        if level is None:
            return
        logger.log(
            level,
            "filter added: %s/%s (%s) v%d",
            filter.proj_key,
            filter.key,
            filter.filter_id,
            filter.version,
        )

    def on_filter_updated(self, filter: Filter) -> None:
        """Log an updated filter."""
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info(
            "filter updated: %s/%s (%s) v%d",
            filter.proj_key,
            filter.key,
            filter.filter_id,
            filter.version,
        )

    def on_filter_deleted(self, filter: Filter) -> None:
        """Log a deleted filter."""
        if not logger.isEnabledFor(logging.INFO):
            return
        logger.info("filter deleted: %s/%s (%s)", filter.proj_key, filter.key, filter.filter_id)

    def on_all_environments_received(self, source: SnapshotSource) -> None:
        """Log that a complete configuration is held (the first time, with the counts of the
        initial load)."""
        initial, self._initial = self._initial, None
        if initial is None:
            logger.info("complete configuration held (source: %s); ready", source)
            return
        logger.info(
            "complete configuration held (source: %s): %d environments and %d filters loaded "
            "(each listed at DEBUG); ready",
            source,
            initial["environments"],
            initial["filters"],
        )


def stream_client(
    config: Config, autoconfig_key: str, *, backoff: BackoffPolicy | None = None
) -> StreamClient:
    """The stream client ``config`` describes: stream URI, outbound proxy, extra CA files.

    :raises ConfigurationError: when the client rejects a setting (the configuration has already
        checked them, so only a file that changed since can get here).
    """
    if config.proxy_url:
        logger.info("AutoConfig stream through the proxy at %s", redact_url(config.proxy_url))
    try:
        return StreamClient(
            config.stream_uri,
            autoconfig_key,
            backoff=backoff,
            proxy_url=config.proxy_url,
            proxy_user=config.proxy_user,
            proxy_password=config.proxy_password,
            ca_files=config.ca_cert_files,
            max_event_bytes=config.max_event_bytes,
        )
    except ValueError as exc:
        raise ConfigurationError(
            f"{exc}; check PROXY_URL, PROXY_AUTH_* and PROXY_CA_CERTS"
        ) from None


def _no_cache_warning(config: Config) -> str:
    """What running without a store means, and the settings that give it one."""
    switches = f" (or {' / '.join(config.store_switches)})" if config.store_switches else ""
    return (
        "no cache is configured: the AutoConfig data is held in memory only, so an instance "
        "that starts or restarts while LaunchDarkly is unreachable has nothing to serve "
        "(/readyz 503): no outage protection. Set "
        f"{SETTINGS['store'].name()}{switches} and {SETTINGS['cache_key'].name()} to keep the "
        "data in a store"
    )


class Service:
    """One running instance: cache + stream manager + status server.

    :param config: the validated configuration.
    :param port: overrides ``config.port`` (0 picks a free port; the demo and tests use it).
    :param host: overrides ``config.bind_address``.
    :param handler: receives changes (default: logs them).
    :param backoff: stream reconnection delays (default: the Relay Proxy's).
    """

    def __init__(
        self,
        config: Config,
        *,
        port: int | None = None,
        host: str | None = None,
        handler: BaseHandler | None = None,
        backoff: BackoffPolicy | None = None,
    ) -> None:
        self.config = config
        autoconfig_key = config.require_autoconfig_key()
        # Before the cache is opened, so that a bad proxy or CA setting leaves nothing open.
        client = stream_client(config, autoconfig_key, backoff=backoff)
        # Also before the cache: a sink spec no plugin can build is a configuration error.
        sinks = build_sinks(config)
        #: Delivers changes to the sinks (docs/sinks.md); ``None`` when none is configured.
        self.dispatcher: SinkDispatcher | None = None
        service_handler: AutoConfigHandler = handler or LoggingHandler()
        #: Which changes are still due to the sinks (docs/sinks.md, "Outage, restart and fleet").
        self.ledger: DeliveryLedger = DeliverAllLedger()
        if sinks:
            # Here, not at the top: a service without sinks never loads their machinery.
            from ..sinks.tracker import ChangeTracker
            from .sink_setup import build_dispatcher

            self.ledger = open_delivery_ledger(config)
            self.dispatcher = build_dispatcher(config, sinks, ledger=self.ledger)
            # The tracker only enqueues: a slow sink never holds up the stream or the cache.
            tracker = ChangeTracker(self.dispatcher.submit)
            service_handler = FanOutHandler(service_handler, tracker)
            logger.info("sinks: %s", ", ".join(sink.name for sink in sinks))
        if config.store_url:
            self.cache = config.open_cache()
        else:
            self.cache = AutoConfigCache.null()
            logger.warning(_no_cache_warning(config))
        self.manager = StreamManager(
            self.cache,
            service_handler,
            client=client,
            audit_interval=config.audit_interval,
        )
        self.status_server = StatusServer(
            self.manager,
            store_scheme=config.store_scheme,
            store_format=str(config.format),
            host=config.bind_address if host is None else host,
            port=config.port if port is None else port,
            version=installed_version(),
            environments=config.status_environments,
            sinks=self.dispatcher.status if self.dispatcher is not None else None,
        )

    @property
    def port(self) -> int:
        """The status server's port (the real one once started with port 0)."""
        return self.status_server.port

    async def start(self) -> None:
        """Start the manager, then bind the status port while the cache is being read, so that
        ``/readyz`` turns 200 as soon as both are done.

        A port in use still fails fast: its error is known before a store that reads in its
        own thread or over a connection (SQLite, Redis, DynamoDB) can have answered, and
        everything started is closed again, before anything was served, applied or delivered.

        :raises PortInUseError: when the port is taken.
        """
        try:
            if self.dispatcher is not None:
                self.dispatcher.start()  # before the manager: the cache's changes are delivered
            await self.manager.start()
            # One turn of the loop: the manager's cache task sends its read to the store, which
            # then reads while this task binds the port.
            await asyncio.sleep(0)
            await self.status_server.start()
        except BaseException:
            await self.close()
            raise
        logger.info(
            "autoconfig-cache running: store %s (cache key %s, format %s), stream %s, "
            "status on http://%s:%d/status",
            self.config.redacted_store_url or "none (caching off)",
            self.config.cache_key,
            self.config.format,
            self.config.stream_uri,
            self.status_server.host,
            self.port,
        )

    async def close(self) -> None:
        """Stop HTTP, the stream, the sinks and the store, in that order. Idempotent.

        The sinks close after the stream stops (no change arrives any more): pending deliveries
        get the dispatcher's bounded wait, then a hook still running is stopped.
        """
        await self.status_server.close()
        await self.manager.close()
        if self.dispatcher is not None:
            await self.dispatcher.close()
        await close_delivery_ledger(self.ledger)
        await self.cache.close()

    async def __aenter__(self) -> Service:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()


async def serve(config: Config) -> int:
    """Run one instance until SIGTERM or SIGINT; return the exit status (0)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    service = Service(config)
    await service.start()
    try:
        await stop.wait()
        logger.info("shutting down: closing the stream and the store")
    finally:
        await service.close()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("stopped")
    return 0
