"""What a store factory receives: the URL and the settings that go with it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

import attrs

from .secrets import is_secret_name, mask, redact_url


def masked_options(options: Mapping[str, str]) -> dict[str, str]:
    """``options`` with the value of every secret-looking name masked (last four characters).

    The names are those :func:`~autoconfig_cache.secrets.redact_url` masks in a query string,
    so an option is masked whether it came in the URL or apart.
    """
    return {name: mask(value) if is_secret_name(name) else value for name, value in options.items()}


def _options_repr(options: Mapping[str, str]) -> str:
    return repr(masked_options(options))


_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


def parse_flag(text: str) -> bool | None:
    """A boolean setting written as text (``true``/``false``, ``1``/``0``, ``yes``/``no``,
    ``on``/``off``, any case, surrounding spaces ignored); ``None`` if it is none of these.

    One vocabulary for environment variables, TOML strings and store options alike.
    """
    word = text.strip().lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


@attrs.frozen
class StoreSpec:
    """A store's configuration.

    :param url: the store URL as configured, secrets included (never log it: use
        :attr:`redacted_url`).
    :param cache_key: the namespace the cache lives under (Redis hash key, DynamoDB partition).
    :param options: settings that do not fit the URL (e.g. ``tls``, ``username``, ``password``,
        ``timeout``), as strings, from the configuration file or environment.
    :param read_only: the caller only reads (``cache inspect``, ``verify``, ``export``): the
        store must create nothing — no file, directory, table or key, whatever its options say
        (DynamoDB's ``create_table``) — and reads missing storage (no database file, no table)
        as holding no records, so that the caller can report "nothing there" instead of
        creating what a mistyped URL names.
    """

    url: str = attrs.field(repr=redact_url)
    cache_key: str
    # Every plugin may log the spec it receives: its repr masks passwords and the like.
    options: Mapping[str, str] = attrs.field(factory=dict, repr=_options_repr)
    read_only: bool = attrs.field(default=False, kw_only=True)

    @property
    def scheme(self) -> str:
        """The URL scheme, lower case (``redis``, ``sqlite``, ...)."""
        return urlsplit(self.url).scheme.lower()

    @property
    def redacted_url(self) -> str:
        """The URL with its password masked, safe to log."""
        return redact_url(self.url)

    def query(self) -> dict[str, str]:
        """The URL's query parameters merged under :attr:`options` (options win)."""
        merged = dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))
        merged.update(self.options)
        return merged
