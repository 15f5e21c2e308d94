"""The stream client's connection policy, against the local stream server over loopback."""

from __future__ import annotations

import asyncio
import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.stream import (
    BackoffPolicy,
    ServerSentEvent,
    StreamClient,
    StreamServer,
)
from autoconfig_cache.stream.client import backoff_delay
from tests.netfixtures import CertificateFiles, ForwardProxy, TLSFront, make_ca
from tests.secret_values import known_secret

from .conftest import AUTOCONFIG_KEY, FAST, ControlledSleep, eventually

PROXY_PASSWORD = known_secret("proxy-pa55word-do-not-log")


class Collector:
    def __init__(self) -> None:
        self.events: list[ServerSentEvent] = []

    async def __call__(self, event: ServerSentEvent) -> None:
        self.events.append(event)


@pytest.fixture
async def running() -> AsyncIterator[list[asyncio.Task[None]]]:
    """Tasks a test starts; cancelled and awaited at the end."""
    tasks: list[asyncio.Task[None]] = []
    yield tasks
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def first_put(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> tuple[StreamClient, Collector]:
    """A client on the fast schedule, started in ``running``, once it has the server's put."""
    collector = Collector()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await eventually(lambda: len(collector.events) == 1, what="first put")
    return client, collector


# ---- backoff (pure) -----------------------------------------------------------------------------


def test_backoff_doubles_from_one_second_up_to_thirty() -> None:
    policy = BackoffPolicy()
    assert [policy.delay(n, rand=0.0) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_backoff_jitter_takes_up_to_half_off() -> None:
    policy = BackoffPolicy()
    assert policy.delay(3, rand=0.5) == 8 - 8 * 0.5 * 0.5
    assert all(4 <= policy.delay(3, rand=r / 10) <= 8 for r in range(10))


def test_backoff_base_can_be_overridden_by_retry_field() -> None:
    assert BackoffPolicy().delay(2, base=0.25, rand=0.0) == 1.0


def test_backoff_survives_huge_attempt_counts() -> None:
    assert backoff_delay(10_000, base=1, maximum=30, jitter=0.5, rand=0.0) == 30


# ---- against the server -------------------------------------------------------------------------


async def test_request_carries_key_path_and_protocol_version(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.set_snapshot({"environments": {}, "filters": {}})
    client, collector = await first_put(server, running)
    assert collector.events[0].type == "put"
    assert server.last_query == "rpacProtocolVersion=2"
    assert client.state.connected


async def test_service_unavailable_is_retried(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.reject_with = 503
    collector = Collector()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await server.wait_for_requests(3)
    assert server.connection_count == 0 and "503" in (client.state.last_error or "")
    server.reject_with = None
    await eventually(lambda: len(collector.events) == 1, what="connected after the 503s")


async def test_network_error_is_retried(running: list[asyncio.Task[None]]) -> None:
    from tests.services import free_port

    port = free_port()  # nothing listens here yet
    collector = Collector()
    client = StreamClient(f"http://127.0.0.1:{port}", AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(collector)))
    await eventually(lambda: client.state.attempts >= 2, what="refused connections retried")
    async with StreamServer({}, autoconfig_key=AUTOCONFIG_KEY, port=port):
        await eventually(lambda: len(collector.events) == 1, what="connected once up")


async def test_retry_field_replaces_the_base_delay(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    sleep = ControlledSleep()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    await eventually(lambda: server.open_connections == 1)
    await server.send_raw(b"retry: 2500\n\n")
    await eventually(lambda: client.state.retry_base == 2.5)
    await server.drop_connections()
    await sleep.wait_for_delays(1)
    assert sleep.delays == [2.5]  # instead of the 1 s base


@pytest.mark.parametrize(
    ("retry", "base"),
    [(b"0", 1.0), (b"1", 1.0), (b"999", 1.0), (b"86400000", 30.0), (b"9999999999", 30.0)],
)
async def test_retry_field_is_clamped_between_the_base_and_the_cap(
    server: StreamServer, running: list[asyncio.Task[None]], retry: bytes, base: float
) -> None:
    # retry: 0 used to remove every delay: thousands of reconnects per second, for good.
    sleep = ControlledSleep()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    await eventually(lambda: server.open_connections == 1)
    await server.send_raw(b"retry: " + retry + b"\n\n")
    await eventually(lambda: client.state.retry_base is not None)
    assert client.state.retry_base == base
    await server.drop_connections()
    await sleep.wait_for_delays(1)
    assert sleep.delays == [base]


async def test_a_retry_of_hundreds_of_digits_neither_fails_nor_loses_the_put(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    # 400 digits raised OverflowError converting to seconds, and the put of the chunk was lost.
    client, collector = await first_put(server, running)
    await server.send_raw(b"retry: " + b"9" * 400 + b"\nevent: put\ndata: {}\n\n")
    await eventually(lambda: len(collector.events) == 2, what="the put after the retry line")
    assert client.state.retry_base is None and server.connection_count == 1


async def test_an_event_before_a_bad_line_in_the_same_chunk_is_handled(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    client, collector = await first_put(server, running)
    await server.send_raw(b"event: patch\ndata: good\n\ndata: \xff\n\n")
    await server.wait_for_connections(2)
    assert [e.data for e in collector.events[1:2]] == ["good"]
    assert "invalid event-stream data" in (client.state.last_error or "")


async def test_heartbeat_comments_keep_the_connection_alive(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, read_timeout=1.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    for _ in range(25):  # 2.5 s of heartbeats, 2.5 times the read timeout
        await server.send_heartbeat()
        await asyncio.sleep(0.1)
    assert server.connection_count == 1
    assert client.state.connected


async def test_silence_beyond_the_read_timeout_reconnects(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.silent = True
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, read_timeout=0.2)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(2)
    assert "read timeout" in (client.state.last_error or "")


async def test_dropped_connection_reconnects_and_gets_a_new_put(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    _, collector = await first_put(server, running)
    await server.drop_connections()
    await eventually(lambda: len(collector.events) == 2, what="second put after the drop")
    assert [e.type for e in collector.events] == ["put", "put"]


@pytest.mark.parametrize(("reset_after", "expected_attempts"), [(3600.0, 3), (0.0, 1)])
async def test_attempts_reset_only_after_a_long_enough_connection(
    server: StreamServer,
    running: list[asyncio.Task[None]],
    reset_after: float,
    expected_attempts: int,
) -> None:
    policy = BackoffPolicy(base=0.01, maximum=0.05, jitter=0.5, reset_after=reset_after)
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=policy)
    running.append(asyncio.create_task(client.run(Collector())))
    for n in range(1, 4):
        await server.wait_for_connections(n)
        await eventually(lambda: server.open_connections == 1)
        await server.drop_connections()
    await server.wait_for_connections(4)
    assert client.state.attempts == expected_attempts


async def test_invalid_event_stream_bytes_reconnect(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
    running.append(asyncio.create_task(client.run(Collector())))
    await server.wait_for_connections(1)
    await eventually(lambda: server.open_connections == 1)
    await server.send_raw(b"data: \xff\xfe\n\n")
    await server.wait_for_connections(2)
    assert "invalid event-stream data" in (client.state.last_error or "")


def test_repr_masks_the_key() -> None:
    client = StreamClient("http://127.0.0.1:1", AUTOCONFIG_KEY)
    assert AUTOCONFIG_KEY not in repr(client)


# ---- v9 connection policy: nothing stops the client, some failures slow it down ---------------


EXTENDED_NO_JITTER = [300.0, 600.0, 1200.0, 2400.0, 3600.0, 3600.0]


def test_extended_schedule_is_five_minutes_doubling_to_one_hour() -> None:
    from autoconfig_cache.stream.client import EXTENDED_BACKOFF

    assert [EXTENDED_BACKOFF.delay(n, rand=0.0) for n in range(6)] == EXTENDED_NO_JITTER
    # Jitter 0.5 as on the normal schedule: up to half off, never more.
    assert EXTENDED_BACKOFF.delay(0, rand=1.0) == 150.0
    assert EXTENDED_BACKOFF.delay(10, rand=1.0) == 1800.0


@pytest.mark.parametrize(
    ("status", "extended"),
    [
        (401, True),
        (403, True),
        (404, True),
        (400, False),
        (408, False),
        (429, False),
        (500, False),
        (503, False),
    ],
)
def test_which_http_statuses_engage_the_extended_schedule(status: int, extended: bool) -> None:
    from autoconfig_cache.stream.client import is_unexpected_status

    assert is_unexpected_status(status) is extended


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_key_keeps_retrying_on_the_extended_schedule(
    server: StreamServer,
    running: list[asyncio.Task[None]],
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.reject_with = status
    sleep = ControlledSleep(budget=5)
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
    with caplog.at_level(logging.DEBUG):
        running.append(asyncio.create_task(client.run(Collector())))
        await sleep.wait_for_delays(6)
    assert sleep.delays == EXTENDED_NO_JITTER
    assert server.request_count == 6  # it kept asking
    state = client.state
    assert state.unauthorized and state.extended and state.last_error_status == status
    assert str(state.state) == "initializing"  # it never worked, so not "interrupted"
    assert state.next_attempt_at is not None
    error = state.last_error or ""
    assert f"HTTP {status}" in error and "****" + AUTOCONFIG_KEY[-4:] in error
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 6 and all("rejected the AutoConfig key" in r.getMessage() for r in errors)
    assert AUTOCONFIG_KEY not in caplog.text and AUTOCONFIG_KEY not in error


async def test_extended_delays_keep_their_jitter(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.reject_with = 401
    sleep = ControlledSleep(budget=1)
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 1.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await sleep.wait_for_delays(2)
    assert sleep.delays == [150.0, 300.0]


async def test_a_key_made_valid_again_is_picked_up_and_the_state_follows(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.reject_with = 401
    sleep = ControlledSleep()
    collector = Collector()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
    running.append(asyncio.create_task(client.run(collector)))
    await sleep.wait_for_delays(1)
    assert str(client.state.state) == "initializing" and client.state.unauthorized

    server.reject_with = None  # someone fixed the key in LaunchDarkly
    await sleep.allow()
    await eventually(lambda: len(collector.events) == 1, what="the put once the key is valid")
    assert str(client.state.state) == "valid"
    assert not client.state.unauthorized
    assert "401" in (client.state.last_error or "")  # the last error is kept, as Relay does

    # Up for less than reset_after (60 s): still on the extended schedule, where it was.
    await server.drop_connections()
    await sleep.wait_for_delays(2)
    assert str(client.state.state) == "interrupted"
    assert client.state.extended and sleep.delays == [300.0, 600.0]


async def test_a_long_enough_connection_returns_to_the_normal_schedule(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    server.reject_with = 401
    sleep = ControlledSleep()
    collector = Collector()
    healthy_at_once = BackoffPolicy(base=1.0, maximum=30.0, jitter=0.5, reset_after=0.0)
    client = StreamClient(
        server.uri, AUTOCONFIG_KEY, backoff=healthy_at_once, sleep=sleep, rand=lambda: 0.0
    )
    running.append(asyncio.create_task(client.run(collector)))
    await sleep.wait_for_delays(1)
    server.reject_with = None
    await sleep.allow()
    await eventually(lambda: len(collector.events) == 1)
    await server.drop_connections()
    await sleep.wait_for_delays(2)
    assert sleep.delays == [300.0, 1.0]
    assert not client.state.extended


@pytest.mark.parametrize("status", [400, 429, 503])
async def test_transient_statuses_stay_on_the_normal_schedule(
    server: StreamServer, running: list[asyncio.Task[None]], status: int
) -> None:
    server.reject_with = status
    sleep = ControlledSleep(budget=3)
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
    running.append(asyncio.create_task(client.run(Collector())))
    await sleep.wait_for_delays(4)
    assert sleep.delays == [1.0, 2.0, 4.0, 8.0]
    assert not client.state.extended and not client.state.unauthorized
    assert client.state.last_error_status == status


async def test_other_unexpected_4xx_is_an_error_on_the_extended_schedule(
    server: StreamServer, running: list[asyncio.Task[None]], caplog: pytest.LogCaptureFixture
) -> None:
    server.reject_with = 404  # e.g. a wrong STREAM_URI behind a gateway
    sleep = ControlledSleep()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
    with caplog.at_level(logging.INFO):
        running.append(asyncio.create_task(client.run(Collector())))
        await sleep.wait_for_delays(1)
    assert sleep.delays == [300.0]
    assert client.state.extended and not client.state.unauthorized
    assert any(r.levelno == logging.ERROR and "404" in r.getMessage() for r in caplog.records)


async def test_state_is_valid_after_an_event_then_interrupted_then_off(
    server: StreamServer,
) -> None:
    collector = Collector()
    sleep = ControlledSleep()
    client = StreamClient(server.uri, AUTOCONFIG_KEY, sleep=sleep)
    assert str(client.state.state) == "initializing"
    task = asyncio.create_task(client.run(collector))
    try:
        await eventually(lambda: len(collector.events) == 1)
        assert str(client.state.state) == "valid"
        valid_since = client.state.state_since
        await server.drop_connections()
        await sleep.wait_for_delays(1)
        assert str(client.state.state) == "interrupted"
        assert client.state.state_since >= valid_since
        assert not client.state.extended  # the end of a stream is not unexpected
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert str(client.state.state) == "off"
    assert client.state.next_attempt_at is None


# ---- outbound proxy ----------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests here decide which proxy variables are set; the machine's must not interfere."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "REQUEST_METHOD"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


async def test_stream_goes_through_the_configured_proxy(
    server: StreamServer, running: list[asyncio.Task[None]]
) -> None:
    async with ForwardProxy() as proxy:
        collector = Collector()
        client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, proxy_url=proxy.url)
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1, what="the put through the proxy")
        # A plain-http target is forwarded in absolute form: the proxy saw the stream request.
        assert [(r.method, r.target) for r in proxy.requests] == [
            ("GET", f"{server.uri}/relay_auto_config?rpacProtocolVersion=2")
        ]
        assert server.connection_count == 1


@pytest.mark.parametrize("where", ["settings", "url"])
async def test_proxy_credentials_are_sent_as_basic_authentication(
    server: StreamServer, running: list[asyncio.Task[None]], where: str
) -> None:
    async with ForwardProxy(credentials=("proxy-user", PROXY_PASSWORD)) as proxy:
        if where == "settings":
            kwargs: dict[str, Any] = {
                "proxy_url": proxy.url,
                "proxy_user": "proxy-user",
                "proxy_password": PROXY_PASSWORD,
            }
        else:
            kwargs = {"proxy_url": f"http://proxy-user:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}"}
        collector = Collector()
        client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, **kwargs)
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1, what="the put through the proxy")
        assert proxy.refused == 0
        assert (
            proxy.requests[0].proxy_authorization
            == "Basic " + base64.b64encode(f"proxy-user:{PROXY_PASSWORD}".encode()).decode()
        )
        assert PROXY_PASSWORD not in repr(client)


async def test_a_refused_proxy_password_is_retried_and_never_shown(
    server: StreamServer, running: list[asyncio.Task[None]], caplog: pytest.LogCaptureFixture
) -> None:
    async with ForwardProxy(credentials=("proxy-user", "the-right-one")) as proxy:
        sleep = ControlledSleep(budget=1)
        client = StreamClient(
            server.uri,
            AUTOCONFIG_KEY,
            sleep=sleep,
            proxy_url=f"http://proxy-user:{PROXY_PASSWORD}@127.0.0.1:{proxy.port}",
        )
        with caplog.at_level(logging.DEBUG):
            running.append(asyncio.create_task(client.run(Collector())))
            await sleep.wait_for_delays(2)
        assert proxy.refused == 2 and server.request_count == 0
        assert "407" in (client.state.last_error or "")
        for text in (caplog.text, client.state.last_error or "", repr(client)):
            assert PROXY_PASSWORD not in text


async def test_environment_proxy_variables_are_honoured(
    server: StreamServer, running: list[asyncio.Task[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        through = Collector()
        client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
        running.append(asyncio.create_task(client.run(through)))
        await eventually(lambda: len(through.events) == 1, what="the put through HTTP_PROXY")
        assert len(proxy.requests) == 1

        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        direct = Collector()
        bypass = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST)
        running.append(asyncio.create_task(bypass.run(direct)))
        await eventually(lambda: len(direct.events) == 1, what="the put around the proxy")
        assert len(proxy.requests) == 1  # NO_PROXY: straight to the server


async def test_trust_env_false_ignores_the_environment(
    server: StreamServer, running: list[asyncio.Task[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        collector = Collector()
        client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, trust_env=False)
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1)
        assert proxy.requests == []


async def test_the_configured_proxy_wins_over_the_environment(
    server: StreamServer, running: list[asyncio.Task[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.services import free_port

    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing there
    async with ForwardProxy() as proxy:
        collector = Collector()
        client = StreamClient(server.uri, AUTOCONFIG_KEY, backoff=FAST, proxy_url=proxy.url)
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1)
        assert len(proxy.requests) == 1


def test_bad_proxy_settings_are_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match="http:// or https://") as info:
        StreamClient("http://x", AUTOCONFIG_KEY, proxy_url=f"socks5://u:{PROXY_PASSWORD}@h:1")
    assert PROXY_PASSWORD not in str(info.value)
    with pytest.raises(ValueError, match="without a proxy user"):
        StreamClient("http://x", AUTOCONFIG_KEY, proxy_url="http://h:1", proxy_password="p")
    with pytest.raises(ValueError, match="both in the proxy URL and separately"):
        StreamClient(
            "http://x",
            AUTOCONFIG_KEY,
            proxy_url="http://a:b@h:1",
            proxy_user="c",
            proxy_password="d",
        )


# ---- TLS: a private CA -------------------------------------------------------------------------


@pytest.fixture
def certificates(tmp_path: Path) -> CertificateFiles:
    return make_ca(tmp_path / "pki")


async def test_a_private_ca_in_ca_files_is_trusted(
    server: StreamServer, running: list[asyncio.Task[None]], certificates: CertificateFiles
) -> None:
    async with TLSFront(server.port, certificates) as front:
        collector = Collector()
        client = StreamClient(
            front.uri, AUTOCONFIG_KEY, backoff=FAST, ca_files=[str(certificates.ca_file)]
        )
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1, what="the put over TLS")
        assert client.url.startswith("https://")


async def test_without_the_ca_the_connection_fails_with_a_clear_error(
    server: StreamServer, running: list[asyncio.Task[None]], certificates: CertificateFiles
) -> None:
    async with TLSFront(server.port, certificates) as front:
        sleep = ControlledSleep()
        client = StreamClient(front.uri, AUTOCONFIG_KEY, sleep=sleep, rand=lambda: 0.0)
        running.append(asyncio.create_task(client.run(Collector())))
        await sleep.wait_for_delays(1)
        error = client.state.last_error or ""
        assert "certificate" in error and "not trusted" in error and "PROXY_CA_CERTS" in error
        assert server.connection_count == 0
        # A TLS failure stays on the normal schedule, as in Relay's stream manager.
        assert sleep.delays == [1.0] and not client.state.extended


async def test_ssl_cert_file_is_honoured(
    server: StreamServer,
    running: list[asyncio.Task[None]],
    certificates: CertificateFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates.ca_file))
    async with TLSFront(server.port, certificates) as front:
        collector = Collector()
        client = StreamClient(front.uri, AUTOCONFIG_KEY, backoff=FAST)
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1, what="the put over TLS")


async def test_https_stream_through_a_proxy_tunnels_with_connect(
    server: StreamServer, running: list[asyncio.Task[None]], certificates: CertificateFiles
) -> None:
    async with TLSFront(server.port, certificates) as front, ForwardProxy() as proxy:
        collector = Collector()
        client = StreamClient(
            front.uri,
            AUTOCONFIG_KEY,
            backoff=FAST,
            proxy_url=proxy.url,
            ca_files=[str(certificates.ca_file)],
        )
        running.append(asyncio.create_task(client.run(collector)))
        await eventually(lambda: len(collector.events) == 1, what="the put through the tunnel")
        assert [(r.method, r.target) for r in proxy.requests] == [
            ("CONNECT", f"127.0.0.1:{front.port}")
        ]


def test_unusable_ca_files_are_refused(tmp_path: Path) -> None:
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    with pytest.raises(ValueError, match="does not exist"):
        StreamClient("https://x", AUTOCONFIG_KEY, ca_files=[str(tmp_path / "missing.pem")])
    with pytest.raises(ValueError, match="holds no PEM certificate"):
        StreamClient("https://x", AUTOCONFIG_KEY, ca_files=[str(not_pem)])
