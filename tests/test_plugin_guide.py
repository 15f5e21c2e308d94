"""docs/plugin-authors.md stays true: every hook is documented, and its minimal store works.

* Every hook specification of ``autoconfig_cache.hookspecs`` appears in the guide with its
  signature, ``name(param, ...)`` (as datasette checks its plugin hooks against its docs).
* The guide's minimal store, copied verbatim into a new package, passes the conformance kit: the
  fenced blocks whose first line is a comment naming a file (``# my_store/store.py``,
  ``# pyproject.toml``, ...) are written into an empty folder, and pytest runs the guide's test
  module there in a fresh interpreter, with the folder on ``PYTHONPATH``. Installing is not
  needed for that; the entry point is checked separately: it names the module that registers
  the store, and a cache opened through that registration works.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from autoconfig_cache import AutoConfigCache, Environment, hookspecs
from autoconfig_cache.demo.data import environment_json
from autoconfig_cache.plugins import PluginRegistry

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "plugin-authors.md"
PROJECT_NAME = hookspecs.PROJECT_NAME

#: A fenced code block: its language and its text.
_FENCE = re.compile(r"^```(?P<lang>[\w+-]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
#: The first line of a block that names its file: ``# path/to/file.ext`` and nothing else.
_FILE_MARKER = re.compile(r"#\s*(?P<path>[\w./-]+\.(?:py|toml|cfg|ini|txt))\s*")


def _hookspecs() -> list[tuple[str, list[str]]]:
    """Every hook specification: its name and parameter names."""
    found = []
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction):
        if hasattr(function, f"{PROJECT_NAME}_spec"):
            found.append((name, list(inspect.signature(function).parameters)))
    return sorted(found)


def test_the_hookspecs_are_found() -> None:
    names = [name for name, _ in _hookspecs()]
    assert {"cache_get_all", "cache_upsert", "autoconfig_cache_register_stores"} <= set(names)


def signature_pattern(name: str, params: list[str]) -> re.Pattern[str]:
    """``name(a, b)`` as the guide writes a hook: bare, or as a ``def`` (a method's ``self``
    first) with annotations."""
    annotation = r"(?:\s*:\s*[^()]*?)?"
    listed = r",\s*".join(rf"{re.escape(param)}{annotation}" for param in params)
    return re.compile(rf"\b{re.escape(name)}\(\s*(?:self,\s*)?{listed}\s*\)")


def test_signature_pattern() -> None:
    pattern = signature_pattern("cache_set_all", ["records", "rewrite_unchanged"])
    assert pattern.search("`cache_set_all(records, rewrite_unchanged)`")
    assert pattern.search("def cache_set_all(self, records: Sequence[X], rewrite_unchanged: bool)")
    assert not pattern.search("`cache_set_all(records)`")
    assert not pattern.search("`cache_set_all`")


@pytest.mark.parametrize(("name", "params"), _hookspecs(), ids=lambda v: str(v))
def test_every_hookspec_is_documented_with_its_signature(name: str, params: list[str]) -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    signature = f"{name}({', '.join(params)})"
    assert signature_pattern(name, params).search(guide), (
        f"docs/plugin-authors.md does not document `{signature}`"
    )


def opening_section(text: str) -> str:
    """The guide's first ``##`` section: the minimal store."""
    sections = re.split(r"^## ", text, flags=re.MULTILINE)
    assert len(sections) > 2, "docs/plugin-authors.md has no sections"
    return sections[1]


def guide_files(text: str) -> dict[str, str]:
    """The files the fenced blocks of ``text`` name on their first line, path -> content."""
    files: dict[str, str] = {}
    for match in _FENCE.finditer(text):
        body = match.group("body")
        first = body.split("\n", 1)[0]
        marker = _FILE_MARKER.fullmatch(first)
        if marker is not None:
            files.setdefault(marker.group("path"), body)
    return files


def test_guide_files_reads_the_markers() -> None:
    text = "x\n```python\n# pkg/a.py\nA = 1\n```\n```python\nno_marker = 1\n```\n"
    assert guide_files(text) == {"pkg/a.py": "# pkg/a.py\nA = 1\n"}


@pytest.fixture(scope="module")
def minimal_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide's minimal store package, written verbatim into an empty folder."""
    files = guide_files(opening_section(GUIDE.read_text(encoding="utf-8")))
    python = {path for path in files if path.endswith(".py")}
    tests = {path for path in python if Path(path).name.startswith("test_")}
    assert "pyproject.toml" in files and python - tests and tests, (
        "docs/plugin-authors.md must open with the minimal store in fenced blocks whose first "
        "line names the file (# pyproject.toml, # my_store/store.py, # tests/test_....py); "
        f"found {sorted(files)}"
    )
    folder = tmp_path_factory.mktemp("guide-store")
    for path, content in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    return folder


def _entry_points(folder: Path) -> dict[str, str]:
    project = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    entry_points: dict[str, str] = project.get("entry-points", {}).get(PROJECT_NAME, {})
    return entry_points


def test_the_minimal_store_passes_the_kit(minimal_store: Path) -> None:
    tests = sorted(str(p.relative_to(minimal_store)) for p in minimal_store.rglob("test_*.py"))
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(minimal_store), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        # The folder's own pyproject.toml is the configuration (no options of this project's),
        # as it would be in the author's new package.
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *tests],
        cwd=minimal_store,
        env=environ,
        capture_output=True,
        text=True,
        timeout=600,
    )
    summary = result.stdout[-3000:] + result.stderr[-2000:]
    assert result.returncode == 0, summary
    assert re.search(r"\b\d+ passed\b", result.stdout), summary
    assert " failed" not in result.stdout and " error" not in result.stdout, summary


def _load_module(folder: Path, dotted: str) -> ModuleType:
    path = folder.joinpath(*dotted.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(f"guide_{uuid.uuid4().hex}", path)
    assert spec is not None and spec.loader is not None, f"the entry point names {dotted}: no file"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_entry_point_registers_the_store(minimal_store: Path) -> None:
    """The entry point's module is a plugin that registers a scheme, and a cache opened with a
    URL of that scheme stores and loads records through it."""
    entry_points = _entry_points(minimal_store)
    assert entry_points, "pyproject.toml declares no entry point in the group autoconfig_cache"
    registry = PluginRegistry(load_entry_points=False)
    for name, target in entry_points.items():
        module_name, _, attribute = target.partition(":")
        plugin: object = _load_module(minimal_store, module_name)
        if attribute:
            plugin = getattr(plugin, attribute)
        assert hasattr(plugin, "autoconfig_cache_register_stores"), target
        registry.register(plugin, name=name)
    schemes = set(registry.stores) - set(PluginRegistry(load_entry_points=False).stores)
    assert schemes, "the entry point's plugin registers no scheme"
    async with AutoConfigCache.open(
        f"{sorted(schemes)[0]}://",
        cache_key=f"guide-{uuid.uuid4().hex}",
        encryption_key="k" * 32,
        registry=registry,
    ) as cache:
        env = Environment.from_json(environment_json("env1", version=3))
        assert await cache.upsert(env)
        assert (await cache.get_all()).snapshot.environments == {"env1": env}
