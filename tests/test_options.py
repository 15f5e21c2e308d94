"""The declarative option schema: parsing, defaults, unknown options, secrets, doc tables."""

from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

import attrs
import pytest

from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.options import option, option_infos, options_table, parse_options
from autoconfig_cache.store_spec import StoreSpec
from tests.secret_values import known_secret

SECRET = known_secret("sdk-0123456789-very-secret-password-WXYZ")


@attrs.frozen
class Options:
    timeout: float = option(5.0, doc="Seconds.", positive=True)
    retries: int = option(1, doc="Retries.", minimum=0)
    tls: bool = option(False, doc="Use TLS.")
    name: str | None = option(None, doc="A name.")
    mode: str = option("fast", doc="How.", choices=("fast", "safe"), aliases={"QUICK": "fast"})
    region: str = option("us-east-1", doc="Region.", env=("TEST_REGION", "TEST_DEFAULT_REGION"))
    password: str | None = option(None, doc="Password.", secret=True)


def parse(url: str = "x://h", environ: dict[str, str] | None = None, **options: str) -> Options:
    return parse_options(Options, StoreSpec(url, "k", options), store="test", environ=environ or {})


def error(**options: str) -> str:
    with pytest.raises(ConfigurationError) as info:
        parse(**options)
    return str(info.value)


def test_defaults_when_nothing_is_given() -> None:
    assert parse() == Options()
    assert parse() == Options(5.0, 1, False, None, "fast", "us-east-1", None)


def test_values_are_converted_to_their_types() -> None:
    options = parse(timeout="2.5", retries="0", tls="yes", name="n", mode="SAFE")
    assert (options.timeout, options.retries, options.tls) == (2.5, 0, True)
    assert (options.name, options.mode) == ("n", "safe")  # choices: canonical spelling


def test_aliases_map_to_a_choice() -> None:
    assert parse(mode="quick").mode == "fast"


def test_options_win_over_the_url_query() -> None:
    options = parse("x://h?timeout=3&retries=4", timeout="1")
    assert (options.timeout, options.retries) == (1.0, 4)


def test_an_empty_value_counts_as_unset() -> None:
    assert parse(timeout="", tls=" ", name="") == Options()


def test_env_default_is_read_in_order_and_options_win() -> None:
    assert parse(environ={"TEST_DEFAULT_REGION": "eu-west-3"}).region == "eu-west-3"
    both = {"TEST_REGION": "eu-west-1", "TEST_DEFAULT_REGION": "eu-west-3"}
    assert parse(environ=both).region == "eu-west-1"
    assert parse(environ=both, region="ap-south-1").region == "ap-south-1"


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"timeout": "soon"}, "a number greater than 0"),
        ({"timeout": "0"}, "a number greater than 0"),
        ({"timeout": "nan"}, "a number greater than 0"),
        ({"retries": "-1"}, "an integer >= 0"),
        ({"retries": "1.5"}, "an integer >= 0"),
        ({"tls": "maybe"}, "true or false"),
        ({"mode": "slow"}, "one of fast, safe"),
    ],
)
def test_bad_values_name_the_option_the_value_and_the_form(
    options: dict[str, str], expected: str
) -> None:
    message = error(**options)
    name, value = next(iter(options.items()))
    assert f"option {name}={value!r}" in message
    assert expected in message
    assert "test store x://h" in message


def test_a_bad_secret_value_is_masked_in_the_error() -> None:
    @attrs.frozen
    class WithSecretNumber:
        pin: int = option(0, doc="A secret number.", secret=True)

    with pytest.raises(ConfigurationError) as info:
        parse_options(WithSecretNumber, StoreSpec("x://h", "k", {"pin": SECRET}), store="test")
    assert SECRET not in str(info.value)
    assert "WXYZ" in str(info.value)  # masked: last four characters only


def test_secret_options_are_not_in_repr() -> None:
    assert SECRET not in repr(parse(password=SECRET))


def test_each_unknown_option_is_warned_once_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        # colour is in the query and the options: still one warning.
        options = parse("x://h?colour=blue", colour="crimson", raed="magenta")
    assert options == Options()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert any("'colour'" in w for w in warnings) and any("'raed'" in w for w in warnings)
    assert not any("crimson" in w or "magenta" in w for w in warnings)  # values never shown


def test_an_unknown_option_named_like_a_secret_is_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        parse(**{SECRET: "1", "aB3dE5gH7jK9mN1pQ3sT5": "2"})
    assert SECRET not in caplog.text
    assert "aB3dE5gH7jK9mN1pQ3sT5" not in caplog.text
    assert caplog.text.count("unknown option") == 2


def test_option_rejects_unsupported_types() -> None:
    with pytest.raises(TypeError):
        option([], doc="a list")
    with pytest.raises(TypeError):
        option(1, doc="an int with choices", choices=("1", "2"))


def test_options_table_has_one_row_per_option_with_type_and_default() -> None:
    table = options_table(Options)
    lines = table.splitlines()
    assert lines[0] == "| Option | Type | Default | Meaning |"
    assert len(lines) == 2 + len(option_infos(Options))
    assert "| `timeout` | number > 0 | `5` | Seconds. |" in lines
    assert "| `retries` | integer ≥ 0 | `1` | Retries. |" in lines
    assert "| `mode` | `fast` or `safe` | `fast` | How. |" in lines
    assert "`TEST_REGION`, `TEST_DEFAULT_REGION`, else `us-east-1`" in table
    assert "Password. Secret:" in table


# -- the generated documentation tables ---------------------------------------------------------


def _option_docs() -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "tools" / "option_docs.py"
    spec = importlib.util.spec_from_file_location("option_docs", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("option_docs", module)
    spec.loader.exec_module(module)
    return module


def test_documentation_tables_are_current() -> None:
    stale = _option_docs().stale_files(write=False)
    assert not stale, f"stale tables in {stale}: run .venv/bin/python tools/option_docs.py --write"


def test_a_stale_table_is_detected_and_rewritten() -> None:
    docs = _option_docs()
    text = "intro\n<!-- options:x -->\n| old |\n<!-- /options:x -->\nend\n"
    assert docs.render_file(text, {"options:x": "| new |\n"}) == (
        "intro\n<!-- options:x -->\n| new |\n<!-- /options:x -->\nend\n"
    )
    with pytest.raises(ValueError, match="options:y"):
        docs.render_file(text, {"options:y": "| new |\n"})
