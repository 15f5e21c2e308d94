"""Store URLs as documented (docs/configuration.md, "Store URLs"): every SQLite form is accepted
by the configuration as by the library, reaches the file it names, and is displayed the way it
was written, secrets masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoconfig_cache.config import Config
from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.secrets import redact_url
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.sqlite import parse_sqlite_url


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and a home directory of the test's own."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("url", "under_cwd"),
    [
        ("sqlite:cache.db", "cache.db"),
        ("sqlite:data/cache.db", "data/cache.db"),
        ("sqlite:./data/cache.db", "data/cache.db"),
        ("sqlite:../cache.db", "../cache.db"),
    ],
)
def test_a_relative_path_is_under_the_working_directory(
    home: Path, url: str, under_cwd: str
) -> None:
    assert parse_sqlite_url(url) == Path.cwd() / under_cwd


@pytest.mark.parametrize("url", ["sqlite:~/cache.db", "sqlite:///~/cache.db"])
def test_a_tilde_is_the_home_directory(home: Path, url: str) -> None:
    assert parse_sqlite_url(url) == home / "cache.db"


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("sqlite:///var/lib/cache.db", "/var/lib/cache.db"),
        ("sqlite:////var/lib/cache.db", "//var/lib/cache.db"),
        ("sqlite:////~/cache.db", "//~/cache.db"),  # the one way to name a directory '~' at /
        ("sqlite:///tmp/a%20b.db", "/tmp/a b.db"),
    ],
)
def test_an_absolute_path_is_everything_after_the_scheme_and_two_slashes(
    home: Path, url: str, path: str
) -> None:
    assert parse_sqlite_url(url) == Path(path)


def test_an_unknown_users_home_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="~no-such-user-4711"):
        parse_sqlite_url("sqlite:~no-such-user-4711/cache.db")


@pytest.mark.parametrize(
    ("url", "suggested"),
    [
        ("sqlite://cache.db", "sqlite:cache.db"),
        ("sqlite://data/cache.db", "sqlite:data/cache.db"),
    ],
)
def test_a_host_is_refused_with_the_relative_form_it_probably_meant(
    url: str, suggested: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_sqlite_url(url)
    assert f"({suggested})" in str(caught.value)
    assert parse_sqlite_url(suggested)  # and that form is accepted


def test_a_host_with_a_password_is_refused_without_showing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_sqlite_url("sqlite://:hunter2-password@cache.db/x.db")
    assert "hunter2" not in str(caught.value) and "three slashes" in str(caught.value)


# -- the configuration accepts what the store accepts ---------------------------------------


def load(url: str) -> Config:
    return Config.load(environ={"AUTO_CONFIG_CACHE_STORE": url, "AUTO_CONFIG_CACHE_KEY": "k"})


@pytest.mark.parametrize(
    "url", ["sqlite:cache.db", "sqlite:data/cache.db", "sqlite:~/cache.db", "sqlite:///~/x.db"]
)
def test_the_configuration_accepts_every_documented_sqlite_form(url: str) -> None:
    config = load(url)
    assert (config.store_url, config.redacted_store_url, config.store_scheme) == (
        url,
        url,
        "sqlite",
    )


@pytest.mark.parametrize("url", ["localhost:6379", "cache.db", "nosuchscheme:x"])
def test_text_without_a_registered_scheme_is_not_a_url(url: str) -> None:
    with pytest.raises(ConfigurationError, match=r"is not a URL.*sqlite:cache\.db"):
        load(url)


def test_the_not_a_url_error_recommends_forms_that_are_accepted() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load("localhost:6379")
    recommended = [word for word in str(caught.value).split() if word.startswith("sqlite:")]
    assert recommended
    for url in recommended:
        assert load(url).store_url == url


# -- displayed as written, secrets masked --------------------------------------------------


@pytest.mark.parametrize(
    ("written", "shown"),
    [
        ("sqlite:cache.db", "sqlite:cache.db"),
        ("sqlite:~/cache.db", "sqlite:~/cache.db"),
        ("sqlite:///var/lib/cache.db", "sqlite:///var/lib/cache.db"),
        ("sqlite:////abs/cache.db", "sqlite:////abs/cache.db"),
        ("sqlite:///tmp/a%20b.db?timeout=2", "sqlite:///tmp/a%20b.db?timeout=2"),
        (
            "postgresql:///db?host=/var/run/pg&password=s3cret-value",
            "postgresql:///db?host=/var/run/pg&password=****",
        ),
        ("redis://:s3cret-value@cache:6379/0", "redis://:****@cache:6379/0"),
        ("rediss://app:p/a#s?s@w0rd@cache:6380", "rediss://app:****@cache:6380"),
    ],
)
def test_a_url_is_displayed_as_written_minus_secrets(written: str, shown: str) -> None:
    assert redact_url(written) == shown
    assert StoreSpec(written, "k").redacted_url == shown
