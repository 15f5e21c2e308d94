"""The AutoConfig stream connection: request, read loop, and the Relay Proxy's retry policy.

``GET {stream_uri}/relay_auto_config?rpacProtocolVersion=2`` with ``Authorization: <AutoConfig
key>``. The policy is the Relay Proxy v9's (ld-relay ``internal/autoconfig/stream_manager.go``:
``newStreamErrorHandler``, ``streamExtendedRetryDelay``; ``internal/retry/retry.go``):

* retry with exponential backoff: 1 s base, doubled per attempt, capped at 30 s, with jitter 0.5
  (the delay is drawn from ``[d/2, d]``); the attempt count resets once a connection has stayed
  up for 60 s;
* the server's ``retry:`` field replaces the base delay, clamped here to between the policy's base
  (1 s) and its cap (30 s): a ``retry: 0`` must not remove the backoff (a server that sends it and
  closes would otherwise get thousands of reconnects per second), nor a huge value stall the
  client;
* an event larger than ``max_event_bytes`` drops the connection (retried on the normal schedule)
  and is counted in :attr:`ConnectionState.oversize_events`;
* read timeout 5 min between two reads (the server sends heartbeat comments well inside it);
* nothing stops the client for good. A failure that is unlikely to correct itself soon — an HTTP
  4xx other than 400, 408 and 429, above all 401/403, a rejected AutoConfig key — switches to the
  *extended* schedule: 5 min, doubling up to 1 h, same jitter, until a connection has again stayed
  up for 60 s. A rejected key can be made valid again in LaunchDarkly without this process
  knowing, so it keeps asking, but slowly enough not to hammer the service;
* any other HTTP status, network or TLS error, read timeout, end of stream, or invalid
  event-stream bytes → retry on the normal schedule (ld-relay keeps transport failures there too).

The connection state follows the SDK data-source states that Relay reports: ``initializing``
until the first event is handled, ``valid`` while events are handled, ``interrupted`` after a
failure once it had been valid (a failure while initializing stays ``initializing``), ``off``
once :meth:`StreamClient.run` has ended.

Outbound proxy and trust: ``proxy_url`` (Relay's ``PROXY_URL``) is used for every request and
wins over the environment; without it, ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` are honoured
(``trust_env``). ``ca_files`` (Relay's ``PROXY_CA_CERTS``) are PEM files trusted in addition to
the default trust store, which OpenSSL reads from ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set.

The AutoConfig key and proxy credentials are never logged or kept in an error in clear.

aiohttp is imported by the first connection, in a worker thread (:func:`import_aiohttp`), not
with this module nor by the constructor: the service builds its client before it serves
``/readyz``, which the ~165 ms of that import would otherwise hold back.
"""

from __future__ import annotations

import asyncio
import enum
import importlib
import logging
import random
import re
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import attrs

# Defined in errors.py with every other error; imported from here too, as before 0.2.
from ..errors import AuthenticationError as AuthenticationError
from ..errors import StreamHTTPError as StreamHTTPError
from ..secrets import mask, redact_url
from .sse import (
    DEFAULT_MAX_EVENT_BYTES,
    ServerSentEvent,
    SSEEventTooLargeError,
    SSEParseError,
    SSEParser,
)

if TYPE_CHECKING:
    # Imported at the first connection (import_aiohttp): importing it costs ~165 ms (its
    # connector even builds two TLS contexts), which the service must not pay before /readyz.
    import aiohttp

logger = logging.getLogger(__name__)

STREAM_PATH = "/relay_auto_config"
PROTOCOL_QUERY = "rpacProtocolVersion=2"
DEFAULT_STREAM_URI = "https://stream.launchdarkly.com"


class RestartStream(Exception):
    """Raised by an event callback to drop the current connection and open a new one."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class StreamState(enum.StrEnum):
    """The connection state, as Relay reports its AutoConfig stream (SDK data-source states)."""

    INITIALIZING = "initializing"  # never handled an event yet
    VALID = "valid"  # events are being handled
    INTERRUPTED = "interrupted"  # was valid; reconnecting (or the key is being rejected)
    OFF = "off"  # run() has ended: closed or cancelled


@attrs.frozen
class BackoffPolicy:
    """Reconnection delays, in seconds. Defaults are the Relay Proxy's."""

    base: float = 1.0
    maximum: float = 30.0
    jitter: float = 0.5
    reset_after: float = 60.0

    def delay(self, attempt: int, *, base: float | None = None, rand: float = 1.0) -> float:
        """The delay before retry number ``attempt`` (0 for the first retry).

        ``base`` overrides :attr:`base` (the server's ``retry:``); ``rand`` in ``[0, 1)`` is the
        random draw, so that this stays a pure function: ``d - d * jitter * rand`` with
        ``d = min(maximum, base * 2**attempt)``.
        """
        return backoff_delay(
            attempt,
            base=self.base if base is None else base,
            maximum=self.maximum,
            jitter=self.jitter,
            rand=rand,
        )


#: The schedule after a failure unlikely to correct itself soon (ld-relay
#: ``streamExtendedRetryDelay`` = 5 min, ``streamExtendedMaxRetryDelay`` = 1 h, jitter 0.5).
EXTENDED_BACKOFF = BackoffPolicy(base=300.0, maximum=3600.0, jitter=0.5, reset_after=60.0)


def backoff_delay(
    attempt: int, *, base: float, maximum: float, jitter: float, rand: float
) -> float:
    """Exponential backoff with jitter; see :meth:`BackoffPolicy.delay`."""
    # Cap the exponent: 2**64 seconds is no more useful than the cap, and avoids float overflow.
    exponential = base * (2.0 ** min(max(attempt, 0), 64))
    delay = min(maximum, exponential)
    return delay - delay * jitter * rand


def is_unexpected_status(status: int) -> bool:
    """Whether an HTTP failure is unlikely to correct itself soon (→ the extended schedule).

    Relay's ``retry.ClassifyHTTPStatus``: a 4xx means a bad credential or a bad request, except
    400 (possibly from an intermediary), 408 (a timeout) and 429 (slow down), which are transient.
    """
    return 400 <= status < 500 and status not in (400, 408, 429)


@attrs.define
class ConnectionState:
    """What the client knows about its connection; read it, do not write it.

    Times from ``time.time()``; ``None`` means "never" (or "not now" for ``next_attempt_at``).
    """

    connected: bool = False
    connected_since: float | None = None  # time.time() of the current connection
    last_event_at: float | None = None  # time.time() of the last dispatched event
    last_read_monotonic: float | None = None  # time.perf_counter() of the last chunk read
    attempts: int = 0  # consecutive failed attempts, for the backoff
    connections: int = 0  # successful connections so far
    last_error: str | None = None  # why the last attempt failed (secrets masked); kept on recovery
    retry_base: float | None = None  # seconds, from the server's retry: field
    state: StreamState = StreamState.INITIALIZING
    state_since: float = attrs.field(factory=time.time)
    last_error_at: float | None = None
    last_error_status: int | None = None  # HTTP status of the last failure (None: no response)
    unauthorized: bool = False  # the last failure was a rejected key (401/403)
    extended: bool = False  # retrying on the extended schedule
    next_attempt_at: float | None = None  # while waiting to reconnect
    oversize_events: int = 0  # events over max_event_bytes (each dropped the connection)


EventCallback = Callable[[ServerSentEvent], Awaitable[None]]
StateCallback = Callable[[bool], Awaitable[None] | None]
Sleep = Callable[[float], Awaitable[None]]

_USERINFO = re.compile(r"(?<=://)([^/@\s:]*):([^/@\s]*)@")


class StreamClient:
    """Keeps one AutoConfig stream connection open and hands its events to a callback.

    :param stream_uri: the stream base URI (``https://stream.launchdarkly.com`` in production).
    :param autoconfig_key: the Relay Proxy AutoConfig key, sent as ``Authorization``.
    :param backoff: reconnection delays (the normal schedule).
    :param extended_backoff: delays after a failure unlikely to fix itself (401/403, most 4xx).
    :param read_timeout: seconds without any byte (event or heartbeat) before reconnecting.
    :param connect_timeout: seconds to open the connection and receive the response headers.
    :param session: an aiohttp session to use; by default the client owns one. A session passed
        in is used as it is: the proxy and TLS settings below still apply to each request.
    :param rand: the random source of the jitter (for tests).
    :param sleep: how to wait between attempts (for tests: record the delays, do not wait).
    :param proxy_url: an ``http://`` or ``https://`` proxy for every request (credentials may be
        in the URL); it wins over the environment's proxy variables.
    :param proxy_user: proxy user name (Basic authentication), if not in ``proxy_url``.
    :param proxy_password: its password.
    :param ca_files: PEM files of CA certificates to trust in addition to the default ones.
    :param trust_env: without ``proxy_url``, honour ``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY``.
    :param max_event_bytes: the largest event (its ``data`` lines together, in bytes); a larger
        one drops the connection.
    :raises ValueError: on an empty key, a proxy URL that is not http(s), a password without a
        user, or a CA file that cannot be read or holds no certificate.
    """

    def __init__(
        self,
        stream_uri: str,
        autoconfig_key: str,
        *,
        backoff: BackoffPolicy | None = None,
        extended_backoff: BackoffPolicy = EXTENDED_BACKOFF,
        read_timeout: float = 300.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        rand: Callable[[], float] = random.random,
        sleep: Sleep = asyncio.sleep,
        user_agent: str = "autoconfig-cache",
        proxy_url: str | None = None,
        proxy_user: str | None = None,
        proxy_password: str | None = None,
        ca_files: Sequence[str] = (),
        trust_env: bool = True,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        if not autoconfig_key or not autoconfig_key.strip():
            raise ValueError("an AutoConfig key is required to connect to the AutoConfig stream")
        self.url = f"{stream_uri.rstrip('/')}{STREAM_PATH}?{PROTOCOL_QUERY}"
        self._key = autoconfig_key
        self.backoff = backoff or BackoffPolicy()
        self.extended_backoff = extended_backoff
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self._session = session
        self._owns_session = session is None
        self._rand = rand
        self._sleep = sleep
        self._user_agent = user_agent
        self._trust_env = trust_env
        self.max_event_bytes = max_event_bytes
        self._secrets = [autoconfig_key]
        self._proxy = self._proxy_with_credentials(proxy_url, proxy_user, proxy_password)
        # The files are checked now, so that a bad one fails the start; the full TLS context
        # (which loads the system's CA bundle, ~30 ms) is built at the first TLS connection.
        self._ca_files = tuple(ca_files)
        load_ca_files(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), self._ca_files)
        self._ssl_context: ssl.SSLContext | None = None
        self.state = ConnectionState()
        self._connected_monotonic = 0.0
        self._ever_valid = False

    def __repr__(self) -> str:
        proxy = f", proxy={redact_url(self._proxy)!r}" if self._proxy else ""
        return f"StreamClient(url={redact_url(self.url)!r}, key={mask(self._key)!r}{proxy})"

    def _proxy_with_credentials(
        self, proxy_url: str | None, user: str | None, password: str | None
    ) -> str | None:
        if not proxy_url:
            if user or password:
                raise ValueError("proxy credentials were given without a proxy URL")
            return None
        parts = urlsplit(proxy_url)
        if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"the proxy URL must be http:// or https://, got {redact_url(proxy_url)!r}"
            )
        if parts.password:
            self._secrets.append(parts.password)
        if password and not user:
            raise ValueError("a proxy password was given without a proxy user name")
        if not user:
            return proxy_url
        if parts.username:
            raise ValueError("proxy credentials were given both in the proxy URL and separately")
        # Credentials in the proxy URL are how aiohttp sends Basic Proxy-Authorization, both on a
        # CONNECT (https targets) and on a forwarded plain-http request.
        if password:
            self._secrets.append(password)
        userinfo = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
        return urlunsplit(parts._replace(netloc=f"{userinfo}@{parts.netloc}"))

    def _scrub(self, text: str) -> str:
        """``text`` without any secret in clear (errors can quote URLs and headers)."""
        text = _USERINFO.sub(lambda m: f"{m.group(1)}:****@", text)
        for secret in self._secrets:
            if secret:
                shown = mask(secret) if secret == self._key else "****"
                text = text.replace(secret, shown)
                quoted = quote(secret, safe="")
                if quoted != secret:
                    text = text.replace(quoted, shown)
        return text

    def next_delay(self) -> float:
        """The delay before the next attempt, given the failures so far and ``retry:``."""
        if self.state.extended:
            return self.extended_backoff.delay(self.state.attempts, rand=self._rand())
        return self.backoff.delay(
            self.state.attempts, base=self.state.retry_base, rand=self._rand()
        )

    async def run(self, on_event: EventCallback, on_state: StateCallback | None = None) -> None:
        """Connect, read, reconnect, until cancelled. It never gives up on its own.

        ``on_event`` is awaited for every event, in order; raising :class:`RestartStream` from it
        drops the connection (the next attempt follows the backoff). ``on_state(True/False)`` is
        called when the connection opens and closes. A rejected key (401/403) is logged as an
        error with the key masked, kept in :attr:`state` and retried on the extended schedule.
        """
        if self.state.state is StreamState.OFF:  # run again after it had ended
            self._force_state(
                StreamState.INTERRUPTED if self._ever_valid else StreamState.INITIALIZING
            )
        try:
            while True:
                status: int | None = None
                was_connected = False
                try:
                    await self._connect_once(on_event, on_state)
                    reason = "the server closed the stream"
                except StreamHTTPError as exc:
                    status = exc.status
                    reason = str(exc)
                except RestartStream as exc:
                    reason = exc.reason
                except SSEEventTooLargeError as exc:
                    self.state.oversize_events += 1
                    reason = str(exc)
                except SSEParseError as exc:
                    reason = f"invalid event-stream data: {exc}"
                except TimeoutError:
                    reason = f"no data for {self.read_timeout:g} s (read timeout)"
                except Exception as exc:
                    transport_reason = _transport_failure_reason(exc)
                    if transport_reason is None:
                        raise
                    reason = transport_reason
                finally:
                    was_connected = self.state.connected
                    await self._set_disconnected(on_state)
                await self._wait_before_retry(self._scrub(reason), status, was_connected)
        finally:
            self.state.next_attempt_at = None
            self._set_state(StreamState.OFF)
            if self._owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _wait_before_retry(
        self, reason: str, status: int | None, was_connected: bool
    ) -> None:
        state = self.state
        state.last_error = reason
        state.last_error_at = time.time()
        state.last_error_status = status
        state.unauthorized = status in (401, 403)
        unexpected = status is not None and is_unexpected_status(status)
        self._set_state(StreamState.INTERRUPTED)
        if was_connected:
            up_for = time.monotonic() - self._connected_monotonic
            if up_for >= self.backoff.reset_after:
                # Healthy long enough: back to the normal schedule, from its start.
                state.attempts = 0
                state.extended = False
        if unexpected and not state.extended:
            # Start the extended schedule at its own base (5 min), not where the normal one was.
            state.extended = True
            state.attempts = 0
            logger.info(
                "AutoConfig stream: extended retry schedule engaged (%g s doubling up to %g s) "
                "until a connection stays up %g s",
                self.extended_backoff.base,
                self.extended_backoff.maximum,
                self.backoff.reset_after,
            )
        delay = self.next_delay()
        state.attempts += 1
        where = redact_url(self.url)
        if state.unauthorized:
            logger.error("AutoConfig stream %s: %s; next attempt in %.0f s", where, reason, delay)
        elif unexpected:  # on the extended schedule now, engaged above if not before
            logger.error(
                "AutoConfig stream %s: %s, unlikely to correct itself soon; next attempt in "
                "%.0f s (extended schedule)",
                where,
                reason,
                delay,
            )
        else:
            logger.warning("AutoConfig stream %s: %s; reconnecting in %.2f s", where, reason, delay)
        state.next_attempt_at = time.time() + delay
        try:
            await self._sleep(delay)
        finally:
            state.next_attempt_at = None

    def _set_state(self, new: StreamState) -> None:
        current = self.state.state
        if current is StreamState.OFF:
            return  # terminal for this run()
        if new is StreamState.INTERRUPTED and current is StreamState.INITIALIZING:
            # A connection that never worked must not report that it once did (as Relay does).
            return
        if new is not current:
            self._force_state(new)

    def _force_state(self, new: StreamState) -> None:
        self.state.state = new
        self.state.state_since = time.time()

    def _mark_valid(self) -> None:
        self.state.unauthorized = False
        self._ever_valid = True
        if self.state.state is not StreamState.VALID:
            if self.state.state is StreamState.INTERRUPTED:
                logger.info("AutoConfig stream valid again")
            self._set_state(StreamState.VALID)

    async def _set_disconnected(self, on_state: StateCallback | None) -> None:
        if self.state.connected:
            self.state.connected = False
            if on_state is not None:
                result = on_state(False)
                if result is not None:
                    await result

    def _request_proxy(self) -> str | None:
        """The proxy for the stream request: the configured one, else the environment's."""
        if self._proxy is not None:
            return self._proxy
        if not self._trust_env:
            return None
        # urllib's reading of HTTP(S)_PROXY / NO_PROXY, as aiohttp's trust_env does, but without
        # its ~/.netrc look-up, which could add a second Authorization beside the key's. Imported
        # here, not with this module: aiohttp's import (aiohttp/helpers.py) has loaded it by now.
        import urllib.request

        parts = urlsplit(self.url)
        host = parts.hostname or ""
        if host and urllib.request.proxy_bypass(host):
            return None
        proxy = urllib.request.getproxies().get(parts.scheme.lower())
        password = urlsplit(proxy).password if proxy else None
        if password and password not in self._secrets:
            self._secrets.append(password)
        return proxy or None

    async def _connect_once(self, on_event: EventCallback, on_state: StateCallback | None) -> None:
        """One connection, from the request to the end of the response body."""
        await import_aiohttp()
        import aiohttp  # loaded by import_aiohttp: this only looks it up in sys.modules

        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {
            "Authorization": self._key,
            "Accept": "text/event-stream",
            "Cache-Control": "no-cache",
            "User-Agent": self._user_agent,
        }
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
        )
        proxy = self._request_proxy()
        logger.debug(
            "connecting to AutoConfig stream %s (key %s%s)",
            redact_url(self.url),
            mask(self._key),
            f", through proxy {redact_url(proxy)}" if proxy else "",
        )
        request_kwargs: dict[str, Any] = {
            "headers": headers,
            "timeout": timeout,
            "ssl": await self._tls_context(proxy),
            "proxy": proxy,
        }
        async with self._session.get(self.url, **request_kwargs) as response:
            if response.status in (401, 403):
                raise AuthenticationError(response.status, self._key)
            if response.status != 200:
                raise StreamHTTPError(response.status)
            self.state.connected = True
            self.state.connected_since = time.time()
            self._connected_monotonic = time.monotonic()
            self.state.connections += 1
            logger.info("AutoConfig stream connected: %s", redact_url(self.url))
            if on_state is not None:
                result = on_state(True)
                if result is not None:
                    await result
            parser = SSEParser(max_event_bytes=self.max_event_bytes)
            async for chunk in response.content.iter_any():
                self.state.last_read_monotonic = time.perf_counter()
                await self._dispatch(parser, chunk, on_event)

    async def _tls_context(self, proxy: str | None) -> ssl.SSLContext | bool:
        """The TLS context when the stream or its proxy speaks TLS, else ``True`` (no TLS is
        negotiated, so aiohttp's default is never used).

        Built once, lazily: a plain ``http://`` stream (a local Relay or a test server) never
        pays for loading the CA bundle, and an ``https://`` one loads it in a thread, as aiohttp
        advises for its own contexts (``aiohttp/connector.py``, ``_make_ssl_context``: "not
        async-friendly ... should be called from a thread"), so the status server keeps
        answering meanwhile. Built at the connection rather than at construction so that
        ``SSL_CERT_FILE``/``SSL_CERT_DIR`` are read as they are then.
        """
        if self._ssl_context is None:
            schemes = {urlsplit(self.url).scheme.lower()}
            if proxy:
                schemes.add(urlsplit(proxy).scheme.lower())
            if "https" not in schemes:
                return True
            self._ssl_context = await asyncio.to_thread(make_ssl_context, self._ca_files)
        return self._ssl_context

    async def _dispatch(self, parser: SSEParser, chunk: bytes, on_event: EventCallback) -> None:
        # A function of its own so that a large event (a 10 MB put) is not kept alive by a loop
        # variable while the connection waits for the next chunk.
        events = parser.feed(chunk)
        # The chunk is parsed whole: its retry: is known before any of its events is handled,
        # and kept even if handling one restarts the stream.
        self._take_retry(parser)
        for event in events:
            self.state.last_event_at = time.time()
            await on_event(event)
            # Valid once an event has been handled, as Relay marks its stream (markValid).
            self._mark_valid()
        if parser.error is not None:
            # The chunk's good events are handled above; now the bad line drops the connection.
            raise parser.error

    def _take_retry(self, parser: SSEParser) -> None:
        if parser.retry is not None:
            # Clamped: no server can switch the backoff off (retry: 0) or stall it for days.
            seconds = parser.retry / 1000.0
            self.state.retry_base = min(max(seconds, self.backoff.base), self.backoff.maximum)

    async def close(self) -> None:
        """Close the owned HTTP session (``run`` also does when it ends)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None


#: Whether :func:`import_aiohttp` has run to its end: aiohttp is then fully imported, and only
#: then can an aiohttp exception reach :meth:`StreamClient.run`.
_aiohttp_imported = False


async def import_aiohttp() -> None:
    """Import aiohttp in a worker thread, once per process, so that the event loop keeps
    serving (``/readyz`` above all) during the ~165 ms it takes; later calls return at once.

    Should another thread be importing aiohttp at that moment, ``importlib`` makes the worker,
    not the loop, wait for that import to finish.
    """
    global _aiohttp_imported
    if not _aiohttp_imported:
        await asyncio.to_thread(importlib.import_module, "aiohttp")
        _aiohttp_imported = True


def _transport_failure_reason(exc: Exception) -> str | None:
    """Why the connection failed, for a network, TLS or HTTP-client error (secrets not yet
    scrubbed); ``None`` for any other exception, which is not the connection's to handle."""
    # Before aiohttp is imported (the first connection imports it) none of its errors exists.
    if _aiohttp_imported:
        import aiohttp  # loaded: this only looks it up in sys.modules

        if isinstance(exc, aiohttp.ClientConnectorCertificateError):
            return _certificate_reason(exc)
        if isinstance(exc, aiohttp.ClientError):
            return f"{type(exc).__name__}: {exc}"
    if isinstance(exc, OSError):
        return f"{type(exc).__name__}: {exc}"
    return None


def make_ssl_context(ca_files: Sequence[str] = ()) -> ssl.SSLContext:
    """The TLS context of the stream: the default trust store plus ``ca_files``.

    The default store is OpenSSL's, which ``SSL_CERT_FILE``/``SSL_CERT_DIR`` replace when set; the
    files add to it, as Relay's ``PROXY_CA_CERTS`` adds to the system pool (go-server-sdk
    ``ldhttp/http_transport.go``, ``CACertFileOption``).

    :raises ValueError: a file cannot be read or holds no PEM certificate.
    """
    context = ssl.create_default_context()
    load_ca_files(context, ca_files)
    return context


def load_ca_files(context: ssl.SSLContext, ca_files: Sequence[str]) -> None:
    """Add the PEM certificates of ``ca_files`` to the trust of ``context``.

    :raises ValueError: a file cannot be read or holds no PEM certificate.
    """
    for path in ca_files:
        try:
            context.load_verify_locations(cafile=path)
        except FileNotFoundError:
            raise ValueError(f"CA certificate file {path!r} does not exist") from None
        except ssl.SSLError:  # before OSError, of which it is a subclass
            raise ValueError(f"CA certificate file {path!r} holds no PEM certificate") from None
        except OSError as exc:
            raise ValueError(
                f"CA certificate file {path!r} cannot be read: {exc.strerror or exc}"
            ) from None


def _certificate_reason(exc: aiohttp.ClientConnectorCertificateError) -> str:
    error = exc.certificate_error
    detail = getattr(error, "verify_message", None) or str(error)
    return (
        f"TLS certificate of {exc.host}:{exc.port} not trusted ({detail}); if a private CA or a "
        "TLS-inspecting proxy signs it, add that CA certificate (PEM) to PROXY_CA_CERTS"
    )
