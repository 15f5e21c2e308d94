"""A package's names imported on first use (PEP 562 module ``__getattr__`` and ``__dir__``).

For packages whose names are cheap to list but costly to import: the sinks (which a service
without sinks never needs), the local stream server, and the store plugins, whose packages every
process imports during plugin discovery.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of the package named ``package``, whose names
    ``exports`` maps to the submodule (relative, without its dot) that defines each.

    A name's submodule is imported when the name is first read; the value is then set on the
    package, so later reads find it directly. Use::

        __getattr__, __dir__ = lazy_exports(__name__, {"Thing": "things"})
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{module}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
