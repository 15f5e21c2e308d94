"""The one definition of a valid item (autoconfig_cache.validation), as pure logic: ids, versions
and strings, and the item constructors that apply it."""

from __future__ import annotations

from typing import Any

import pytest

from autoconfig_cache import jsoncodec
from autoconfig_cache.errors import MalformedItemError
from autoconfig_cache.models import Environment, Filter, Snapshot
from autoconfig_cache.validation import (
    MAX_ID_BYTES,
    MAX_VERSION,
    check_item_id,
    check_strings,
    check_version,
    item_id_problem,
    shown_id,
    unencodable_string,
    version_problem,
)
from tests.items import env_json, filter_json

# ---- versions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 1, 12, 2**53 - 1])
def test_a_version_in_range_is_valid(version: int) -> None:
    assert version_problem(version) is None
    assert check_version("environment 'e1': field 'version'", version) == version


@pytest.mark.parametrize("version", [-1, -(2**63), 2**53, 2**62, 2**63, 2**70, 10**400])
def test_a_version_out_of_range_is_refused_naming_the_range(version: int) -> None:
    with pytest.raises(MalformedItemError) as caught:
        check_version("environment 'e1': field 'version'", version)
    text = str(caught.value)
    assert text.startswith("environment 'e1': field 'version'")
    assert "out of range" in text and str(MAX_VERSION) in text


def test_a_huge_version_is_named_by_its_size_not_its_digits() -> None:
    with pytest.raises(MalformedItemError) as caught:
        check_version("filter 'f'", 10**4000)
    assert "0" * 100 not in str(caught.value)
    assert "digits" in str(caught.value)


@pytest.mark.parametrize(
    ("version", "type_name"), [(True, "bool"), (False, "bool"), (1e3, "float"), ("3", "str")]
)
def test_a_version_that_is_not_an_integer_is_refused(version: object, type_name: str) -> None:
    assert version_problem(version) == f"must be an integer, got {type_name}"
    with pytest.raises(MalformedItemError, match=f"got {type_name}"):
        check_version("filter 'f'", version)


def test_the_highest_version_survives_the_tombstone_encoding_as_a_signed_64_bit_integer() -> None:
    from autoconfig_cache.records import store_version

    assert store_version(MAX_VERSION, deleted=True) < 2**63
    assert float(MAX_VERSION) == MAX_VERSION  # exact in a double (Lua, JavaScript)
    assert float(MAX_VERSION + 1) == float(MAX_VERSION + 2)  # where doubles stop being exact


# ---- ids -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "item_id",
    ["e1", "5f0c2b1e9d3a4b0012345678", "filter-a b", "é" * (MAX_ID_BYTES // 2), "x" * MAX_ID_BYTES],
)
def test_a_valid_id(item_id: str) -> None:
    assert item_id_problem(item_id) is None
    assert check_item_id("environment", item_id) == item_id


@pytest.mark.parametrize(
    ("item_id", "fragment"),
    [
        ("", "empty"),
        ("x" * (MAX_ID_BYTES + 1), f"longer than {MAX_ID_BYTES} bytes"),
        ("x" * 1100, f"longer than {MAX_ID_BYTES} bytes"),
        # Few characters, many bytes: the limit is on UTF-8 bytes, not characters.
        ("é" * (MAX_ID_BYTES // 2 + 1), f"longer than {MAX_ID_BYTES} bytes"),
        ("e1\nINFO forged line", "'\\n'"),
        ("e1\x1b[31m", "'\\x1b'"),
        ("e1\u2028", "U+2028"),
        ("e\ud800", "'\\ud800'"),
        ("e\u200b", "U+200B"),  # a zero-width space: not printable, invisible in a log line
    ],
)
def test_an_invalid_id_is_refused_with_its_reason(item_id: str, fragment: str) -> None:
    problem = item_id_problem(item_id)
    assert problem is not None and fragment in problem
    with pytest.raises(MalformedItemError, match=r"^filter "):
        check_item_id("filter", item_id)


def test_an_id_that_is_not_a_string_is_refused() -> None:
    assert item_id_problem(12) == "the id must be a string, got int"


def test_an_invalid_id_is_shown_escaped_and_cut_never_raw() -> None:
    hostile = "e1\n\x1b[2J" + "x" * 2000 + "\ud800"
    with pytest.raises(MalformedItemError) as caught:
        check_item_id("environment", hostile)
    text = str(caught.value)
    assert text.isprintable()  # no newline, ESC or surrogate reaches a log line or a terminal
    assert "\\n" in text and "\\x1b" in text
    assert len(text) < 300 and "(2010 bytes)" in text  # 2 + 1 + 4 + 2000 + 3 (the surrogate)
    assert shown_id("e1") == "'e1'"


# ---- strings -------------------------------------------------------------------------------------


def test_strings_without_lone_surrogates_pass() -> None:
    value = {"a": ["b", {"c": "😀 \U0001f600"}], "n": 1, "z": None}
    assert unencodable_string(value) is None
    check_strings("environment 'e1'", value)


@pytest.mark.parametrize(
    ("value", "where"),
    [
        ({"envName": "\ud800"}, "$.envName"),
        ({"sdkKeys": [{"key": "ok"}, {"key": "\udfff"}]}, "$.sdkKeys[1].key"),
        ({"tags": {"\ud800": "value"}}, "$.tags"),  # an object key
        ("\udc00", "$"),
    ],
)
def test_a_lone_surrogate_is_found_and_located(value: Any, where: str) -> None:
    assert unencodable_string(value) == where
    with pytest.raises(MalformedItemError, match="lone surrogate") as caught:
        check_strings("environment 'e1'", value)
    assert str(caught.value).startswith("environment 'e1': ")
    assert str(caught.value).isprintable()


def test_the_string_walk_survives_deep_nesting() -> None:
    value: Any = "\ud800"
    for _ in range(50_000):
        value = [value]
    assert unencodable_string(value) == "$" + "[0]" * 50_000


# ---- applied by the item constructors ------------------------------------------------------------


@pytest.mark.parametrize("version", [-1, 2**53, 2**62, 2**70])
def test_environment_and_filter_refuse_a_version_no_store_can_hold(version: int) -> None:
    with pytest.raises(MalformedItemError, match="out of range"):
        Environment.from_json(env_json("e1", version), expected_id="e1")
    with pytest.raises(MalformedItemError, match="out of range"):
        Filter.from_json(filter_json(version), filter_id="f1")


def test_environment_and_filter_refuse_an_invalid_id() -> None:
    long_id = "e" * 1100
    with pytest.raises(MalformedItemError, match="longer than"):
        Environment.from_json(env_json(long_id), expected_id=long_id)
    with pytest.raises(MalformedItemError, match="longer than"):
        Filter.from_json(filter_json(), filter_id=long_id)
    with pytest.raises(MalformedItemError, match="empty"):
        Filter.from_json(filter_json(), filter_id="")


def test_strings_are_walked_only_when_asked() -> None:
    env = env_json("e1", envName="\ud800")
    flt = filter_json(key="\ud800")
    # Unchecked: the caller vouches for the JSON (orjson refuses lone surrogates when parsing).
    assert Environment.from_json(env).env_name == "\ud800"
    assert Filter.from_json(flt, filter_id="f1").key == "\ud800"
    with pytest.raises(MalformedItemError, match=r"'\$\.envName'"):
        Environment.from_json(env, check_strings=True)
    with pytest.raises(MalformedItemError, match=r"'\$\.key'"):
        Filter.from_json(flt, filter_id="f1", check_strings=True)


def test_a_put_with_invalid_items_keeps_the_good_ones() -> None:
    long_id = "x" * 1100
    data = {
        "environments": {
            "good": env_json("good", 3),
            "huge": env_json("huge", 2**62),
            "negative": env_json("negative", -1),
            "surrogate": env_json("surrogate", envName="\ud800"),
            long_id: env_json(long_id),
        },
        "filters": {"f-good": filter_json(1), "f-bad": filter_json(True)},
    }
    snapshot, problems = Snapshot.from_put_data(data, check_strings=True)
    assert set(snapshot.environments) == {"good"} and set(snapshot.filters) == {"f-good"}
    assert len(problems) == 5
    assert all(str(problem).isprintable() for problem in problems)


def test_lenient_parsing_says_when_the_strings_need_a_walk() -> None:
    assert jsoncodec.loads_lenient('{"a": "b"}') == ({"a": "b"}, True)
    value, clean = jsoncodec.loads_lenient('{"a": "\\ud800"}')
    assert value == {"a": "\ud800"} and clean is False
    with pytest.raises(jsoncodec.JSONDecodeError, match="nesting deeper than 1024"):
        jsoncodec.loads_lenient("[" * 2000 + "]" * 2000)
    with pytest.raises(jsoncodec.JSONDecodeError, match="nesting deeper than 1024"):
        jsoncodec.loads_lenient('["\\ud800", ' + "[" * 100_000 + "]" * 100_000 + "]")
    with pytest.raises(jsoncodec.JSONDecodeError, match="more than 4300 digits"):
        jsoncodec.loads_lenient('{"version": 1' + "0" * 5000 + "}")
