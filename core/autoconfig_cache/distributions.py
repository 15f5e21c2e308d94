"""Installed distributions' entry points and versions, read without :mod:`importlib.metadata`.

Importing :mod:`importlib.metadata` (it pulls in ``email``, ``zipfile``, ``pathlib`` and
``csv``) and letting it scan every installed distribution costs a service start some 30 ms,
about a tenth of a start from a 10,000-environment cache, for two facts: which plugins the
``autoconfig_cache`` entry-point group names, and this package's version. This module reads
the same files the same way for the layout nearly every installation has — plain directories
on :data:`sys.path` holding ``*.dist-info`` / ``*.egg-info`` folders, found by the standard
path finder — and hands the question to :mod:`importlib.metadata` whenever anything else could
take part (a zip file on the path, an ``.egg`` directory, a finder of its own in
:data:`sys.meta_path` that answers ``find_distributions``, a line it does not understand).

The rules followed are those of the standard library (CPython ``Lib/importlib/metadata/
__init__.py``: ``Lookup`` and ``Prepared.normalize`` find the folders, ``entry_points()`` keeps
the first distribution of each normalised name in :data:`sys.path` order, ``Sectioned.read``
and ``Pair.parse`` read ``entry_points.txt``, ``EntryPoint.pattern`` and ``EntryPoint.load``
read and load a value); ``tests/test_distributions.py`` checks the answers against
:mod:`importlib.metadata` on the test environment itself.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import importlib.metadata

#: ``EntryPoint.pattern`` of the standard library: ``module[:attr.path][ [extras]]``.
_VALUE_PATTERN = re.compile(
    r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$"
)
_METADATA_SUFFIXES = (".dist-info", ".egg-info")


class Unsupported(Exception):
    """The installation has something only :mod:`importlib.metadata` reads right."""


class FoundEntryPoint:
    """One entry point: its ``name``, ``value`` (``module:attr``) and distribution."""

    __slots__ = ("_version", "group", "name", "value")

    def __init__(
        self, name: str, value: str, group: str, version: Callable[[], str | None]
    ) -> None:
        self.name = name
        self.value = value
        self.group = group
        self._version = version

    def load(self) -> object:
        """Import the module the value names and return the object it points to."""
        match = _VALUE_PATTERN.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r} has a malformed value {self.value!r}")
        obj: object = importlib.import_module(match.group("module"))
        for attribute in (match.group("attr") or "").split("."):
            if attribute:
                obj = getattr(obj, attribute)
        return obj

    def version(self) -> str | None:
        """The version of the distribution declaring it (its metadata is read now); ``None``
        when unknown."""
        try:
            return self._version()
        except Unsupported:
            return None

    def __repr__(self) -> str:
        return f"FoundEntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def entry_points(group: str) -> list[FoundEntryPoint]:
    """The entry points of ``group`` of every installed distribution, as
    ``importlib.metadata.entry_points(group=group)`` lists them."""
    try:
        return [
            FoundEntryPoint(name, value, group, functools.partial(_read_version, folder))
            for folder in _distribution_folders()
            for name, value in _group_lines(folder, group)
        ]
    except Unsupported:
        return _from_importlib_metadata(group)


def version(distribution: str) -> str | None:
    """The version of the installed ``distribution`` (``None``: not installed)."""
    wanted = _normalize(distribution)
    try:
        for folder in _distribution_folders():
            if _folder_name(folder) == wanted:
                return _read_version(folder)
        return None
    except Unsupported:
        import importlib.metadata

        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            return None


def _distribution_folders() -> Iterator[str]:
    """The metadata folder of each distribution, the first of each name in path order.

    :raises Unsupported: when the standard library might find distributions elsewhere.
    """
    from importlib.machinery import PathFinder

    for finder in sys.meta_path:
        if finder is not PathFinder and getattr(finder, "find_distributions", None) is not None:
            raise Unsupported(f"finder {finder!r} finds distributions")
    seen: set[str] = set()
    for root in sys.path:
        if not isinstance(root, str):
            continue
        if root.lower().endswith(".egg"):
            raise Unsupported(f"egg on sys.path: {root}")
        try:
            children = os.listdir(root or ".")
        except OSError:
            if os.path.isfile(root):  # a zip file: importlib.metadata looks inside
                raise Unsupported(f"file on sys.path: {root}") from None
            continue
        for child in children:
            if not child.lower().endswith(_METADATA_SUFFIXES):
                continue
            name = _folder_name(child)
            if name not in seen:
                seen.add(name)
                yield os.path.join(root, child)


def _folder_name(folder: str) -> str:
    """``Lookup``'s normalised distribution name of a metadata folder (``Foo_Bar-1.0.dist-info``
    -> ``foo_bar``)."""
    return _normalize(os.path.basename(folder).lower().rpartition(".")[0].partition("-")[0])


def _normalize(name: str) -> str:
    """``Prepared.normalize``: PEP 503 normalisation, with dashes as underscores."""
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _group_lines(folder: str, group: str) -> Iterator[tuple[str, str]]:
    """``(name, value)`` of each line of ``group`` in the folder's ``entry_points.txt``."""
    text = _read_text(folder, "entry_points.txt")
    if text is None:
        return
    section: str | None = None
    for line in map(str.strip, text.splitlines()):
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        if section != group:
            continue
        name, equals, value = line.partition("=")
        if not equals:
            raise Unsupported(f"line {line!r} of {folder}/entry_points.txt")
        yield name.strip(), value.strip()


def _read_version(folder: str) -> str | None:
    """The ``Version`` header of the folder's ``METADATA`` (``PKG-INFO`` in an egg-info, or
    the ``.egg-info`` itself when it is a file, as ``Distribution.metadata`` reads them)."""
    for filename in ("METADATA", "PKG-INFO", ""):
        text = _read_text(folder, filename) if filename or os.path.isfile(folder) else None
        if not text:  # as Distribution.metadata: an empty file counts as missing
            continue
        for line in text.splitlines():
            if not line:
                break  # the headers end here; the description follows
            header, colon, value = line.partition(":")
            if colon and header.strip().lower() == "version":
                return value.strip()
        return None
    return None


def _read_text(folder: str, filename: str) -> str | None:
    try:
        with open(os.path.join(folder, filename) if filename else folder, encoding="utf-8") as file:
            return file.read()
    except OSError:
        # As Distribution.read_text: a missing file (or an .egg-info that is a file) is no text.
        return None
    except UnicodeDecodeError as exc:  # importlib.metadata raises it: let it
        raise Unsupported(f"{folder}/{filename} is not UTF-8") from exc


def _from_importlib_metadata(group: str) -> list[FoundEntryPoint]:
    import importlib.metadata

    def version_of(dist: importlib.metadata.Distribution | None) -> Callable[[], str | None]:
        return (lambda: dist.version) if dist is not None else (lambda: None)

    return [
        FoundEntryPoint(point.name, point.value, group, version_of(point.dist))
        for point in importlib.metadata.entry_points(group=group)
    ]
