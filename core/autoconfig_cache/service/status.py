"""The status server: ``/status``, ``/healthz``, ``/readyz`` and ``/metrics``.

* ``GET /status`` — JSON: where the configuration came from, every environment (SDK key masked
  to its last 4 characters) and filter, the stream's and the store's state, the cached data's age.
* ``GET /healthz`` — 200 while the process runs (liveness).
* ``GET /readyz`` — 200 once a complete configuration is held, from the cache or the stream;
  503 before. During a LaunchDarkly outage an instance that loaded the cache is ready, which is
  what lets an autoscaler add instances then.
* ``GET /metrics`` — Prometheus text format.

Both ``/status`` (its ``audit`` member) and ``/metrics`` (``autoconfig_cache_audit*``) show the
store audits (:mod:`autoconfig_cache.audit`): when the last ran, what it found and repaired, and
the records it left alone because another writer's key or format wrote them.

Nothing served here contains a secret in clear.

HTTP: :class:`~autoconfig_cache.service.http_server.HttpServer` (asyncio + h11, not aiohttp).

Cost: the environments and filters part of ``/status`` (10,000 environments are ~1.5 MB of
JSON) is serialised once per change of the manager's items (:attr:`StreamManager.state_version`)
and reused until the next change; only the small, time-dependent rest (ages, uptime, the stream's
state) is built per request. The server shares the event loop with the stream, so rendering it on
every request let a client polling ``/status`` delay the stream. ``environments=False``
(``AUTO_CONFIG_CACHE_STATUS_ENVIRONMENTS=false``) leaves the per-environment detail out.
"""

from __future__ import annotations

import errno
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import jsoncodec
from ..errors import PortInUseError as PortInUseError  # defined with every other error
from ..models import Environment, Filter
from ..secrets import mask
from ..stream.client import StreamState
from ..stream.handler import SnapshotSource
from ..stream.manager import StreamManager, StreamManagerStatus
from .http_server import HttpServer, Response

if TYPE_CHECKING:
    from ..audit import AuditStatus
    from ..sinks.status import DispatcherStatus

logger = logging.getLogger(__name__)

#: At most this many refused records are listed in ``/status`` (all are counted).
_REFUSED_SHOWN = 100

_JSON = b"application/json"
_JSON_UTF8 = b"application/json; charset=utf-8"
_TEXT_UTF8 = b"text/plain; charset=utf-8"
#: ``/healthz``'s body, as aiohttp's ``json_response`` (``json.dumps``) wrote it.
_HEALTHZ_BODY = json.dumps({"status": "ok"}).encode()


class StatusServer:
    """Serves the manager's state over HTTP.

    :param manager: the stream manager whose state is served.
    :param store_scheme: the store's URL scheme (``none`` without a store).
    :param store_format: the storage format (``v2`` or ``relay``).
    :param host: interface to listen on (an address, or a name to resolve).
    :param port: port to listen on; 0 picks a free one (see :attr:`port` after :meth:`start`).
    :param version: the package version shown in ``/status``.
    :param environments: include every environment in ``/status`` (``False``: only their count).
    :param sinks: returns the sinks' delivery counters (``None``: no sink configured; ``/status``
        shows ``"sinks": []``).
    """

    def __init__(
        self,
        manager: StreamManager,
        *,
        store_scheme: str,
        store_format: str,
        host: str,
        port: int,
        version: str | None = None,
        environments: bool = True,
        sinks: Callable[[], DispatcherStatus] | None = None,
    ) -> None:
        self.manager = manager
        self._sinks = sinks
        self.store_scheme = store_scheme
        self.store_format = store_format
        self.host = host
        self.port = port
        self.version = version
        self.environments = environments
        #: How many times the item part of ``/status`` was rendered (once per state change).
        self.render_count = 0
        self._items_fragment: bytes = b""
        self._items_version: int | None = None
        self.started_at = time.monotonic()
        routes = {
            b"/status": self._status,
            b"/healthz": self._healthz,
            b"/readyz": self._readyz,
            b"/metrics": self._metrics,
        }
        # Logged under this module's logger: a failing route is the status server's to report.
        self._http = HttpServer(routes, host=host, port=port, logger=logger)

    async def start(self) -> None:
        """Start listening.

        :raises PortInUseError: when the port is taken, naming the PORT setting.
        """
        try:
            await self._http.start()
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUseError(
                    f"port {self.port} on {self.host} is already in use; stop the other "
                    "process or set PORT (TOML: port) to a free port"
                ) from None
            raise PortInUseError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}; set PORT "
                "(TOML: port) or AUTO_CONFIG_CACHE_BIND_ADDRESS (TOML: bind_address)"
            ) from None
        self.port = self._http.port

    async def close(self) -> None:
        """Stop listening and close the connections (see :meth:`.http_server.HttpServer.close`).

        Idempotent; does nothing if :meth:`start` never ran or failed.
        """
        await self._http.close()

    # -- documents ----------------------------------------------------------------------------

    def status_document(self) -> dict[str, Any]:
        """The ``/status`` JSON, as a dict (parsed from :meth:`status_body`)."""
        document: dict[str, Any] = jsoncodec.loads(self.status_body())
        return document

    def status_body(self) -> bytes:
        """The ``/status`` JSON, serialised: the item part from the cache, the rest built now."""
        state = self.manager.status()
        head = _dumps(
            {
                "source": str(state.source),
                "ready": state.ready,
                "environmentCount": state.environments,
                "filterCount": state.filters,
            }
        )
        tail = _dumps(self._dynamic_json(state))
        # '{head...}' + ',' + '"environments":...,"filters":...' + ',' + '...tail}'
        return head[:-1] + b"," + self._items_json() + b"," + tail[1:]

    def _items_json(self) -> bytes:
        """The ``"environments":{...},"filters":{...}`` members, rendered once per state change.

        The version is read before the snapshot, with no await in between: a change made after
        the render bumps the version, so the next request renders again.
        """
        version = self.manager.state_version
        if self._items_version != version:
            snapshot = self.manager.snapshot()
            items: dict[str, Any] = {}
            if self.environments:
                items["environments"] = {
                    env_id: _environment_json(env)
                    for env_id, env in sorted(snapshot.environments.items())
                }
            items["filters"] = {
                filter_id: _filter_json(flt) for filter_id, flt in sorted(snapshot.filters.items())
            }
            self._items_fragment = _dumps(items)[1:-1]  # the members, without braces
            self._items_version = version
            self.render_count += 1
        return self._items_fragment

    def _dynamic_json(self, state: StreamManagerStatus) -> dict[str, Any]:
        """The part of ``/status`` that changes with time or the stream's state, per request."""
        return {
            "stream": {
                "connected": state.stream_connected,
                "lastEventTime": _iso(state.last_event_at),
                "connections": state.stream_connections,
                "error": state.stream_error,
                "stopped": state.stream_stopped,
                "state": str(state.stream_state),
                "stateSince": _iso(state.stream_state_since),
                "errorTime": _iso(state.stream_error_at),
                "errorStatus": state.stream_error_status,
                "unauthorized": state.stream_unauthorized,
                "retryExtended": state.stream_retry_extended,
                "nextAttemptTime": _iso(state.stream_next_attempt_at),
                # Events over AUTO_CONFIG_CACHE_MAX_EVENT_BYTES; each one dropped the connection.
                "oversizeEvents": state.stream_oversize_events,
                # Items refused as malformed or invalid; the rest of their events applied.
                "rejectedItems": state.stream_rejected_items,
            },
            "store": {
                "scheme": self.store_scheme,
                "format": self.store_format,
                "lastSuccessfulWrite": _iso(state.last_successful_write_at),
                "errorCount": state.store_error_count,
                "lastError": state.last_store_error,
                "lastErrorTime": _iso(state.last_store_error_at),
                "resyncPending": state.store_dirty,
                "resyncCount": state.resync_count,
                # Records the store refused (the rest was written): counted once per version
                # since the start, and those still refused, with why (at most _REFUSED_SHOWN).
                "refusedRecords": state.store_refused_records,
                "refused": [entry.to_json() for entry in state.store_refused[:_REFUSED_SHOWN]],
            },
            "cache": {
                "ageSeconds": _round(state.cached_data_age_seconds),
                "load": state.cache_load.to_json() if state.cache_load else None,
            },
            "audit": _audit_json(state.audit),
            # One object per sink: deliveries, failed attempts, drops, pending (docs/sinks.md).
            "sinks": self._sink_status().to_json(),
            "version": self.version,
            "uptimeSeconds": round(time.monotonic() - self.started_at, 3),
        }

    def _sink_status(self) -> DispatcherStatus:
        if self._sinks is not None:
            return self._sinks()
        # Imported here: a service without sinks loads nothing of theirs at start.
        from ..sinks.status import DispatcherStatus

        return DispatcherStatus()

    def metrics_text(self) -> str:
        """The ``/metrics`` Prometheus text."""
        state = self.manager.status()
        now = datetime.now(UTC)
        lines: list[str] = []

        def metric(name: str, kind: str, help: str, samples: list[tuple[str, float]]) -> None:
            lines.append(f"# HELP autoconfig_cache_{name} {help}")
            lines.append(f"# TYPE autoconfig_cache_{name} {kind}")
            for labels, value in samples:
                lines.append(f"autoconfig_cache_{name}{labels} {_number(value)}")

        metric("environments", "gauge", "Environments held.", [("", state.environments)])
        metric("filters", "gauge", "Payload filters held.", [("", state.filters)])
        metric("ready", "gauge", "1 once a complete configuration is held.", [("", state.ready)])
        metric(
            "source",
            "gauge",
            "Where the configuration held came from (1 for the current source).",
            [(f'{{source="{s}"}}', float(state.source is s)) for s in SnapshotSource],
        )
        metric(
            "stream_connected",
            "gauge",
            "1 while the AutoConfig stream is connected.",
            [("", state.stream_connected)],
        )
        metric(
            "stream_state",
            "gauge",
            "The AutoConfig stream's state (1 for the current one).",
            [(f'{{state="{s}"}}', float(state.stream_state is s)) for s in StreamState],
        )
        metric(
            "stream_state_age_seconds",
            "gauge",
            "Seconds since the stream entered its current state (NaN: unknown).",
            [("", _age(now, state.stream_state_since))],
        )
        metric(
            "stream_unauthorized",
            "gauge",
            "1 while LaunchDarkly rejects the AutoConfig key (401/403); retries continue.",
            [("", state.stream_unauthorized)],
        )
        metric(
            "stream_last_event_age_seconds",
            "gauge",
            "Seconds since the last stream event (NaN: none yet).",
            [("", _age(now, state.last_event_at))],
        )
        metric(
            "stream_oversize_events_total",
            "counter",
            "Stream events over the size limit (AUTO_CONFIG_CACHE_MAX_EVENT_BYTES); each one "
            "dropped the connection.",
            [("", state.stream_oversize_events)],
        )
        metric(
            "stream_rejected_items_total",
            "counter",
            "Items the stream sent that were refused as malformed or invalid (left out of a put, "
            "or a patch or delete skipped); the rest of each event was applied.",
            [("", state.stream_rejected_items)],
        )
        metric(
            "store_errors_total",
            "counter",
            "Failed store operations.",
            [("", state.store_error_count)],
        )
        metric(
            "store_refused_records_total",
            "counter",
            "Records the store refused (over a backend limit, or a version outside the valid "
            "range); the rest of each write went through. Each record counts once per version.",
            [("", state.store_refused_records)],
        )
        metric(
            "store_refused_records",
            "gauge",
            "Records the store refuses now (not written since); /status names them.",
            [("", len(state.store_refused))],
        )
        metric(
            "store_resync_pending",
            "gauge",
            "1 while the store is behind memory and a re-synchronisation is pending.",
            [("", state.store_dirty)],
        )
        metric(
            "store_last_write_age_seconds",
            "gauge",
            "Seconds since the last successful store write (NaN: none yet).",
            [("", _age(now, state.last_successful_write_at))],
        )
        # Here, not at the top: the audit module loads with the first audit, after start-up.
        from ..audit import AuditResult, AuditStatus

        audit = state.audit or AuditStatus(interval_seconds=0.0)
        metric(
            "audits_total",
            "counter",
            "Store audits run (each compares the store with memory and repairs what it lost), "
            "by result.",
            [(f'{{result="{r}"}}', audit.results.get(r, 0)) for r in AuditResult],
        )
        metric(
            "audit_repaired_records_total",
            "counter",
            "Records the store audits wrote again (missing, older or damaged in the store).",
            [("", audit.repaired_total)],
        )
        metric(
            "audit_found_records",
            "gauge",
            "What the last store audit found, by kind: missing, older and damaged are repaired; "
            "foreign (another key or a newer format) is left alone, as are ahead and unknown "
            "(another writer is ahead).",
            [(f'{{kind="{kind}"}}', count) for kind, count in audit.findings.to_json().items()],
        )
        metric(
            "audit_last_age_seconds",
            "gauge",
            "Seconds since the last store audit ended (NaN: none yet).",
            [("", _age(now, audit.last_audit_at))],
        )
        sinks = self._sink_status().sinks
        for name, kind, help, field in _SINK_METRICS:
            metric(
                name,
                kind,
                help,
                [(f'{{sink="{_label(sink.name)}"}}', getattr(sink, field)) for sink in sinks],
            )
        metric(
            "cached_data_age_seconds",
            "gauge",
            "Age of the cached data loaded at start-up (NaN: not loaded or unknown).",
            [("", _nan_if_none(state.cached_data_age_seconds))],
        )
        return "\n".join(lines) + "\n"

    # -- routes -------------------------------------------------------------------------------

    def _status(self) -> Response:
        return Response(200, _JSON, self.status_body(), ((b"Cache-Control", b"no-store"),))

    def _healthz(self) -> Response:
        return Response(200, _JSON_UTF8, _HEALTHZ_BODY)

    def _readyz(self) -> Response:
        # Two reads, not the whole status(): polled every few milliseconds during a start.
        ready = self.manager.ready.is_set()
        body = json.dumps({"ready": ready, "source": str(self.manager.source)}).encode()
        return Response(200 if ready else 503, _JSON_UTF8, body)

    def _metrics(self) -> Response:
        return Response(
            200,
            _TEXT_UTF8,
            self.metrics_text().encode(),
            ((b"X-Prometheus-Format", b"0.0.4"),),
        )


#: The per-sink metrics: name, type, help and the :class:`SinkStatus` field.
_SINK_METRICS = (
    ("sink_deliveries_total", "counter", "Changes delivered, per sink.", "delivered"),
    (
        "sink_failed_attempts_total",
        "counter",
        "Delivery attempts that failed or timed out, per sink (each retry counts).",
        "failed_attempts",
    ),
    (
        "sink_dropped_total",
        "counter",
        "Changes given up on after every attempt failed (or that can never be delivered), "
        "per sink.",
        "dropped",
    ),
    (
        "sink_skipped_total",
        "counter",
        "Changes not delivered because the delivery ledger says they already were, per sink.",
        "skipped",
    ),
    (
        "sink_pending",
        "gauge",
        "Changes received and not finished yet (queued, waiting for a retry, or running), per "
        "sink.",
        "pending",
    ),
)


def _label(value: str) -> str:
    """``value`` as a Prometheus label value: backslash, quote and newline escaped (a plugin
    names its sinks)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _dumps(value: Any) -> bytes:
    """Compact JSON; a string UTF-8 cannot hold (a lone surrogate) is escaped, never a 500."""
    try:
        return jsoncodec.dumps(value)
    except UnicodeEncodeError:
        return json.dumps(value, separators=(",", ":")).encode("ascii")


def _environment_json(env: Environment) -> dict[str, Any]:
    return {
        "envKey": env.env_key,
        "envName": env.env_name,
        "projKey": env.proj_key,
        "projName": env.proj_name,
        "version": env.version,
        "sdkKey": mask(env.sdk_key),
    }


def _audit_json(audit: AuditStatus | None) -> dict[str, Any] | None:
    """The ``audit`` member: the schedule, the last audit and what it found and repaired."""
    if audit is None:
        return None
    findings = audit.findings
    return {
        "intervalSeconds": audit.interval_seconds,
        "audits": audit.audits,
        "lastAuditTime": _iso(audit.last_audit_at),
        "lastResult": str(audit.last_result) if audit.last_result else None,
        "found": findings.to_json(),
        "repaired": audit.repaired,
        "repairedTotal": audit.repaired_total,
        "lastError": audit.last_error,
        "lastErrorTime": _iso(audit.last_error_at),
        # Left alone: another instance's key or a newer release's format (at most 100 listed).
        "foreign": [entry.to_json() for entry in audit.foreign],
    }


def _filter_json(flt: Filter) -> dict[str, Any]:
    return {"projKey": flt.proj_key, "key": flt.key, "version": flt.version}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _age(now: datetime, then: datetime | None) -> float:
    return float("nan") if then is None else max(0.0, (now - then).total_seconds())


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


def _number(value: float) -> str:
    if value != value:  # NaN
        return "NaN"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3f}"
