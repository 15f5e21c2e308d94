"""``autoconfig-cache run`` and its connection to LaunchDarkly: a rejected key, a Relay-style
store setting without a cache key, an outbound proxy. Real processes, real sockets."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.netfixtures import ThreadedProxy
from tests.secret_values import known_secret
from tests.service.conftest import (
    AUTOCONFIG_KEY,
    ServiceProcess,
    StreamServerProcess,
    initial_data,
)
from tests.services import free_port

Start = Callable[..., ServiceProcess]

PROXY_PASSWORD = known_secret("proxy-pa55word-never-logged")


def metric_samples(service: ServiceProcess) -> dict[str, str]:
    code, text = service.get("/metrics")
    assert code == 200
    return dict(
        line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


def test_a_rejected_key_keeps_serving_and_status_says_why(
    tmp_path: Path, stream_server: StreamServerProcess, services: Start
) -> None:
    env = {"AUTO_CONFIG_KEY": AUTOCONFIG_KEY, "STREAM_URI": stream_server.uri}
    service = services(env).wait_listening()
    status = service.wait_status(lambda s: s["stream"]["state"] == "valid", "a valid stream")
    assert status["stream"]["stateSince"] is not None
    assert metric_samples(service)['autoconfig_cache_stream_state{state="valid"}'] == "1"

    # The key is revoked in LaunchDarkly: the stream now answers 401.
    stream_server.control("reject", {"status": 401})
    stream_server.control("drop")
    status = service.wait_status(lambda s: s["stream"]["unauthorized"], "the rejected key noticed")
    stream = status["stream"]
    assert stream["state"] == "interrupted"  # it was valid before
    assert stream["stopped"] is False and stream["connected"] is False
    assert stream["retryExtended"] is True and stream["errorStatus"] == 401
    assert "****" + AUTOCONFIG_KEY[-4:] in stream["error"] and AUTOCONFIG_KEY not in stream["error"]
    # The next attempt is on the extended schedule: 5 min minus at most half of it as jitter.
    next_attempt = datetime.fromisoformat(stream["nextAttemptTime"])
    error_time = datetime.fromisoformat(stream["errorTime"])
    assert 150 <= (next_attempt - error_time).total_seconds() <= 300
    # Meanwhile everything held is still served.
    assert status["ready"] is True
    assert set(status["environments"]) == set(initial_data()["environments"])
    samples = metric_samples(service)
    assert samples['autoconfig_cache_stream_state{state="interrupted"}'] == "1"
    assert samples['autoconfig_cache_stream_state{state="valid"}'] == "0"
    assert samples["autoconfig_cache_stream_unauthorized"] == "1"
    assert service.stop() == 0
    log = service.log_text()
    assert "ERROR" in log and "rejected the AutoConfig key" in log
    assert AUTOCONFIG_KEY not in log


def test_use_redis_without_a_cache_key_runs_without_a_cache_and_warns(
    stream_server: StreamServerProcess, services: Start
) -> None:
    env = {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream_server.uri,
        "USE_REDIS": "true",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(free_port()),  # nothing listens: it must not even be tried
    }
    service = services(env).wait_listening()
    status = service.wait_status(lambda s: s["ready"], "ready from the stream")
    assert status["source"] == "stream"
    assert status["store"]["scheme"] == "none" and status["store"]["errorCount"] == 0
    assert service.stop() == 0
    warnings = [line for line in service.log_text().splitlines() if "WARNING" in line]
    assert any("USE_REDIS" in line and "AUTO_CONFIG_CACHE_KEY" in line for line in warnings)


@pytest.fixture
def proxy() -> Iterator[ThreadedProxy]:
    running = ThreadedProxy(credentials=("svc", PROXY_PASSWORD))
    running.start()
    yield running
    running.stop()


def test_run_reaches_the_stream_through_proxy_url(
    stream_server: StreamServerProcess, services: Start, proxy: ThreadedProxy
) -> None:
    env = {
        "AUTO_CONFIG_KEY": AUTOCONFIG_KEY,
        "STREAM_URI": stream_server.uri,
        "PROXY_URL": proxy.proxy.url,
        "PROXY_AUTH_USER": "svc",
        "PROXY_AUTH_PASSWORD": PROXY_PASSWORD,
    }
    service = services(env).wait_listening()
    status = service.wait_status(lambda s: s["stream"]["state"] == "valid", "valid via the proxy")
    seen = proxy.requests()
    assert seen and seen[0].target == f"{stream_server.uri}/relay_auto_config?rpacProtocolVersion=2"
    assert seen[0].proxy_authorization == (
        "Basic " + base64.b64encode(f"svc:{PROXY_PASSWORD}".encode()).decode()
    )
    assert PROXY_PASSWORD not in str(status)
    assert service.stop() == 0
    assert PROXY_PASSWORD not in service.log_text()
