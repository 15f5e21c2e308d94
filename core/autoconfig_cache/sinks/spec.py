"""Sink specs: the URL-like strings that enable a sink from configuration.

``AUTO_CONFIG_CACHE_SINKS`` (and ``run --sink``) lists sinks as URL-like specs, the way
``AUTO_CONFIG_CACHE_STORE`` names a store: the scheme picks the sink type a plugin registered
(:func:`~autoconfig_cache.hookspecs.autoconfig_cache_sink_types`), the rest is the sink's to read.
By convention the path is the sink's target and the query its options::

    directory:///var/lib/envs              an absolute path (three slashes)
    directory:envs                         a path relative to the working directory
    exec:///usr/local/bin/hook?mode=change-json&arg=--verbose&name=vault

Every sink type reads ``name=`` (the sink's name in logs, ``/status`` and the delivery records;
two sinks of one type need different names).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from urllib.parse import parse_qs, unquote, urlsplit

import attrs

from ..errors import ConfigurationError
from ..secrets import redact_url
from ..store_spec import parse_flag
from .base import Sink


def _frozen(values: Mapping[str, tuple[str, ...]]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(dict(values))


@attrs.frozen
class SinkSpec:
    """One parsed sink spec, as a sink factory receives it.

    :param url: the spec as given (may hold a secret: show :attr:`redacted` instead).
    :param scheme: its scheme, lower case (``directory``).
    :param path: the target: what follows ``scheme:`` (or ``scheme://``) up to the query,
        percent-decoded (``/var/lib/envs``; ``envs`` for ``directory:envs``).
    :param query: every query parameter with all its values, in order.
    :param withheld: environment variables a sink that starts programs must not pass on (the
        secrets of this process: AutoConfig key, encryption keys, store passwords).
    """

    url: str = attrs.field(repr=redact_url)
    scheme: str
    path: str
    query: Mapping[str, tuple[str, ...]] = attrs.field(converter=_frozen)
    withheld: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str, *, withheld: Collection[str] = ()) -> SinkSpec:
        """Parse ``text``.

        :raises ConfigurationError: when it has no scheme or is not a URL.
        """
        text = text.strip()
        try:
            parts = urlsplit(text)
        except ValueError as exc:
            raise ConfigurationError(
                f"sink spec {redact_url(text)!r} is not a valid URL: {exc}"
            ) from None
        if not parts.scheme or not text.lower().startswith(f"{parts.scheme.lower()}:"):
            raise ConfigurationError(
                f"sink spec {redact_url(text)!r} has no scheme; write it as TYPE:TARGET, e.g. "
                "output-file:///var/lib/ldac/environments.json or directory:///var/lib/envs"
            )
        query = {
            name: tuple(values)
            for name, values in parse_qs(parts.query, keep_blank_values=True).items()
        }
        return cls(
            url=text,
            scheme=parts.scheme.lower(),
            path=unquote(parts.netloc + parts.path),
            query=query,
            withheld=frozenset(withheld),
        )

    @property
    def redacted(self) -> str:
        """The spec with any password masked, for messages."""
        return redact_url(self.url)

    def option(self, name: str, default: str | None = None) -> str | None:
        """The last value of query parameter ``name``, or ``default``."""
        values = self.query.get(name)
        return values[-1] if values else default

    def options(self, name: str) -> tuple[str, ...]:
        """Every value of query parameter ``name`` (``arg=a&arg=b``), in order."""
        return self.query.get(name, ())

    def flag(self, name: str, default: bool = False) -> bool:
        """Query parameter ``name`` as a boolean (``true``/``false``, ``1``/``0``...).

        :raises ConfigurationError: for any other value.
        """
        value = self.option(name)
        if value is None:
            return default
        flag = parse_flag(value)
        if flag is None:
            raise ConfigurationError(
                f"sink spec {self.redacted!r}: {name} must be true or false, got {value!r}"
            )
        return flag

    def name(self, default: str) -> str:
        """The sink's name: ``name=`` if given, else ``default``."""
        return self.option("name") or default

    def require_path(self, what: str) -> str:
        """:attr:`path`, which must not be empty.

        :param what: what the path is, for the error (``the file to write``).
        :raises ConfigurationError: when it is empty.
        """
        if not self.path:
            raise ConfigurationError(
                f"sink spec {self.redacted!r} names no target; give {what} after "
                f"'{self.scheme}:', e.g. {self.scheme}:///absolute/path"
            )
        return self.path

    def check_options(self, known: Collection[str]) -> None:
        """Refuse a query parameter outside ``known`` (and ``name``): a misspelt option must
        not be ignored silently.

        :raises ConfigurationError: naming it and the known ones.
        """
        allowed = {*known, "name"}
        unknown = sorted(set(self.query) - allowed)
        if unknown:
            raise ConfigurationError(
                f"sink spec {self.redacted!r}: unknown option(s) {', '.join(unknown)}; "
                f"{self.scheme} sinks read {', '.join(sorted(allowed))}"
            )


#: Builds a sink from its spec. Must not block or connect (the service is starting): open
#: files and connections on the first delivery. A bad spec raises
#: :class:`~autoconfig_cache.errors.ConfigurationError`.
SinkFactory = Callable[[SinkSpec], Sink]


class UnknownSinkTypeError(ConfigurationError):
    """A sink spec names a scheme no installed plugin registered."""

    def __init__(self, scheme: str, known: Collection[str]) -> None:
        self.scheme = scheme
        self.known = sorted(known)
        super().__init__(
            f"unknown sink type {scheme!r}; installed sink types: "
            f"{', '.join(self.known) or '(none)'}. Install the plugin that provides it "
            "(`autoconfig-cache plugins` lists them), or fix the spec"
        )
