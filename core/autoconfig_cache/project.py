"""Where the project lives on the web.

A ``pip install`` has no ``docs/`` folder, so the command line and the demo point to the
documentation by URL. These are the same URLs as the distributions' ``Project-URL`` metadata
(the three ``pyproject.toml`` files); ``tests/test_packaging.py`` keeps them equal.
"""

from __future__ import annotations

import functools

#: The source repository.
REPOSITORY_URL = "https://github.com/autoconfig-cache/autoconfig-cache"
#: The documentation (the repository's ``docs/`` folder, on the main branch).
DOCUMENTATION_URL = f"{REPOSITORY_URL}/tree/main/docs"


def docs_page(name: str) -> str:
    """The URL of one documentation page, e.g. ``docs_page("configuration.md")``."""
    return f"{REPOSITORY_URL}/blob/main/docs/{name}"


@functools.cache
def installed_version() -> str | None:
    """The installed ``autoconfig-cache`` distribution's version; ``None`` from a source tree.

    Read once per process: the lookup scans the installed distributions (a few milliseconds),
    and the command line, the plugin registry and the status server all show it.
    """
    from .distributions import version

    return version("autoconfig-cache")
