"""Plugin discovery: entry points, broken plugins, store schemes."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoconfig_cache.errors import UnknownStoreSchemeError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.store_spec import StoreSpec
from autoconfig_cache.stores.null import NullStore


@pytest.fixture
def installed_plugins(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path where tests install distributions with entry points."""
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [m for m in sys.modules if m.startswith("acc_test_")]:
        del sys.modules[name]


def install(site: Path, dist: str, module: str, source: str) -> None:
    """Install a one-module distribution registering ``module`` in group autoconfig_cache."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(f"[autoconfig_cache]\n{dist} = {module}\n")


def test_builtin_stores_register_memory_and_sqlite() -> None:
    registry = PluginRegistry(load_entry_points=False)
    assert {"memory", "sqlite"} <= set(registry.stores)
    assert registry.stores["memory"].plugin_name == "memory"
    assert registry.stores["sqlite"].plugin_name == "sqlite"


def test_entry_point_plugin_registers_a_scheme(installed_plugins: Path) -> None:
    install(
        installed_plugins,
        "acc-test-good",
        "acc_test_good",
        """
        from autoconfig_cache.hookspecs import hookimpl
        from autoconfig_cache.stores.null import NullStore

        @hookimpl
        def autoconfig_cache_register_stores(register):
            register(["goodstore"], lambda spec: NullStore())
        """,
    )
    registry = PluginRegistry()
    assert registry.stores["goodstore"].plugin_name == "acc-test-good"
    info = {i.name: i for i in registry.plugin_infos()}["acc-test-good"]
    assert info.version == "1.2.3"
    assert info.schemes == ("goodstore",)
    assert info.error is None
    assert isinstance(registry.open_store(StoreSpec("goodstore://x", "k")), NullStore)


def test_plugin_that_fails_to_import_is_reported_and_skipped(installed_plugins: Path) -> None:
    install(
        installed_plugins,
        "acc-test-broken",
        "acc_test_broken",
        "raise ImportError('needs a library that is not installed')\n",
    )
    registry = PluginRegistry()
    assert "acc-test-broken" in registry.load_errors
    assert "needs a library" in registry.load_errors["acc-test-broken"]
    info = {i.name: i for i in registry.plugin_infos()}["acc-test-broken"]
    assert info.error is not None and "ImportError" in info.error
    # The rest still works.
    assert "sqlite" in registry.stores


def test_plugin_whose_register_hook_raises_is_reported(installed_plugins: Path) -> None:
    install(
        installed_plugins,
        "acc-test-raises",
        "acc_test_raises",
        """
        from autoconfig_cache.hookspecs import hookimpl

        @hookimpl
        def autoconfig_cache_register_stores(register):
            raise RuntimeError("boom")
        """,
    )
    registry = PluginRegistry()
    assert "memory" in registry.stores
    assert "boom" in registry.load_errors["acc-test-raises"]


def test_unknown_scheme_names_installed_schemes_and_the_extra() -> None:
    registry = PluginRegistry(load_entry_points=False)
    with pytest.raises(UnknownStoreSchemeError) as caught:
        registry.open_store(StoreSpec("redis://:hunter2-password@localhost:6379", "k"))
    message = str(caught.value)
    assert "pip install 'autoconfig-cache[redis]'" in message
    assert "memory" in message and "sqlite" in message
    assert "hunter2" not in message


def test_unknown_scheme_without_a_known_extra_says_so() -> None:
    registry = PluginRegistry(load_entry_points=False)
    with pytest.raises(UnknownStoreSchemeError, match="registers this scheme"):
        registry.open_store(StoreSpec("cassandra://db", "k"))


def test_second_registration_of_a_scheme_is_reported_and_first_wins() -> None:
    class Duplicate:
        @hookimpl
        def autoconfig_cache_register_stores(self, register):  # type: ignore[no-untyped-def]
            register(["memory"], lambda spec: NullStore())

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Duplicate(), name="duplicate")
    assert registry.stores["memory"].plugin_name == "memory"
    assert any("already provided" in error for error in registry.registration_errors)


def test_hook_tracing_logs_hook_calls(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("AUTOCONFIG_CACHE_TRACE_HOOKS", "1")
    with caplog.at_level("DEBUG", logger="autoconfig_cache.hooks"):
        _ = PluginRegistry(load_entry_points=False).stores
    assert any("autoconfig_cache_register_stores" in r.getMessage() for r in caplog.records)


def test_discovery_does_not_import_the_store_clients() -> None:
    """Every process discovers every installed plugin; only the store it opens may cost imports."""
    import subprocess

    code = (
        "import sys\n"
        "from autoconfig_cache.plugins import get_registry\n"
        "stores = get_registry().stores\n"
        "assert {'redis', 'dynamodb', 'sqlite'} <= set(stores), sorted(stores)\n"
        "heavy = sorted(m for m in ('redis', 'pynamodb', 'botocore') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_entry_point_plugin_with_a_misspelt_hook_is_reported_and_skipped(
    installed_plugins: Path,
) -> None:
    install(
        installed_plugins,
        "acc-test-misspelt",
        "acc_test_misspelt",
        """
        from autoconfig_cache.plugin import hookimpl

        @hookimpl
        def autoconfig_cache_register_store(register):
            register(["misspelt"], lambda spec: None)
        """,
    )
    registry = PluginRegistry()
    error = registry.load_errors["acc-test-misspelt"]
    assert "UnknownHookError" in error
    assert "'autoconfig_cache_register_store'" in error
    assert "did you mean 'autoconfig_cache_register_stores'" in error
    assert registry.pm.get_plugin("acc-test-misspelt") is None
    assert "sqlite" in registry.stores


def test_plugin_infos_carry_each_scheme_description() -> None:
    class Described:
        @hookimpl
        def autoconfig_cache_register_stores(self, register):  # type: ignore[no-untyped-def]
            register(["alpha", "beta"], lambda spec: NullStore(), description="Greek store")

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Described(), name="described")
    info = {i.name: i for i in registry.plugin_infos()}["described"]
    assert info.descriptions == {"alpha": "Greek store", "beta": "Greek store"}
    assert info.to_json()["stores"] == [
        {"scheme": "alpha", "description": "Greek store"},
        {"scheme": "beta", "description": "Greek store"},
    ]
    assert info.hooks == ("autoconfig_cache_register_stores",)
    assert info.other_hooks == ()
