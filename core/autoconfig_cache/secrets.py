"""Masking of secrets for logs, errors and CLI output.

SDK keys, mobile keys, the AutoConfig key and encryption keys never leave the process in clear:
at most their last four characters are shown, which is what an operator needs to tell keys apart.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

_VISIBLE = 4


def mask(secret: str | None) -> str:
    """Return ``secret`` with everything but its last four characters replaced by ``*``.

    Secrets of eight characters or fewer are masked entirely, since four characters would be
    half of the secret.
    """
    if not secret:
        return ""
    if len(secret) <= 2 * _VISIBLE:
        return "****"
    return "****" + secret[-_VISIBLE:]


def redact_url(url: str) -> str:
    """Return ``url`` with any password (and token-like query values) replaced by ``****``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        netloc = f"{user}{':****' if sep else ''}@{hostport}"
    query = re.sub(r"(?i)((?:password|secret|token|key)[^=&]*=)[^&]*", r"\1****", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
