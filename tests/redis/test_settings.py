"""Parsing of Redis store URLs and options (no server needed)."""

from __future__ import annotations

import logging

import pytest

from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache_redis import RedisSettings, RedisStore
from autoconfig_cache_redis.settings import SCHEMES, Mode, Node


def parse(url: str, **options: str) -> RedisSettings:
    return RedisSettings.from_spec(StoreSpec(url, "key", options))


def test_plain_url_defaults() -> None:
    settings = parse("redis://cache.example:6380/2")
    assert settings.mode is Mode.STANDALONE
    assert settings.nodes == (Node("cache.example", 6380),)
    assert settings.db == 2
    assert settings.tls is False
    assert settings.retries == 1
    assert settings.timeout == 5.0
    assert settings.connect_timeout == 2.0


def test_default_port_is_6379() -> None:
    assert parse("redis://cache.example").nodes == (Node("cache.example", 6379),)


def test_url_credentials_are_percent_decoded() -> None:
    settings = parse("redis://us%40er:p%3Ass@h:1")
    assert (settings.username, settings.password) == ("us@er", "p:ss")


def test_password_only_url_has_no_username() -> None:
    settings = parse("redis://:secret@h")
    assert (settings.username, settings.password) == (None, "secret")


def test_options_override_url_credentials() -> None:
    settings = parse("redis://u:url-pass@h", username="other", password="opt-pass")
    assert (settings.username, settings.password) == ("other", "opt-pass")


@pytest.mark.parametrize("scheme", ["rediss", "valkeys", "rediss+cluster", "valkeys+sentinel"])
def test_s_schemes_turn_tls_on(scheme: str) -> None:
    suffix = "/primary" if "sentinel" in scheme else ""
    assert parse(f"{scheme}://h:1{suffix}").tls is True


def test_tls_option_turns_tls_on_for_a_redis_url() -> None:
    settings = parse("redis://h:1", tls="true", ca_file="/ca.pem")
    assert settings.tls is True
    assert settings.ca_file == "/ca.pem"


def test_query_parameters_are_read_and_options_win() -> None:
    settings = parse("redis://h:1/0?tls=true&timeout=3&retries=0", timeout="1.5")
    assert settings.tls is True
    assert settings.timeout == 1.5
    assert settings.socket_timeout == 1.5
    assert settings.connect_timeout == 1.5  # never longer than the operation deadline
    assert settings.retries == 0


def test_password_is_not_in_repr() -> None:
    settings = parse("redis://u:hunter2hunter2@h", sentinel_password="sentinel-secret")
    assert "hunter2" not in repr(settings)
    assert "sentinel-secret" not in repr(settings)
    assert "hunter2" not in repr(RedisStore(settings, "key"))


def test_cluster_url_lists_several_nodes() -> None:
    settings = parse("redis+cluster://a:7000,b:7001,[::1]:7002")
    assert settings.mode is Mode.CLUSTER
    assert settings.nodes == (Node("a", 7000), Node("b", 7001), Node("::1", 7002))


def test_cluster_refuses_a_database_number() -> None:
    with pytest.raises(ConfigurationError, match="only database 0"):
        parse("redis+cluster://a:7000/3")


def test_sentinel_url_names_the_service_and_database() -> None:
    settings = parse("redis+sentinel://s1,s2:26380/primary/4")
    assert settings.mode is Mode.SENTINEL
    assert settings.nodes == (Node("s1", 26379), Node("s2", 26380))
    assert (settings.service_name, settings.db) == ("primary", 4)


def test_sentinel_service_name_may_come_from_options() -> None:
    assert parse("redis+sentinel://s1", service_name="primary").service_name == "primary"


def test_sentinel_without_service_name_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="service_name"):
        parse("redis+sentinel://s1:26379")


def test_several_hosts_on_a_plain_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"redis\+cluster"):
        parse("redis://a:1,b:2")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"timeout": "soon"}, "timeout"),
        ({"timeout": "0"}, "timeout"),
        ({"retries": "-1"}, "retries"),
        ({"max_connections": "0"}, "max_connections"),
        ({"tls": "maybe"}, "tls"),
        ({"ca_file": "/ca.pem"}, "TLS is off"),
        ({"tls": "true", "key_file": "/k.pem"}, "cert_file"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, str], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        parse("redis://h:1", **options)


def test_bad_path_and_port_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="database number"):
        parse("redis://h:1/not-a-db")
    with pytest.raises(ConfigurationError, match="bad port"):
        parse("redis://h:99999")


def test_configuration_errors_never_show_the_password() -> None:
    with pytest.raises(ConfigurationError) as info:
        parse("redis://user:topsecretpassword@h:1/x")
    assert "topsecretpassword" not in str(info.value)


def test_unknown_option_is_logged_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse("redis://h:1", colour="blue")
    assert "colour" in caplog.text


def test_cache_key_with_unbalanced_braces_is_refused_by_the_factory() -> None:
    with pytest.raises(ConfigurationError, match="hash tag"):
        RedisStore.from_spec(StoreSpec("redis://h:1", "bad}key"))


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_every_scheme_is_registered_through_the_entry_point(scheme: str) -> None:
    registry = PluginRegistry()
    suffix = "/primary" if "sentinel" in scheme else ""
    store = registry.open_store(StoreSpec(f"{scheme}://127.0.0.1:1{suffix}", "key"))
    assert isinstance(store, RedisStore)
