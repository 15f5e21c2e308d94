"""Masking of secrets for logs, errors and CLI output.

SDK keys, mobile keys, the AutoConfig key and encryption keys never leave the process in clear:
at most their last four characters are shown, which is what an operator needs to tell keys apart.
"""

from __future__ import annotations

import re

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


# Words that make a setting, option or query parameter name a secret's (``password``,
# ``sentinel_password``, ``aws_secret_access_key``, ``session_token``...): one list, so a value is
# masked whether it came in a URL's query or as a separate option.
_MASKED_NAME_WORDS = "pass|secret|token|key|credential"
_SECRET_NAME = re.compile(rf"(?i){_MASKED_NAME_WORDS}")
_SECRET_QUERY = re.compile(rf"(?i)((?:^|[?&;])[^=&;#]*(?:{_MASKED_NAME_WORDS})[^=&;#]*=)[^&;#]*")
_PLAIN_USER = re.compile(r"[\w.+-]*")


def is_secret_name(name: str) -> bool:
    """Whether an option or query parameter called ``name`` holds a secret (its name contains
    ``pass``, ``secret``, ``token``, ``key`` or ``credential``, in any case)."""
    return _SECRET_NAME.search(name) is not None


def redact_url(url: str) -> str:
    """Return ``url`` with its credentials and secret-looking query values replaced by ``****``.

    Works on the text, before any URL parsing: everything between ``://`` and the *last* ``@``
    is user information, so a password containing ``/``, ``#``, ``?`` or ``@`` is masked whole
    and never echoed by a later "not a valid URL" error. A plain user name before the first
    ``:`` is kept (it tells accounts apart). The rest of the URL is shown exactly as written
    (``sqlite:////abs/path.db`` and ``postgresql:///db?host=...`` keep their slashes).
    """
    scheme_end = url.find("://")
    if scheme_end >= 0:
        authority_start = scheme_end + 3
        at = url.rfind("@", authority_start)
        if at >= 0:
            userinfo = url[authority_start:at]
            user, colon, _password = userinfo.partition(":")
            shown = f"{user}:****" if colon and _PLAIN_USER.fullmatch(user) else "****"
            if not colon and _PLAIN_USER.fullmatch(user):
                shown = user
            url = url[:authority_start] + shown + url[at:]
    query_start = url.find("?")
    if query_start >= 0:
        url = url[:query_start] + _SECRET_QUERY.sub(r"\1****", url[query_start:])
    return url
