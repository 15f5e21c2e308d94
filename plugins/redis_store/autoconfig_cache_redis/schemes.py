"""The URL schemes of the Redis/Valkey store and the connection mode each selects.

Apart from :mod:`.settings` so that plugin discovery (which every process runs, whatever store
it uses) imports only this: the option schema of :mod:`.settings` is built when a Redis store
is opened.
"""

from __future__ import annotations

import enum

DEFAULT_PORT = 6379


class Mode(enum.StrEnum):
    """How the store reaches its server(s)."""

    STANDALONE = "standalone"
    CLUSTER = "cluster"
    SENTINEL = "sentinel"


#: scheme -> (mode, TLS on by the scheme itself)
SCHEMES: dict[str, tuple[Mode, bool]] = {}
for _base, _tls in (("redis", False), ("rediss", True), ("valkey", False), ("valkeys", True)):
    SCHEMES[_base] = (Mode.STANDALONE, _tls)
    SCHEMES[f"{_base}+cluster"] = (Mode.CLUSTER, _tls)
    SCHEMES[f"{_base}+sentinel"] = (Mode.SENTINEL, _tls)
