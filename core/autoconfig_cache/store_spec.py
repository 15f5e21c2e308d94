"""What a store factory receives: the URL and the settings that go with it."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

import attrs

from .secrets import redact_url


@attrs.frozen
class StoreSpec:
    """A store's configuration.

    :param url: the store URL as configured, secrets included (never log it: use
        :attr:`redacted_url`).
    :param cache_key: the namespace the cache lives under (Redis hash key, DynamoDB partition).
    :param options: settings that do not fit the URL (e.g. ``tls``, ``username``, ``password``,
        ``timeout``), as strings, from the configuration file or environment.
    """

    url: str = attrs.field(repr=redact_url)
    cache_key: str
    options: Mapping[str, str] = attrs.field(factory=dict)

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
