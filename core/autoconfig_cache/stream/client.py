"""The AutoConfig stream connection: request, read loop, and the Relay Proxy's retry policy.

``GET {stream_uri}/relay_auto_config?rpacProtocolVersion=2`` with ``Authorization: <AutoConfig
key>``. Policy (DESIGN.md "Connection", as the Relay Proxy's event-source client):

* retry with exponential backoff: 1 s base, doubled per attempt, capped at 30 s, with jitter 0.5
  (the delay is drawn from ``[d/2, d]``); the attempt count resets once a connection has stayed
  up for 60 s;
* the server's ``retry:`` field replaces the base delay;
* read timeout 5 min between two reads (the server sends heartbeat comments well inside it);
* HTTP 401/403 → :class:`AuthenticationError`, no retry: a wrong key does not fix itself;
* any other HTTP status, network error, read timeout, end of stream, or invalid event-stream
  bytes → retry.

The AutoConfig key is only ever logged masked.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import attrs

from ..errors import AutoConfigCacheError
from ..secrets import mask, redact_url
from .sse import ServerSentEvent, SSEParseError, SSEParser

log = logging.getLogger(__name__)

STREAM_PATH = "/relay_auto_config"
PROTOCOL_QUERY = "rpacProtocolVersion=2"
DEFAULT_STREAM_URI = "https://stream.launchdarkly.com"


class AuthenticationError(AutoConfigCacheError):
    """The stream rejected the AutoConfig key (HTTP 401 or 403). The client stops retrying."""

    def __init__(self, status: int, key: str) -> None:
        self.status = status
        super().__init__(
            f"the AutoConfig stream rejected the AutoConfig key {mask(key)} (HTTP {status}); "
            "check the key (Relay Proxy configuration in LaunchDarkly > Integrations) and restart"
        )


class RestartStream(Exception):
    """Raised by an event callback to drop the current connection and open a new one."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


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


def backoff_delay(attempt: int, *, base: float, maximum: float, jitter: float, rand: float) -> float:
    """Exponential backoff with jitter; see :meth:`BackoffPolicy.delay`."""
    # Cap the exponent: 2**64 seconds is no more useful than the cap, and avoids float overflow.
    exponential = base * (2.0 ** min(max(attempt, 0), 64))
    delay = min(maximum, exponential)
    return delay - delay * jitter * rand


@attrs.define
class ConnectionState:
    """What the client knows about its connection; read it, do not write it."""

    connected: bool = False
    connected_since: float | None = None  # time.time() of the current connection
    last_event_at: float | None = None  # time.time() of the last dispatched event
    last_read_monotonic: float | None = None  # time.perf_counter() of the last chunk read
    attempts: int = 0  # consecutive failed attempts, for the backoff
    connections: int = 0  # successful connections so far
    last_error: str | None = None
    retry_base: float | None = None  # seconds, from the server's retry: field


EventCallback = Callable[[ServerSentEvent], Awaitable[None]]
StateCallback = Callable[[bool], Awaitable[None] | None]


class StreamClient:
    """Keeps one AutoConfig stream connection open and hands its events to a callback.

    :param stream_uri: the stream base URI (``https://stream.launchdarkly.com`` in production).
    :param autoconfig_key: the Relay Proxy AutoConfig key, sent as ``Authorization``.
    :param backoff: reconnection delays.
    :param read_timeout: seconds without any byte (event or heartbeat) before reconnecting.
    :param connect_timeout: seconds to open the connection and receive the response headers.
    :param session: an aiohttp session to use; by default the client owns one.
    :param rand: the random source of the jitter (for tests).
    """

    def __init__(
        self,
        stream_uri: str,
        autoconfig_key: str,
        *,
        backoff: BackoffPolicy | None = None,
        read_timeout: float = 300.0,
        connect_timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        rand: Callable[[], float] = random.random,
        user_agent: str = "autoconfig-cache",
    ) -> None:
        if not autoconfig_key or not autoconfig_key.strip():
            raise ValueError("an AutoConfig key is required to connect to the AutoConfig stream")
        self.url = f"{stream_uri.rstrip('/')}{STREAM_PATH}?{PROTOCOL_QUERY}"
        self._key = autoconfig_key
        self.backoff = backoff or BackoffPolicy()
        self.read_timeout = read_timeout
        self.connect_timeout = connect_timeout
        self._session = session
        self._owns_session = session is None
        self._rand = rand
        self._user_agent = user_agent
        self.state = ConnectionState()
        self._connected_monotonic = 0.0

    def __repr__(self) -> str:
        return f"StreamClient(url={redact_url(self.url)!r}, key={mask(self._key)!r})"

    def next_delay(self) -> float:
        """The delay before the next attempt, given the failures so far and ``retry:``."""
        return self.backoff.delay(
            self.state.attempts, base=self.state.retry_base, rand=self._rand()
        )

    async def run(self, on_event: EventCallback, on_state: StateCallback | None = None) -> None:
        """Connect, read, reconnect, until cancelled or the key is rejected.

        ``on_event`` is awaited for every event, in order; raising :class:`RestartStream` from it
        drops the connection (the next attempt follows the backoff). ``on_state(True/False)`` is
        called when the connection opens and closes.

        :raises AuthenticationError: on HTTP 401/403.
        """
        try:
            while True:
                was_connected = False
                try:
                    await self._connect_once(on_event, on_state)
                    reason = "the server closed the stream"
                except AuthenticationError as exc:
                    self.state.last_error = str(exc)
                    log.error("%s", exc)
                    raise
                except RestartStream as exc:
                    reason = exc.reason
                except SSEParseError as exc:
                    reason = f"invalid event-stream data: {exc}"
                except TimeoutError:
                    reason = f"no data for {self.read_timeout:g} s (read timeout)"
                except (aiohttp.ClientError, OSError) as exc:
                    reason = f"{type(exc).__name__}: {exc}"
                finally:
                    was_connected = self.state.connected
                    await self._set_disconnected(on_state)
                self.state.last_error = reason
                if was_connected:
                    up_for = time.monotonic() - self._connected_monotonic
                    if up_for >= self.backoff.reset_after:
                        self.state.attempts = 0
                delay = self.next_delay()
                self.state.attempts += 1
                log.warning(
                    "AutoConfig stream %s: %s; reconnecting in %.2f s",
                    redact_url(self.url), reason, delay,
                )
                await asyncio.sleep(delay)
        finally:
            if self._owns_session and self._session is not None:
                await self._session.close()
                self._session = None

    async def _set_disconnected(self, on_state: StateCallback | None) -> None:
        if self.state.connected:
            self.state.connected = False
            if on_state is not None:
                result = on_state(False)
                if result is not None:
                    await result

    async def _connect_once(
        self, on_event: EventCallback, on_state: StateCallback | None
    ) -> None:
        """One connection, from the request to the end of the response body."""
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
        log.debug("connecting to AutoConfig stream %s (key %s)", redact_url(self.url),
                  mask(self._key))
        request_kwargs: dict[str, Any] = {"headers": headers, "timeout": timeout}
        async with self._session.get(self.url, **request_kwargs) as response:
            if response.status in (401, 403):
                raise AuthenticationError(response.status, self._key)
            if response.status != 200:
                raise aiohttp.ClientResponseError(
                    response.request_info, response.history, status=response.status,
                    message=f"unexpected HTTP status {response.status}",
                )
            self.state.connected = True
            self.state.connected_since = time.time()
            self._connected_monotonic = time.monotonic()
            self.state.connections += 1
            log.info("AutoConfig stream connected: %s", redact_url(self.url))
            if on_state is not None:
                result = on_state(True)
                if result is not None:
                    await result
            parser = SSEParser()
            async for chunk in response.content.iter_any():
                self.state.last_read_monotonic = time.perf_counter()
                await self._dispatch(parser, chunk, on_event)

    async def _dispatch(self, parser: SSEParser, chunk: bytes, on_event: EventCallback) -> None:
        # A function of its own so that a large event (a 10 MB put) is not kept alive by a loop
        # variable while the connection waits for the next chunk.
        for event in parser.feed(chunk):
            if parser.retry is not None:
                self.state.retry_base = parser.retry / 1000.0
            self.state.last_event_at = time.time()
            await on_event(event)
        if parser.retry is not None:
            self.state.retry_base = parser.retry / 1000.0

    async def close(self) -> None:
        """Close the owned HTTP session (``run`` also does when it ends)."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None
