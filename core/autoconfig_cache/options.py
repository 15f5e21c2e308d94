"""Declarative store options: one schema from which parsing, warnings and doc tables come.

A store declares its options once, as an ``@attrs.frozen`` class whose fields are made with
:func:`option` (type, default, documentation, secrecy)::

    @attrs.frozen
    class MyOptions:
        timeout: float = option(5.0, doc="Seconds. Deadline of one operation.", positive=True)
        password: str | None = option(None, doc="Password of the server.", secret=True)

    options = parse_options(MyOptions, spec, store="my")

:func:`parse_options` reads the URL's query parameters and ``StoreSpec.options`` (options win),
converts each value, logs one warning per unknown option and raises a
:class:`~autoconfig_cache.errors.ConfigurationError` naming the option, its value (masked when
secret) and the expected form. :func:`options_table` renders the Markdown table of the
documentation, so the docs cannot drift from the code (a test compares them).

An empty value counts as unset (the default applies), as an empty environment variable does.
"""

from __future__ import annotations

import builtins
import logging
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import attrs

from .errors import ConfigurationError
from .secrets import mask
from .store_spec import StoreSpec, parse_flag

__all__ = ["OptionInfo", "option", "option_infos", "options_table", "parse_options"]

logger = logging.getLogger(__name__)

_METADATA_KEY = "autoconfig_cache.option"
_SUPPORTED_TYPES = (bool, int, float, str)
# What an option name looks like. Anything else (a pasted key, a URL...) is masked when an
# unknown option is reported, since it may be a secret written where a name was expected.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,39}")
_SECRET_PREFIXES = ("sdk-", "mob-", "api-")

_C = TypeVar("_C")


@attrs.frozen
class OptionInfo:
    """What :func:`option` records about one option (in the attrs field's metadata).

    :param name: the option name (the field name).
    :param default: the value when the option is unset or empty.
    :param doc: one or two sentences for the documentation table.
    :param type: ``bool``, ``int``, ``float`` or ``str``.
    :param secret: the value is never shown (errors, ``repr``).
    :param env: environment variables read, in order, when the option is unset.
    :param choices: the accepted values of a ``str`` option (matched ignoring case).
    :param aliases: other spellings of choices (upper case) mapped to a choice.
    :param minimum: the smallest accepted number (inclusive).
    :param positive: numbers must be greater than 0.
    :param shown_default: the default column of the docs, when the default is computed.
    """

    name: str
    default: Any
    doc: str
    type: type
    secret: bool = False
    env: tuple[str, ...] = ()
    choices: tuple[str, ...] | None = None
    aliases: Mapping[str, str] = attrs.field(factory=dict)
    minimum: float | None = None
    positive: bool = False
    shown_default: str | None = None

    def expected(self) -> str:
        """The accepted form, for error messages."""
        if self.choices is not None:
            return f"one of {', '.join(self.choices)}"
        if self.type is bool:
            return "true or false"
        noun = "an integer" if self.type is int else "a number"
        if self.positive:
            return f"{noun} greater than 0"
        if self.minimum is not None:
            return f"{noun} >= {_number_text(self.minimum)}"
        return noun

    def convert(self, text: str) -> Any:
        """The value of ``text``; :class:`ValueError` when it has the wrong form."""
        value: Any
        if self.type is bool:
            value = parse_flag(text)
            if value is None:
                raise ValueError(text)
            return value
        if self.type is int:
            value = int(text.strip())
        elif self.type is float:
            value = float(text.strip())
            if value != value or value in (float("inf"), float("-inf")):  # NaN, infinities
                raise ValueError(text)
        else:
            if self.choices is None:
                return text
            word = text.strip()
            by_case = {choice.upper(): choice for choice in self.choices}
            canonical = by_case.get(word.upper()) or self.aliases.get(word.upper())
            if canonical is None:
                raise ValueError(text)
            return canonical
        if self.positive and not value > 0:
            raise ValueError(text)
        if self.minimum is not None and value < self.minimum:
            raise ValueError(text)
        return value

    def environment_value(self, environ: Mapping[str, str]) -> str | None:
        """The value of the first variable of :attr:`env` that is set (not empty), if any."""
        for variable in self.env:
            text = environ.get(variable, "").strip()
            if text:
                return text
        return None


def option(
    default: Any,
    *,
    doc: str,
    secret: bool = False,
    type: builtins.type | None = None,
    env: str | Sequence[str] | None = None,
    choices: Sequence[str] | None = None,
    aliases: Mapping[str, str] | None = None,
    minimum: float | None = None,
    positive: bool = False,
    shown_default: str | None = None,
) -> Any:
    """An attrs field declaring one store option (see the module docstring).

    :param default: the value when unset; its type is the option's type unless ``type`` is
        given (a ``None`` default makes a ``str`` option).
    :param doc: the description shown in the documentation table.
    :param secret: mask the value in errors and leave it out of ``repr``.
    :param type: ``bool``, ``int``, ``float`` or ``str``.
    :param env: environment variable(s) whose value is the default when the option is unset.
    :param choices: accepted values of a ``str`` option (case-insensitive; the canonical
        spelling is returned).
    :param aliases: other accepted spellings, mapped to a choice.
    :param minimum: smallest accepted number (inclusive).
    :param positive: numbers must be greater than 0.
    :param shown_default: text of the default column when the default is computed elsewhere.
    """
    kind = type or (builtins.type(default) if default is not None else str)
    if kind not in _SUPPORTED_TYPES:
        raise TypeError(f"option type must be one of bool, int, float, str, not {kind!r}")
    if choices is not None and kind is not str:
        raise TypeError("choices are for str options")
    info = {
        "default": default,
        "doc": doc,
        "type": kind,
        "secret": secret,
        "env": (env,) if isinstance(env, str) else tuple(env or ()),
        "choices": tuple(choices) if choices is not None else None,
        "aliases": {key.upper(): value for key, value in (aliases or {}).items()},
        "minimum": minimum,
        "positive": positive,
        "shown_default": shown_default,
    }
    return attrs.field(default=default, repr=not secret, metadata={_METADATA_KEY: info})


def option_infos(cls: type) -> list[OptionInfo]:
    """The options of an options class, in declaration order."""
    return [
        OptionInfo(name=field.name, **field.metadata[_METADATA_KEY])
        for field in attrs.fields(cls)
        if _METADATA_KEY in field.metadata
    ]


def parse_options(
    cls: type[_C],
    spec: StoreSpec,
    *,
    store: str,
    environ: Mapping[str, str] | None = None,
) -> _C:
    """Parse the options of ``spec`` (URL query, then ``spec.options``, which win) into ``cls``.

    :param cls: an ``@attrs.frozen`` class whose fields are made with :func:`option`.
    :param spec: the store's configuration.
    :param store: the store's name in messages (``redis``, ``DynamoDB``...).
    :param environ: where ``env`` defaults are read (default: ``os.environ``).
    :raises ConfigurationError: naming the option, its value (masked when secret) and the
        expected form.
    """
    infos = {info.name: info for info in option_infos(cls)}
    given = spec.query()
    where = spec.redacted_url
    for name in given:
        if name not in infos:
            # A typo must not pass silently, nor stop the process.
            logger.warning(
                "%s store %s: unknown option %r ignored; known options: %s",
                store,
                where,
                _shown_name(name),
                ", ".join(infos),
            )
    environment = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for name, info in infos.items():
        text = given.get(name)
        if text is None or not text.strip():
            text = info.environment_value(environment)
            if text is None:
                values[name] = info.default
                continue
        try:
            values[name] = info.convert(text)
        except ValueError:
            shown = mask(text) if info.secret else text
            raise ConfigurationError(
                f"{store} store {where}: option {name}={shown!r} is invalid; "
                f"expected {info.expected()}"
            ) from None
    return cls(**values)


def _shown_name(name: str) -> str:
    """``name`` if it looks like an option name, else masked: it may be a pasted secret."""
    looks_like_a_key = name.lower().startswith(_SECRET_PREFIXES) or (
        len(name) > 20 and any(char.isdigit() for char in name)
    )
    if _NAME.fullmatch(name) and not looks_like_a_key:
        return name
    return mask(name) or "****"


# -- documentation ---------------------------------------------------------------------------


def options_table(cls: type) -> str:
    """The Markdown table documenting the options of ``cls`` (one row per option)."""
    lines = ["| Option | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
    for info in option_infos(cls):
        meaning = info.doc
        if info.secret:
            meaning += " Secret: masked in logs and errors."
        lines.append(f"| `{info.name}` | {_type_text(info)} | {_default_text(info)} | {meaning} |")
    return "\n".join(lines) + "\n"


def _type_text(info: OptionInfo) -> str:
    if info.choices is not None:
        return " or ".join(f"`{choice}`" for choice in info.choices)
    words = {bool: "boolean", int: "integer", float: "number", str: "string"}
    text = words[info.type]
    if info.positive:
        text += " > 0"
    elif info.minimum is not None:
        text += f" ≥ {_number_text(info.minimum)}"
    return text


def _default_text(info: OptionInfo) -> str:
    if info.shown_default is not None:
        return info.shown_default
    if info.default is None:
        default = "none"
    elif isinstance(info.default, bool):
        default = f"`{'true' if info.default else 'false'}`"
    elif isinstance(info.default, float):
        default = f"`{_number_text(info.default)}`"
    else:
        default = f"`{info.default}`"
    if info.env:
        return ", ".join(f"`{variable}`" for variable in info.env) + f", else {default}"
    return default


def _number_text(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)
