"""Configuration from the environment and a TOML file: values, precedence and every error."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoconfig_cache.codec import StorageFormat
from autoconfig_cache.config import DEFAULT_PORT, DEFAULT_STREAM_URI, Config
from autoconfig_cache.environment import EnvironmentStore, Setting, SettingsReader, StoreConfig
from autoconfig_cache.errors import ConfigurationError, UnknownStoreSchemeError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.plugins import PluginRegistry
from tests.netfixtures import make_ca
from tests.secret_values import known_secret
from tests.services import service_missing

SECRET = known_secret("sdk-0123456789-very-secret-autoconfig-key-WXYZ")


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
    assert "USE_DYNAMODB and USE_REDIS" in message  # switches sorted by name


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


# -- Relay parity: USE_REDIS / USE_DYNAMODB without a cache key --------------------------------


@pytest.mark.parametrize(
    "env",
    [
        {"USE_REDIS": "true", "REDIS_HOST": "cache.internal"},
        # A Relay may set USE_DYNAMODB with per-environment tables only: no DYNAMODB_TABLE either.
        {"USE_DYNAMODB": "true"},
    ],
    ids=["redis", "dynamodb"],
)
def test_relay_store_without_a_cache_key_runs_without_a_cache_and_warns(
    env: dict[str, str],
) -> None:
    config = load({"AUTO_CONFIG_KEY": SECRET, **env})
    assert config.store_url is None and config.cache_key is None
    assert config.store_scheme == "none"
    assert config.store_options == {}
    switch = next(iter(env))
    assert any(
        switch in warning and "AUTO_CONFIG_CACHE_KEY" in warning and "without a cache" in warning
        for warning in config.warnings
    ), config.warnings


def test_relay_store_with_a_cache_key_still_uses_it() -> None:
    config = load({"USE_DYNAMODB": "true", "DYNAMODB_TABLE": "t", "AUTO_CONFIG_CACHE_KEY": "k"})
    assert config.store_url == "dynamodb://t"
    assert not any("AUTO_CONFIG_CACHE_KEY" in warning for warning in config.warnings)


def test_two_relay_stores_without_a_cache_key_are_still_an_error() -> None:
    message = error_of({"USE_REDIS": "true", "USE_DYNAMODB": "true"})
    assert "USE_DYNAMODB and USE_REDIS" in message  # switches sorted by name


# -- outbound proxy and CA certificates (the Relay Proxy's [Proxy] settings) ---------------------

PROXY_PASSWORD = known_secret("proxy-pa55word-never-shown")


def test_proxy_settings_from_the_environment(tmp_path: Path) -> None:
    pki = make_ca(tmp_path / "a")
    other = make_ca(tmp_path / "b")
    config = load(
        {
            "PROXY_URL": "http://proxy.corp:3128",
            "PROXY_AUTH_USER": "svc",
            "PROXY_AUTH_PASSWORD": PROXY_PASSWORD,
            "PROXY_CA_CERTS": f"{pki.ca_file}, ,{other.ca_file}",
        }
    )
    assert config.proxy_url == "http://proxy.corp:3128"
    assert (config.proxy_user, config.proxy_password) == ("svc", PROXY_PASSWORD)
    assert config.ca_cert_files == (str(pki.ca_file), str(other.ca_file))  # empty entry skipped
    described = config.describe()
    assert described["proxyPassword"] == "****" and described["proxyUser"] == "svc"
    assert PROXY_PASSWORD not in repr(config) and PROXY_PASSWORD not in str(described)


def test_proxy_settings_from_the_toml_file(tmp_path: Path) -> None:
    pki = make_ca(tmp_path / "pki")
    config = load(
        {"PROXY_AUTH_PASSWORD": PROXY_PASSWORD},
        f'[proxy]\nurl = "https://proxy.corp:8443"\nuser = "svc"\nca_certs = ["{pki.ca_file}"]\n',
        tmp_path,
    )
    assert config.proxy_url == "https://proxy.corp:8443"
    assert config.proxy_user == "svc" and config.proxy_password == PROXY_PASSWORD
    assert config.ca_cert_files == (str(pki.ca_file),)


def test_proxy_url_credentials_are_masked() -> None:
    config = load({"PROXY_URL": f"http://svc:{PROXY_PASSWORD}@proxy.corp:3128"})
    assert config.proxy_url is not None and PROXY_PASSWORD in config.proxy_url
    assert PROXY_PASSWORD not in repr(config) and PROXY_PASSWORD not in str(config.describe())


def test_bad_proxy_url_names_it_and_masks_the_password() -> None:
    message = error_of({"PROXY_URL": f"socks5://svc:{PROXY_PASSWORD}@proxy.corp:1080"})
    assert "PROXY_URL" in message and PROXY_PASSWORD not in message


def test_ntlm_proxy_authentication_is_an_error_naming_it() -> None:
    message = error_of({"PROXY_URL": "http://proxy.corp:3128", "PROXY_AUTH_NTLM": "true"})
    assert "PROXY_AUTH_NTLM" in message and "not supported" in message


def test_proxy_password_without_a_user_is_an_error() -> None:
    message = error_of({"PROXY_URL": "http://p:1", "PROXY_AUTH_PASSWORD": PROXY_PASSWORD})
    assert "PROXY_AUTH_USER" in message and PROXY_PASSWORD not in message


def test_proxy_credentials_twice_is_an_error() -> None:
    message = error_of({"PROXY_URL": "http://a:b@p:1", "PROXY_AUTH_USER": "c"})
    assert "PROXY_URL" in message and "PROXY_AUTH_USER" in message


def test_proxy_credentials_without_a_proxy_url_are_ignored_with_a_warning() -> None:
    config = load({"PROXY_AUTH_USER": "svc", "PROXY_AUTH_PASSWORD": PROXY_PASSWORD})
    assert config.proxy_user is None and config.proxy_password is None
    assert any("PROXY_AUTH_USER" in w and "PROXY_URL" in w for w in config.warnings)
    assert not any(PROXY_PASSWORD in w for w in config.warnings)


def test_proxy_domain_is_ignored_with_a_warning() -> None:
    config = load({"PROXY_URL": "http://p:1", "PROXY_AUTH_DOMAIN": "CORP"})
    assert any("PROXY_AUTH_DOMAIN" in w for w in config.warnings)


def test_missing_or_non_pem_ca_file_is_an_error_naming_proxy_ca_certs(tmp_path: Path) -> None:
    message = error_of({"PROXY_CA_CERTS": str(tmp_path / "missing.pem")})
    assert "PROXY_CA_CERTS" in message and "does not exist" in message
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("not a certificate\n")
    message = error_of({"PROXY_CA_CERTS": str(not_pem)})
    assert "PROXY_CA_CERTS" in message and "no PEM certificate" in message


def test_ca_certs_of_the_wrong_type_in_toml_is_an_error(tmp_path: Path) -> None:
    message = error_of({}, "[proxy]\nca_certs = 5\n", tmp_path)
    assert "PROXY_CA_CERTS" in message


# -- Relay-style settings come from the plugins (autoconfig_cache_environment_store) ---------------

FOO_PASSWORD = known_secret("foo-pa55word-never-shown-WXYZ")


class FooPlugin:
    """A third-party plugin reading its own Relay-style settings, as docs/plugin-authors.md shows."""

    @hookimpl
    def autoconfig_cache_environment_store(self) -> EnvironmentStore:
        def build(read: SettingsReader) -> StoreConfig:
            options = {"password": read.text("FOO_PASSWORD") or ""}
            return StoreConfig(f"memory://{read.text('FOO_NAME') or 'foo'}", options)

        return EnvironmentStore(
            switch=Setting("USE_FOO", "foo.enabled"),
            settings=(
                Setting("FOO_NAME", "foo.name"),
                Setting("FOO_PASSWORD", "foo.password", secret=True),
            ),
            build=build,
        )

    @hookimpl
    def autoconfig_cache_noisy_loggers(self) -> list[str]:
        return ["foo.chatty"]


def foo_registry() -> PluginRegistry:
    registry = PluginRegistry(load_entry_points=False)
    registry.register(FooPlugin(), "foo")
    return registry


def test_a_third_party_plugin_reads_its_own_settings_from_env_and_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[foo]\nenabled = true\nname = "from-file"\n')
    config = Config.load(
        config_file=path,
        environ={"FOO_PASSWORD": FOO_PASSWORD, "AUTO_CONFIG_CACHE_KEY": "k"},
        registry=foo_registry(),
    )
    assert config.store_url == "memory://from-file"
    assert config.store_options == {"password": FOO_PASSWORD}
    assert FOO_PASSWORD not in repr(config) and FOO_PASSWORD not in str(config.describe())


def test_a_third_party_switch_conflicts_and_warns_like_the_built_in_ones() -> None:
    registry = foo_registry()
    with pytest.raises(ConfigurationError, match=r"AUTO_CONFIG_CACHE_STORE and USE_FOO"):
        Config.load(
            environ={
                "USE_FOO": "1",
                "AUTO_CONFIG_CACHE_STORE": "memory://",
                "AUTO_CONFIG_CACHE_KEY": "k",
            },
            registry=registry,
        )
    config = Config.load(environ={"USE_FOO": "1"}, registry=registry)
    assert config.store_url is None
    assert any("USE_FOO" in w and "AUTO_CONFIG_CACHE_KEY" in w for w in config.warnings)
    config = Config.load(environ={"FOO_NAME": "x"}, registry=registry)
    assert any("FOO_NAME ignored because USE_FOO" in w for w in config.warnings)


def test_a_bad_value_of_a_plugin_secret_setting_is_masked() -> None:
    class SecretPort:
        @hookimpl
        def autoconfig_cache_environment_store(self) -> EnvironmentStore:
            def build(read: SettingsReader) -> StoreConfig:
                read.port("FOO_PORT")
                return StoreConfig("memory://", {})

            return EnvironmentStore(
                switch=Setting("USE_FOO", "foo.enabled"),
                settings=(Setting("FOO_PORT", "foo.port", secret=True),),
                build=build,
            )

    registry = PluginRegistry(load_entry_points=False)
    registry.register(SecretPort(), "secret-port")
    env = {"USE_FOO": "1", "FOO_PORT": FOO_PASSWORD, "AUTO_CONFIG_CACHE_KEY": "k"}
    with pytest.raises(ConfigurationError) as info:
        Config.load(environ=env, registry=registry)
    assert "FOO_PORT (TOML: foo.port) must be a port number" in str(info.value)
    assert FOO_PASSWORD not in str(info.value) and "WXYZ" in str(info.value)


def test_unknown_toml_key_in_a_plugin_table_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[foo]\nenabeld = true\n")
    with pytest.raises(ConfigurationError, match=r"'foo\.enabeld'"):
        Config.load(config_file=path, environ={}, registry=foo_registry())


def test_plugins_name_their_noisy_loggers() -> None:
    assert foo_registry().noisy_loggers() == ["foo.chatty"]


def test_the_core_names_no_backend_setting_nor_logger() -> None:
    import autoconfig_cache

    core = Path(autoconfig_cache.__file__).parent
    sources = [core / "config.py", *(core / "cli").glob("*.py")]
    for source in sources:
        text = source.read_text()
        for word in ("REDIS_", "USE_REDIS", "DYNAMODB_", "USE_DYNAMODB", "pynamodb", "botocore"):
            assert word not in text, f"{source.name} names {word}"
