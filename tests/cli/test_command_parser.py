"""``main`` parses a command line that names its command with that command's parser alone
(``build_parser(named_command(argv))``): the result, and every usage error, must be exactly what
the complete parser gives. Pure argument parsing: no configuration is read, nothing runs."""

from __future__ import annotations

import argparse
import contextlib
import io
from typing import Any

import pytest

from autoconfig_cache.cli.main import _VALUED_OPTIONS, build_parser, common_options, named_command

#: (command line, the command it names).
NAMED = [
    (["run"], "run"),
    (["run", "--once", "--output", "out.json"], "run"),
    (["--log-level", "debug", "run"], "run"),
    (["--log-level=info", "--config=c.toml", "run", "--log-level", "error"], "run"),
    (["--config", "c.toml", "cache", "inspect", "--json"], "cache"),
    (["cache", "verify", "--allow-empty"], "cache"),
    (["cache", "rotate-key", "--drop-undecryptable"], "cache"),
    (["--config", "run", "plugins", "--json"], "plugins"),  # "run" is --config's value
    (["plugins", "--wide"], "plugins"),
    (["demo", "--keep"], "demo"),
    (["--log-level", "warning", "demo"], "demo"),
]

#: Command lines the complete parser reads (help, version, abbreviations, mistakes).
NOT_NAMED = [
    [],
    ["--help"],
    ["-h", "run"],
    ["--version"],
    ["--version", "run"],
    ["runn"],
    ["--conf", "c.toml", "run"],  # an abbreviation: argparse's rules, not ours
    ["--config"],
    ["--log-level"],
    ["--", "run"],
    ["-x", "run"],
]

#: Usage errors after the command's name: the same message and status either way.
ERRORS = [
    ["run", "--bogus"],
    ["run", "--once-timeout", "soon"],
    ["--log-level", "loud", "run"],
    ["cache"],
    ["cache", "inspekt"],
    ["cache", "inspect", "--nope"],
    ["plugins", "--json", "--version"],
    ["demo", "--config", "c.toml"],
]


def comparable(namespace: argparse.Namespace) -> dict[str, Any]:
    """The namespace's values, with functions and parsers (new objects per build) by name."""
    values: dict[str, Any] = {}
    for name, value in vars(namespace).items():
        if isinstance(value, argparse.ArgumentParser):
            value = ("parser", value.prog)
        elif callable(value):
            value = ("function", value.__name__)
        values[name] = value
    return values


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[object, str, str]:
    """(namespace values or the exit status, stdout, stderr) of parsing ``argv``."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            result: object = comparable(parser.parse_args(argv))
        except SystemExit as exc:
            result = ("exit", exc.code)
    return result, out.getvalue(), err.getvalue()


@pytest.mark.parametrize(("argv", "command"), NAMED)
def test_a_named_command_parses_as_with_the_complete_parser(argv: list[str], command: str) -> None:
    assert named_command(argv) == command
    alone = parse(build_parser(command), argv)
    assert alone == parse(build_parser(), argv)
    assert alone[0] != ("exit", 2), alone  # these command lines are valid


@pytest.mark.parametrize("argv", NOT_NAMED)
def test_other_command_lines_go_to_the_complete_parser(argv: list[str]) -> None:
    assert named_command(argv) is None


@pytest.mark.parametrize("argv", ERRORS)
def test_usage_errors_are_the_complete_parsers(argv: list[str]) -> None:
    command = named_command(argv)
    assert command is not None
    alone = parse(build_parser(command), argv)
    assert alone == parse(build_parser(), argv)
    assert alone[0] == ("exit", 2) and "error:" in alone[2], alone


def test_the_parser_of_one_command_has_only_that_command() -> None:
    (commands,) = [
        action
        for action in build_parser("cache")._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert list(commands.choices) == ["cache"]
    (every,) = [
        action
        for action in build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    ]
    assert list(every.choices) == ["run", "demo", "cache", "plugins"]


def test_the_options_read_before_a_command_are_the_common_options_that_take_a_value() -> None:
    valued = {
        option
        for action in common_options()._actions
        if action.nargs != 0
        for option in action.option_strings
    }
    assert set(_VALUED_OPTIONS) == valued
