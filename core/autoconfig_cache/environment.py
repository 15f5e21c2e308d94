"""Relay-style settings of store plugins: environment variables and a TOML section.

A Relay Proxy deployment selects its database with settings such as ``USE_REDIS`` and
``REDIS_HOST``. A store plugin that wants such settings read declares them through the discovery
hook :func:`~autoconfig_cache.hookspecs.autoconfig_cache_environment_store`, returning an
:class:`EnvironmentStore`: a *switch* (``USE_REDIS``) that turns the store on, the settings it
reads, and a ``build`` function that turns them into a store URL and options. The core reads the
values (environment over TOML, an empty variable counting as unset), rejects unknown TOML keys,
warns about settings set while their switch is off, refuses two stores at once and calls
``build`` only for the store selected, so it never needs to know a backend's setting names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import attrs

from .errors import ConfigurationError
from .secrets import mask, redact_url
from .store_spec import parse_flag

__all__ = [
    "EnvironmentStore",
    "Setting",
    "SettingsReader",
    "StoreConfig",
    "check_http_url",
    "settings_table",
]


@attrs.frozen
class Setting:
    """One setting: its environment variable, its TOML key (dotted) and whether it is secret.

    :param env: the environment variable (``REDIS_HOST``).
    :param toml: the dotted TOML key (``redis.host``).
    :param secret: never shown in errors (only masked).
    :param doc: what it does, for the documentation table.
    :param default: the default as shown in the documentation (``None``: none).
    :param aliases: other environment variables read when :attr:`env` is unset (another tool's
        names for the same thing, e.g. ldactl's ``LDAC_EXEC``); see :meth:`from_environment`.
    """

    env: str
    toml: str
    secret: bool = False
    doc: str = ""
    default: str | None = None
    aliases: tuple[str, ...] = ()

    def name(self) -> str:
        """How error messages name the setting: both spellings."""
        return f"{self.env} (TOML: {self.toml})"

    def from_environment(self, environ: Mapping[str, str]) -> str | None:
        """The setting's value in ``environ``: :attr:`env`, else the first alias set (an empty
        variable counts as unset); ``None`` when none is set.

        :raises ConfigurationError: when the variable and an alias (or two aliases) are set to
            different values: which one was meant cannot be guessed. Secret values are masked.
        """
        found = [
            (variable, environ[variable])
            for variable in (self.env, *self.aliases)
            if environ.get(variable, "") != ""
        ]
        if not found:
            return None
        first_name, first_value = found[0]
        for other_name, other_value in found[1:]:
            if other_value != first_value:
                shown: Callable[[str], str] = mask if self.secret else repr
                raise ConfigurationError(
                    f"{first_name} and {other_name} are both set, to different values "
                    f"({shown(first_value)} and {shown(other_value)}); they are the same "
                    f"setting ({self.name()}): keep one of them"
                )
        return first_value


@attrs.frozen
class StoreConfig:
    """A store URL and the options that go with it (``StoreSpec.options``)."""

    url: str = attrs.field(repr=redact_url)
    options: Mapping[str, str] = attrs.field(
        factory=dict, repr=lambda options: repr(sorted(options))
    )


class SettingsReader:
    """Typed access to the values read for some settings, with errors naming the setting (both
    its environment variable and its TOML key) and masking secret values.

    Settings are looked up by name: the environment variable for a plugin's settings.
    """

    def __init__(self, raw: Mapping[str, Any], settings: Mapping[str, Setting]) -> None:
        self.raw = raw
        self.settings = settings

    def setting(self, name: str) -> Setting:
        """The :class:`Setting` called ``name``."""
        return self.settings[name]

    def has(self, name: str) -> bool:
        """Whether the setting is set (environment or TOML)."""
        return name in self.raw

    def text(self, name: str) -> str | None:
        """The setting as a string, ``None`` when unset.

        :raises ConfigurationError: when TOML gave another type.
        """
        value = self.raw.get(name)
        if value is None:
            return None
        if not isinstance(value, str):
            raise ConfigurationError(f"{self.settings[name].name()} must be a string")
        return value

    def secret(self, name: str) -> str | None:
        """A key: trimmed (as the Relay Proxy does); empty or whitespace is an error."""
        value = self.text(name)
        if value is None:
            return None
        if not value.strip():
            raise ConfigurationError(
                f"{self.settings[name].name()} is empty or only whitespace; set it to the key, "
                "or remove the setting"
            )
        return value.strip()

    def flag(self, name: str) -> bool:
        """A boolean (``true``/``false``, ``1``/``0``, ``yes``/``no``, ``on``/``off``); unset is
        ``False``."""
        value = self.raw.get(name)
        if value is None:
            return False
        if isinstance(value, bool):
            return value
        flag = parse_flag(value) if isinstance(value, str) else None
        if flag is not None:
            return flag
        raise ConfigurationError(
            f"{self.settings[name].name()} must be true or false, got {self.shown(name, value)}"
        )

    def port(self, name: str) -> int | None:
        """A TCP port number, ``None`` when unset."""
        value = self.raw.get(name)
        if value is None:
            return None
        number = whole_number(value, max_digits=5)
        if number is None or not 1 <= number <= 65535:
            raise ConfigurationError(
                f"{self.settings[name].name()} must be a port number from 1 to 65535, got "
                f"{self.shown(name, value)}"
            )
        return number

    def http_url(self, name: str) -> str | None:
        """An ``http://`` or ``https://`` URL with a host, ``None`` when unset or empty."""
        url = (self.text(name) or "").strip()
        if not url:
            return None
        check_http_url(url, self.settings[name])
        return url

    def shown(self, name: str, value: object) -> str:
        """``value`` as an error message may show it: masked when the setting is secret."""
        return repr(mask(str(value))) if self.settings[name].secret else repr(value)


@attrs.frozen
class EnvironmentStore:
    """The Relay-style settings of one store plugin (see the module docstring).

    :param switch: the setting that turns the store on (``USE_REDIS``, TOML ``redis.enabled``).
    :param settings: the other settings it reads (``REDIS_HOST``...); TOML keys under the same
        table as the switch, by convention.
    :param build: called with a :class:`SettingsReader` over the switch and ``settings`` (by
        environment variable name) when the switch is on and a cache key is set; returns the
        store URL and options. Raises :class:`ConfigurationError` naming the setting to change.
    :param plugin: the distribution that reads them, for the documentation.
    """

    switch: Setting
    settings: tuple[Setting, ...]
    build: Callable[[SettingsReader], StoreConfig]
    plugin: str = ""

    def all_settings(self) -> tuple[Setting, ...]:
        """The switch, then the other settings."""
        return (self.switch, *self.settings)


def whole_number(value: object, *, max_digits: int, underscores: bool = False) -> int | None:
    """``value`` as a whole number: a TOML integer (not a boolean), or a string of at most
    ``max_digits`` ASCII digits once stripped (and rid of ``_`` when ``underscores``); ``None``
    for anything else."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    if underscores:
        text = text.replace("_", "")
    # ASCII only: str.isdigit() also accepts "²" and other digits int() refuses with a
    # ValueError. Few digits: int() of a huge string is slow.
    if text.isascii() and text.isdigit() and len(text) <= max_digits:
        return int(text)
    return None


def check_http_url(url: str, setting: Setting, *, allow_credentials: bool = True) -> None:
    """Check that ``url`` is an ``http(s)://`` URL with a host.

    :param allow_credentials: ``False`` refuses ``user:password@`` in the URL (the AutoConfig
        stream authenticates with its key; credentials there would only leak into logs).
    :raises ConfigurationError: naming ``setting``, with any password in the URL masked.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - evaluating it validates the port
    except ValueError as exc:
        raise ConfigurationError(
            f"{setting.name()} is not a valid URL ({redact_url(url)!r}): {exc}"
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"{setting.name()} must be an http:// or https:// URL with a host, got "
            f"{redact_url(url)!r}"
        )
    if not allow_credentials and "@" in parts.netloc:
        raise ConfigurationError(
            f"{setting.name()} must not carry a user name or password ({redact_url(url)!r}); "
            "the stream authenticates with AUTO_CONFIG_KEY"
        )


def settings_table(store: EnvironmentStore | Sequence[Setting]) -> str:
    """The Markdown table documenting Relay-style settings (one row per setting)."""
    settings = store.all_settings() if isinstance(store, EnvironmentStore) else tuple(store)
    lines = ["| Variable | TOML key | Default | Meaning |", "| --- | --- | --- | --- |"]
    for setting in settings:
        meaning = setting.doc
        if setting.aliases:
            names = ", ".join(f"`{alias}`" for alias in setting.aliases)
            meaning += f" Also read from {names} when unset."
        if setting.secret:
            meaning += " Secret: masked in logs and errors."
        default = setting.default if setting.default is not None else "none"
        lines.append(f"| `{setting.env}` | `{setting.toml}` | {default} | {meaning} |")
    return "\n".join(lines) + "\n"
