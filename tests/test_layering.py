"""Layering: the library never imports the command line, and no module imports itself back.

docs/architecture.md ("Layers") describes the layers: the command line (``cli/``) on top, the
service, demo and stream below it, the cache, codec and stores at the bottom. Two checks:

* every ``import`` statement of the core and the plugins (module level or inside a function;
  imports under ``if TYPE_CHECKING:`` run only for the type checker and are left out), read
  from the source: nothing outside ``autoconfig_cache.cli`` names ``autoconfig_cache.cli``, and
  the graph of modules has no cycle;
* each module imports on its own in a fresh interpreter, so no import order hides a cycle that
  only shows at run time.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Source folders and the top-level packages they hold.
SOURCES = {
    ROOT / "core": "autoconfig_cache",
    ROOT / "plugins" / "redis_store": "autoconfig_cache_redis",
    ROOT / "plugins" / "dynamo_store": "autoconfig_cache_dynamodb",
}
CLI = "autoconfig_cache.cli"


def _module_files() -> dict[str, Path]:
    """Every module of the core and the plugins, by dotted name."""
    modules: dict[str, Path] = {}
    for folder, package in SOURCES.items():
        for path in sorted((folder / package).rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


MODULES = _module_files()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement that runs (anywhere but under ``if TYPE_CHECKING:``)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from _import_nodes(ast.Module(body=node.orelse, type_ignores=[]))
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        yield from _import_nodes(node)


def _resolve(module: str, path: Path, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement imports from."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def imports_of(module: str) -> set[str]:
    """The modules of the core and the plugins that ``module`` imports (most specific name)."""
    path = MODULES[module]
    found: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = _resolve(module, path, node)
            # `from . import hookspecs` imports the module `hookspecs`; `from .x import y` the
            # module `x` (y being one of its names).
            names = [f"{base}.{alias.name}" for alias in node.names]
            names = [name for name in names if name in MODULES] or [base]
        found.update(name for name in names if name in MODULES and name != module)
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_graph_is_read() -> None:
    """The checks below look at real edges (a parser bug would make them pass vacuously)."""
    assert "autoconfig_cache.errors" in GRAPH["autoconfig_cache.cache"]
    assert "autoconfig_cache.cli.cache_cmds" in GRAPH["autoconfig_cache.cli.main"]
    # A function-level import counts: `run` imports the service only when it runs.
    assert "autoconfig_cache.service.runner" in GRAPH["autoconfig_cache.cli.run_cmd"]


def test_nothing_outside_the_cli_imports_the_cli() -> None:
    offenders = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if not (module == CLI or module.startswith(CLI + "."))
        for target in targets
        if target == CLI or target.startswith(CLI + ".")
    )
    assert not offenders, "the library imports the command line: " + "; ".join(offenders)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle() -> None:
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_each_module_imports_alone(module: str) -> None:
    if module.endswith("__main__"):
        pytest.skip("running it is the command itself, covered by the CLI tests")
    result = subprocess.run(
        [sys.executable, "-c", f"import {module}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
