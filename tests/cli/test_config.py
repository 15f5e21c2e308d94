"""Configuration from the environment and a TOML file: values, precedence and every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoconfig_cache.codec import StorageFormat
from autoconfig_cache.config import DEFAULT_PORT, DEFAULT_STREAM_URI, Config
from autoconfig_cache.errors import ConfigurationError, UnknownStoreSchemeError
from tests.services import service_missing

SECRET = "sdk-0123456789-very-secret-autoconfig-key-WXYZ"


def load(env: dict[str, str], toml: str | None = None, tmp_path: Path | None = None) -> Config:
    path = None
    if toml is not None:
        assert tmp_path is not None
        path = tmp_path / "config.toml"
        path.write_text(toml)
    return Config.load(config_file=path, environ=env)


def error_of(env: dict[str, str], toml: str | None = None, tmp_path: Path | None = None) -> str:
    with pytest.raises(ConfigurationError) as info:
        load(env, toml, tmp_path)
    message = str(info.value)
    assert SECRET not in message
    return message


def test_defaults_when_nothing_is_set() -> None:
    config = load({})
    assert config.store_url is None
    assert config.cache_key is None
    assert config.port == DEFAULT_PORT == 8030
    assert config.stream_uri == DEFAULT_STREAM_URI
    assert config.format is StorageFormat.V2


def test_encryption_key_defaults_to_the_autoconfig_key() -> None:
    config = load({"AUTO_CONFIG_KEY": SECRET})
    assert config.effective_encryption_key == SECRET


def test_explicit_encryption_key_wins_and_is_trimmed() -> None:
    config = load({"AUTO_CONFIG_KEY": SECRET, "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": "  other-key  "})
    assert config.effective_encryption_key == "other-key"


def test_store_url_cache_key_format_and_previous_keys_from_env() -> None:
    config = load(
        {
            "AUTO_CONFIG_CACHE_STORE": "memory://x",
            "AUTO_CONFIG_CACHE_KEY": " prod ",
            "AUTO_CONFIG_CACHE_FORMAT": "relay",
            "AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS": "old-1, old-2",
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": "new",
            "PORT": "9000",
        }
    )
    assert config.store_url == "memory://x"
    assert config.cache_key == "prod"
    assert config.format is StorageFormat.RELAY
    assert config.previous_encryption_keys == ("old-1", "old-2")
    assert config.port == 9000


def test_redis_settings_build_a_url_and_options() -> None:
    if not _has_scheme("redis"):
        service_missing("redis plugin not installed")
    config = load(
        {
            "USE_REDIS": "true",
            "REDIS_HOST": "cache.internal",
            "REDIS_PORT": "6380",
            "REDIS_TLS": "1",
            "REDIS_USERNAME": "relay",
            "REDIS_PASSWORD": SECRET,
            "AUTO_CONFIG_CACHE_KEY": "prod",
        },
    )
    assert config.store_url == "redis://cache.internal:6380"
    assert config.store_options == {"tls": "true", "username": "relay", "password": SECRET}
    assert SECRET not in repr(config)
    assert SECRET not in str(config.describe())


def test_dynamodb_settings_build_a_url_with_endpoint() -> None:
    if not _has_scheme("dynamodb"):
        service_missing("dynamodb plugin not installed")
    config = load(
        {
            "USE_DYNAMODB": "true",
            "DYNAMODB_TABLE": "ld-cache",
            "DYNAMODB_URL": "http://127.0.0.1:8000",
            "AUTO_CONFIG_CACHE_KEY": "prod",
        }
    )
    assert config.store_url == "dynamodb://ld-cache"
    assert config.store_options["endpoint"] == "http://127.0.0.1:8000"


def _has_scheme(scheme: str) -> bool:
    from autoconfig_cache.plugins import get_registry

    return scheme in get_registry().stores


def test_toml_file_is_read(tmp_path: Path) -> None:
    config = load(
        {},
        """
        autoconfig_key = "abcdefgh-1234"
        port = 8123
        stream_uri = "http://127.0.0.1:9999/"
        [cache]
        key = "from-file"
        store = "memory://f"
        previous_encryption_keys = ["k1", "k2"]
        [cache.store_options]
        timeout = 2.5
        tls = false
        """,
        tmp_path,
    )
    assert config.cache_key == "from-file"
    assert config.port == 8123
    assert config.stream_uri == "http://127.0.0.1:9999"
    assert config.previous_encryption_keys == ("k1", "k2")
    assert config.store_options == {"timeout": "2.5", "tls": "false"}
    assert config.source_file == tmp_path / "config.toml"


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = load(
        {"PORT": "9001", "AUTO_CONFIG_CACHE_KEY": "from-env"},
        'port = 8123\n[cache]\nkey = "from-file"\nstore = "memory://f"\n',
        tmp_path,
    )
    assert config.port == 9001
    assert config.cache_key == "from-env"


def test_empty_environment_variable_counts_as_unset(tmp_path: Path) -> None:
    config = load({"PORT": ""}, "port = 8123\n", tmp_path)
    assert config.port == 8123


# -- errors: each names the setting to change ---------------------------------------------------


def test_cache_key_without_a_store_names_the_store_settings() -> None:
    message = error_of({"AUTO_CONFIG_CACHE_KEY": "prod"})
    assert "AUTO_CONFIG_CACHE_KEY" in message
    assert "AUTO_CONFIG_CACHE_STORE" in message


def test_store_without_a_cache_key_names_the_cache_key() -> None:
    message = error_of({"AUTO_CONFIG_CACHE_STORE": "memory://"})
    assert "AUTO_CONFIG_CACHE_KEY" in message


def test_dynamodb_without_a_table_names_dynamodb_table() -> None:
    message = error_of({"USE_DYNAMODB": "true", "AUTO_CONFIG_CACHE_KEY": "prod"})
    assert "DYNAMODB_TABLE" in message


def test_two_stores_at_once_names_both() -> None:
    message = error_of(
        {
            "AUTO_CONFIG_CACHE_STORE": "memory://",
            "USE_REDIS": "true",
            "AUTO_CONFIG_CACHE_KEY": "prod",
        }
    )
    assert "two stores" in message
    assert "AUTO_CONFIG_CACHE_STORE" in message
    assert "USE_REDIS" in message


def test_redis_and_dynamodb_at_once_is_an_error() -> None:
    message = error_of(
        {
            "USE_REDIS": "true",
            "USE_DYNAMODB": "true",
            "DYNAMODB_TABLE": "t",
            "AUTO_CONFIG_CACHE_KEY": "prod",
        }
    )
    assert "USE_REDIS and USE_DYNAMODB" in message


def test_unknown_scheme_names_the_extra_to_install() -> None:
    from autoconfig_cache.plugins import PluginRegistry

    # A registry without entry points: only memory and sqlite are installed.
    with pytest.raises(UnknownStoreSchemeError) as info:
        Config.load(
            environ={"AUTO_CONFIG_CACHE_STORE": "redis://h:6379", "AUTO_CONFIG_CACHE_KEY": "k"},
            registry=PluginRegistry(load_entry_points=False),
        )
    assert "pip install 'autoconfig-cache[redis]'" in str(info.value)


def test_scheme_nobody_provides_lists_installed_schemes() -> None:
    message = error_of({"AUTO_CONFIG_CACHE_STORE": "nosuch://x", "AUTO_CONFIG_CACHE_KEY": "k"})
    assert "'nosuch'" in message
    assert "memory" in message


@pytest.mark.parametrize(
    "name", ["AUTO_CONFIG_KEY", "AUTO_CONFIG_CACHE_ENCRYPTION_KEY", "AUTO_CONFIG_CACHE_KEY"]
)
def test_whitespace_key_is_an_error_naming_it(name: str) -> None:
    env = {"AUTO_CONFIG_CACHE_STORE": "memory://", "AUTO_CONFIG_CACHE_KEY": "k", name: "   "}
    message = error_of(env)
    assert name in message
    assert "whitespace" in message


def test_empty_key_in_the_file_is_an_error(tmp_path: Path) -> None:
    message = error_of({}, 'autoconfig_key = ""\n', tmp_path)
    assert "AUTO_CONFIG_KEY" in message


def test_empty_previous_key_entry_is_an_error() -> None:
    message = error_of(
        {
            "AUTO_CONFIG_CACHE_ENCRYPTION_KEY": "k",
            "AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS": "a,,b",
        }
    )
    assert "AUTO_CONFIG_CACHE_PREVIOUS_ENCRYPTION_KEYS" in message


@pytest.mark.parametrize("value", ["abc", "0", "70000", "-1"])
def test_bad_port_names_port(value: str) -> None:
    message = error_of({"PORT": value})
    assert "PORT" in message
    assert "1 to 65535" in message


def test_bad_redis_port_names_redis_port() -> None:
    message = error_of({"USE_REDIS": "true", "REDIS_PORT": "x", "AUTO_CONFIG_CACHE_KEY": "k"})
    assert "REDIS_PORT" in message


@pytest.mark.parametrize("value", ["ftp://example.com", "not a url", "http://"])
def test_bad_stream_uri_names_stream_uri(value: str) -> None:
    message = error_of({"STREAM_URI": value})
    assert "STREAM_URI" in message


def test_store_url_without_scheme_is_an_error() -> None:
    message = error_of({"AUTO_CONFIG_CACHE_STORE": "/var/cache.db", "AUTO_CONFIG_CACHE_KEY": "k"})
    assert "AUTO_CONFIG_CACHE_STORE" in message


def test_store_url_with_bad_port_masks_the_password() -> None:
    message = error_of(
        {"AUTO_CONFIG_CACHE_STORE": f"memory://u:{SECRET}@h:99999", "AUTO_CONFIG_CACHE_KEY": "k"}
    )
    assert "not a valid URL" in message


def test_bad_boolean_names_the_setting() -> None:
    message = error_of({"USE_REDIS": "maybe"})
    assert "USE_REDIS" in message
    assert "true or false" in message


def test_bad_format_names_the_setting() -> None:
    message = error_of({"AUTO_CONFIG_CACHE_FORMAT": "v3"})
    assert "AUTO_CONFIG_CACHE_FORMAT" in message
    assert "relay" in message


def test_bad_log_level_names_the_setting() -> None:
    assert "AUTO_CONFIG_CACHE_LOG_LEVEL" in error_of({"AUTO_CONFIG_CACHE_LOG_LEVEL": "loud"})


def test_missing_config_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        Config.load(config_file=tmp_path / "nope.toml", environ={})


def test_unreadable_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot be read"):
        Config.load(config_file=tmp_path, environ={})  # a directory cannot be read as a file


def test_invalid_toml_says_where(tmp_path: Path) -> None:
    message = error_of({}, "port = = 3\n", tmp_path)
    assert "not valid TOML" in message
    assert "line 1" in message


def test_invalid_toml_does_not_echo_secret_values(tmp_path: Path) -> None:
    message = error_of({}, f'autoconfig_key = "{SECRET}\n', tmp_path)
    assert "not valid TOML" in message


def test_unknown_toml_key_is_an_error_listing_known_ones(tmp_path: Path) -> None:
    message = error_of({}, '[cache]\nkye = "x"\n', tmp_path)
    assert "'cache.kye'" in message
    assert "cache.key" in message


def test_wrong_type_in_toml_names_the_setting(tmp_path: Path) -> None:
    message = error_of({}, "[cache]\nkey = 5\n", tmp_path)
    assert "AUTO_CONFIG_CACHE_KEY" in message


def test_require_autoconfig_key_names_it() -> None:
    with pytest.raises(ConfigurationError, match="AUTO_CONFIG_KEY"):
        load({}).require_autoconfig_key()


def test_no_encryption_key_names_both_settings() -> None:
    with pytest.raises(ConfigurationError) as info:
        _ = load({}).effective_encryption_key
    assert "AUTO_CONFIG_CACHE_ENCRYPTION_KEY" in str(info.value)
    assert "AUTO_CONFIG_KEY" in str(info.value)


def test_redis_url_and_host_together_is_an_error() -> None:
    message = error_of(
        {
            "USE_REDIS": "true",
            "REDIS_URL": "redis://a:6379",
            "REDIS_HOST": "b",
            "AUTO_CONFIG_CACHE_KEY": "k",
        }
    )
    assert "REDIS_URL" in message
    assert "REDIS_HOST" in message


def test_redis_settings_without_use_redis_give_a_warning() -> None:
    config = load({"REDIS_HOST": "cache.internal"})
    assert config.store_url is None
    assert any("REDIS_HOST" in warning and "USE_REDIS" in warning for warning in config.warnings)
