"""Configuration values a user can mistype or a hostile environment can set: each is a clear
ConfigurationError naming the setting, never a traceback, and never echoes a password."""

from __future__ import annotations

import pytest

from autoconfig_cache.config import Config
from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_redis.settings import RedisSettings

BASE = {"AUTO_CONFIG_KEY": "rel-0123456789abcdef"}


@pytest.mark.parametrize("port", ["²", "٣٠٠٠", "1" * 400])
def test_a_port_of_non_ascii_or_huge_digits_is_a_configuration_error(port: str) -> None:
    with pytest.raises(ConfigurationError, match="PORT"):
        Config.load(environ={**BASE, "PORT": port})


def test_a_stream_uri_with_credentials_is_refused_without_echoing_the_password() -> None:
    with pytest.raises(ConfigurationError, match="STREAM_URI") as caught:
        Config.load(environ={**BASE, "STREAM_URI": "https://user:hunter2secret@stream.example"})
    assert "hunter2secret" not in str(caught.value)


@pytest.mark.parametrize("url", ["redis://localhost/²", "redis://localhost:6³79/0"])
def test_a_redis_url_with_non_ascii_digits_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RedisSettings.from_spec(StoreSpec(url, "key"))
