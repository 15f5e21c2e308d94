"""The global plugin manager and a typed facade over it.

Plugins are found through the ``autoconfig_cache`` entry-point group. A plugin that fails to
import is recorded (name and error, shown by ``autoconfig-cache plugins``) and skipped; it never
takes the process down. The built-in stores register through the very same hook as third-party
plugins do.

Set ``AUTOCONFIG_CACHE_TRACE_HOOKS=1`` to log every hook call at DEBUG level.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from collections.abc import Callable, Sequence

import attrs
import pluggy

from . import hookspecs
from .errors import ConfigurationError, UnknownStoreSchemeError
from .store_spec import StoreSpec

logger = logging.getLogger(__name__)

#: Which extra of ``autoconfig-cache`` provides a scheme that is not installed.
KNOWN_EXTRAS: dict[str, str] = {
    "redis": "redis",
    "rediss": "redis",
    "valkey": "redis",
    "valkeys": "redis",
    "redis+cluster": "redis",
    "rediss+cluster": "redis",
    "redis+sentinel": "redis",
    "rediss+sentinel": "redis",
    "dynamodb": "dynamodb",
}

_BUILTIN_PLUGINS = (
    "autoconfig_cache.stores.memory",
    "autoconfig_cache.stores.sqlite",
)


@attrs.frozen
class StoreRegistration:
    """A store factory registered under one scheme."""

    scheme: str
    factory: Callable[[StoreSpec], object]
    plugin_name: str
    description: str = ""


@attrs.frozen
class PluginInfo:
    """What ``autoconfig-cache plugins`` shows about one plugin."""

    name: str
    version: str | None
    schemes: tuple[str, ...]
    hooks: tuple[str, ...]
    error: str | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of this plugin's details."""
        return {
            "name": self.name,
            "version": self.version,
            "schemes": list(self.schemes),
            "hooks": list(self.hooks),
            "error": self.error,
        }


class PluginRegistry:
    """The global plugin manager: discovery hooks, store schemes, load errors."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._versions: dict[str, str | None] = {}
        self.load_errors: dict[str, str] = {}
        self.registration_errors: list[str] = []
        self._stores: dict[str, StoreRegistration] | None = None
        if os.environ.get("AUTOCONFIG_CACHE_TRACE_HOOKS"):
            trace_logger = logging.getLogger("autoconfig_cache.hooks")
            self.pm.trace.root.setwriter(lambda message: trace_logger.debug("%s", message.rstrip()))
            self.pm.enable_tracing()
        for module_name in _BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            name = module_name.rsplit(".", 1)[-1]
            self.pm.register(module, name=name)
            self._versions[name] = _own_version()
        if load_entry_points:
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        for entry_point in importlib.metadata.entry_points(group=hookspecs.ENTRY_POINT_GROUP):
            name = entry_point.name
            if self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
                continue
            version = entry_point.dist.version if entry_point.dist else None
            self._versions[name] = version
            try:
                plugin = entry_point.load()
                self.pm.register(plugin, name=name)
            except Exception as exc:  # a broken plugin must never take the process down
                message = f"{type(exc).__name__}: {exc}"
                self.load_errors[name] = message
                logger.warning("plugin %r failed to load and is skipped: %s", name, message)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications)."""
        self.pm.register(plugin, name=name)
        self._stores = None

    @property
    def stores(self) -> dict[str, StoreRegistration]:
        """Every registered scheme and its factory (discovery runs on first use)."""
        if self._stores is None:
            self._stores = self._discover_stores()
        return self._stores

    def _discover_stores(self) -> dict[str, StoreRegistration]:
        stores: dict[str, StoreRegistration] = {}
        for impl in self.pm.hook.autoconfig_cache_register_stores.get_hookimpls():
            plugin_name = impl.plugin_name

            def register(
                schemes: Sequence[str],
                factory: Callable[[StoreSpec], object],
                *,
                description: str = "",
                _plugin: str = plugin_name,
            ) -> None:
                for scheme in schemes:
                    scheme = scheme.lower()
                    if scheme in stores:
                        message = (
                            f"scheme {scheme!r} registered by {_plugin!r} is already provided "
                            f"by {stores[scheme].plugin_name!r}; keeping the first"
                        )
                        self.registration_errors.append(message)
                        logger.warning("%s", message)
                        continue
                    stores[scheme] = StoreRegistration(scheme, factory, _plugin, description)

            # Through the hook (not impl.function) so that tracing and monitoring see the call;
            # one plugin at a time so that each registration is attributed to its plugin.
            others = [p for p in self.pm.get_plugins() if p is not impl.plugin]
            caller = self.pm.subset_hook_caller("autoconfig_cache_register_stores", others)
            try:
                caller(register=register)
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                self.load_errors[plugin_name] = message
                logger.warning("plugin %r failed to register its stores: %s", plugin_name, message)
        return stores

    def open_store(self, spec: StoreSpec) -> object:
        """Build the store plugin object for ``spec.url``.

        :raises UnknownStoreSchemeError: naming the installed schemes and the extra to install.
        """
        scheme = spec.scheme
        if not scheme:
            raise ConfigurationError(
                f"store URL {spec.redacted_url!r} has no scheme; use e.g. sqlite:///path/cache.db"
            )
        registration = self.stores.get(scheme)
        if registration is None:
            raise UnknownStoreSchemeError(scheme, list(self.stores), KNOWN_EXTRAS.get(scheme))
        return registration.factory(spec)

    def plugin_infos(self) -> list[PluginInfo]:
        """Details of every plugin, loaded or failed, for ``autoconfig-cache plugins``."""
        schemes_by_plugin: dict[str, list[str]] = {}
        for registration in self.stores.values():
            schemes_by_plugin.setdefault(registration.plugin_name, []).append(registration.scheme)
        infos: list[PluginInfo] = []
        for name, plugin in self.pm.list_name_plugin():
            hook_names = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
            infos.append(
                PluginInfo(
                    name=name,
                    version=self._versions.get(name),
                    schemes=tuple(sorted(schemes_by_plugin.get(name, []))),
                    hooks=tuple(hook_names),
                    error=self.load_errors.get(name),
                )
            )
        for name, error in self.load_errors.items():
            if self.pm.get_plugin(name) is None:
                infos.append(PluginInfo(name, self._versions.get(name), (), (), error))
        return sorted(infos, key=lambda info: info.name)

    def cache_plugins(self) -> list[tuple[str, object]]:
        """``(name, plugin)`` of every plugin a cache must register too: those implementing any
        hook besides store discovery (encryption, migration, observers, store-call wrappers)."""
        return [
            (name, plugin)
            for name, plugin in self.pm.list_name_plugin()
            if any(
                caller.name != "autoconfig_cache_register_stores"
                for caller in self.pm.get_hookcallers(plugin) or []
            )
        ]


def _own_version() -> str | None:
    try:
        return importlib.metadata.version("autoconfig-cache")
    except importlib.metadata.PackageNotFoundError:
        return None


_registry: PluginRegistry | None = None
_registry_lock = threading.Lock()


def get_registry() -> PluginRegistry:
    """The process-wide plugin registry, created (and entry points loaded) on first use."""
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = PluginRegistry()
        return _registry


def reset_registry() -> None:
    """Forget the process-wide registry so the next use reloads plugins (for tests)."""
    global _registry
    with _registry_lock:
        _registry = None
