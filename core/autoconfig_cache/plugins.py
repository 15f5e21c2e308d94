"""The global plugin manager and a typed facade over it.

Plugins are found through the ``autoconfig_cache`` entry-point group. A plugin that fails to
import is recorded (name and error, shown by ``autoconfig-cache plugins``) and skipped; it never
takes the process down. The built-in stores register through the very same hook as third-party
plugins do.

Set ``AUTOCONFIG_CACHE_TRACE_HOOKS=1`` to log every hook call at DEBUG level.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

import attrs
import pluggy

from . import distributions, hookspecs
from .environment import EnvironmentStore
from .errors import (
    ConfigurationError,
    PluginContractError,
    StoreConflictError,
    StoreContractError,
    UnknownHookError,
    UnknownStoreSchemeError,
)
from .hookspecs import StoreFactory
from .project import installed_version
from .store_spec import StoreSpec
from .storebase import StoreBase

if TYPE_CHECKING:
    # At run time these are imported where used: the sinks package imports logging set-up,
    # which imports this module.
    from .sinks.base import Sink
    from .sinks.spec import SinkFactory, SinkSpec

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

#: Built-in plugins, by module and the name they are registered under.
_BUILTIN_PLUGINS = (
    ("autoconfig_cache.stores.memory", "memory"),
    ("autoconfig_cache.stores.sqlite", "sqlite"),
    ("autoconfig_cache.sinks.builtin", "sinks"),
)


#: The store operation hooks. Only the cache's store answers them; other plugins may wrap them.
STORE_HOOKS = (
    "cache_get_all",
    "cache_get_versions",
    "cache_set_all",
    "cache_upsert",
    "cache_delete",
    "cache_clear",
    "cache_create_storage",
    "cache_close",
)
#: Store hooks a store may omit: ``cache_create_storage`` (a store with nothing to create omits
#: it or, as ``StoreBase`` does, returns ``False``) and ``cache_get_versions`` (the store audit
#: then reads ``cache_get_all``).
OPTIONAL_STORE_HOOKS = ("cache_create_storage", "cache_get_versions")
#: The store hooks every store implements.
REQUIRED_STORE_HOOKS = tuple(hook for hook in STORE_HOOKS if hook not in OPTIONAL_STORE_HOOKS)


def check_pending(pm: pluggy.PluginManager) -> None:
    """Fail on any hook implementation that no specification names (a misspelt hook).

    pluggy's own ``check_pending`` with an error that names the plugin, the hook and the
    specified hook it most resembles.

    :raises UnknownHookError: for the first such implementation.
    """
    callers: dict[str, pluggy.HookCaller] = {
        name: caller for name, caller in vars(pm.hook).items() if not name.startswith("_")
    }
    specified = [name for name, caller in callers.items() if caller.has_spec()]
    for name, caller in sorted(callers.items()):
        if caller.has_spec():
            continue
        for impl in caller.get_hookimpls():
            if impl.optionalhook:
                continue
            import difflib  # only on this error path: no start-up pays for it

            close = difflib.get_close_matches(name, specified, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownHookError(
                f"plugin {impl.plugin_name!r} implements {name!r}, which is not a hook of "
                f"autoconfig-cache{hint} (mark an intentionally unspecified hook "
                "@hookimpl(optionalhook=True))",
                plugin=impl.plugin_name,
            )


def check_no_store_answers(pm: pluggy.PluginManager, *, store_name: str | None = None) -> None:
    """Fail when a plugin other than ``store_name`` answers a store hook.

    Observers may wrap a store hook (``@hookimpl(wrapper=True)``); an ordinary implementation
    would answer in place of the cache's store (pluggy calls the last registered first).

    :raises StoreConflictError: naming the plugin and the hooks it answers.
    """
    for plugin_name, plugin in pm.list_name_plugin():
        if plugin_name == store_name:
            continue
        answered = [
            impl.function.__name__
            for caller in pm.get_hookcallers(plugin) or []
            if caller.name in STORE_HOOKS
            for impl in caller.get_hookimpls()
            if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper)
        ]
        if answered:
            raise StoreConflictError(
                f"plugin {plugin_name!r} implements the store hook(s) {', '.join(answered)}; "
                "only the cache's store answers them. Register a store through "
                "autoconfig_cache_register_stores, or make these hooks wrappers "
                "(@hookimpl(wrapper=True)) to observe the store's calls",
                plugin=plugin_name,
            )


_warned_legacy: set[type] = set()

#: Reads ``@hookimpl`` markers for :func:`check_store` (pluggy's own parsing, which resolves
#: descriptors statically); nothing is ever registered into it.
_MARKER_PARSER = pluggy.PluginManager(hookspecs.PROJECT_NAME)


def check_store(store: object) -> None:
    """Check a store object before it is registered into a cache's plugin manager.

    A method named like a store hook must carry ``@hookimpl`` (pluggy would silently ignore
    it), and every required store hook must be there. A store that is not a
    :class:`~autoconfig_cache.storebase.StoreBase` (written for autoconfig-cache 0.1) still
    works, with a :class:`DeprecationWarning` once per class.

    :raises StoreContractError: naming the class and the hooks.
    """
    cls = type(store)
    class_name = f"{cls.__module__}.{cls.__qualname__}"
    unmarked: list[str] = []
    marked: list[str] = []
    for hook in STORE_HOOKS:
        if not callable(getattr(store, hook, None)):
            continue
        if _MARKER_PARSER.parse_hookimpl_opts(store, hook) is None:
            unmarked.append(hook)
        else:
            marked.append(hook)
    if unmarked:
        raise StoreContractError(
            f"store {class_name} has method(s) {', '.join(unmarked)} without @hookimpl, so "
            "they would never be called; decorate each with "
            "@hookimpl (from autoconfig_cache.plugin)",
            plugin=class_name,
        )
    missing = [hook for hook in REQUIRED_STORE_HOOKS if hook not in marked]
    if missing:
        raise StoreContractError(
            f"store {class_name} does not implement the required store hook(s) "
            f"{', '.join(missing)}; subclass autoconfig_cache.plugin.StoreBase (which provides "
            "cache_close) and implement each with @hookimpl",
            plugin=class_name,
        )
    if not isinstance(store, StoreBase) and cls not in _warned_legacy:
        _warned_legacy.add(cls)
        warnings.warn(
            f"store {class_name} is not a StoreBase; stores written for autoconfig-cache 0.1 "
            "keep working, but subclass autoconfig_cache.plugin.StoreBase (operations tracked "
            "and cancelled on close, typed against the Store protocol)",
            DeprecationWarning,
            stacklevel=3,
        )


@attrs.frozen
class StoreRegistration:
    """A store factory registered under one scheme."""

    scheme: str
    factory: StoreFactory
    plugin_name: str
    description: str = ""


@attrs.frozen
class SinkTypeRegistration:
    """A sink factory registered under one scheme."""

    scheme: str
    factory: SinkFactory
    plugin_name: str
    description: str = ""


class _Registered(Protocol):
    """What discovery needs of a registration: its scheme and the plugin that made it."""

    @property
    def scheme(self) -> str: ...

    @property
    def plugin_name(self) -> str: ...


_Registration = TypeVar("_Registration", bound=_Registered)
#: Keeps one registration (or records the conflict).
_Keep = Callable[[_Registration], None]
#: Asks one plugin, through the hook caller, for its registrations, handing each to ``keep``.
_Ask = Callable[[pluggy.HookCaller, str, _Keep[_Registration]], None]


@attrs.frozen
class PluginInfo:
    """What ``autoconfig-cache plugins`` shows about one plugin."""

    name: str
    version: str | None
    schemes: tuple[str, ...]
    hooks: tuple[str, ...]
    error: str | None = None
    #: The ``description=`` each scheme was registered with (``""`` when none was given).
    descriptions: Mapping[str, str] = attrs.field(factory=dict)
    #: The sink types it registers (``autoconfig_cache_sink_types``), and their descriptions.
    sink_types: tuple[str, ...] = ()
    sink_descriptions: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def other_hooks(self) -> tuple[str, ...]:
        """The hooks besides store and sink registration (which :attr:`schemes` and
        :attr:`sink_types` already show)."""
        return tuple(hook for hook in self.hooks if hook not in _SHOWN_HOOKS)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict of this plugin's details."""
        return {
            "name": self.name,
            "version": self.version,
            "schemes": list(self.schemes),
            "stores": [
                {"scheme": scheme, "description": self.descriptions.get(scheme, "")}
                for scheme in self.schemes
            ],
            "sinkTypes": [
                {"scheme": scheme, "description": self.sink_descriptions.get(scheme, "")}
                for scheme in self.sink_types
            ],
            "hooks": list(self.hooks),
            "error": self.error,
        }


class PluginRegistry:
    """The global plugin manager: discovery hooks, store schemes, load errors."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        # Where each plugin's version is read from, when `plugins` lists them: reading it means
        # parsing the distribution's metadata, which a service start has no use for.
        self._version_sources: dict[str, Callable[[], str | None]] = {}
        self.load_errors: dict[str, str] = {}
        self.registration_errors: list[str] = []
        self._stores: dict[str, StoreRegistration] | None = None
        self._sink_types: dict[str, SinkTypeRegistration] | None = None
        if os.environ.get("AUTOCONFIG_CACHE_TRACE_HOOKS"):
            trace_logger = logging.getLogger("autoconfig_cache.hooks")
            self.pm.trace.root.setwriter(lambda message: trace_logger.debug("%s", message.rstrip()))
            self.pm.enable_tracing()
        for module_name, name in _BUILTIN_PLUGINS:
            module = importlib.import_module(module_name)
            self.pm.register(module, name=name)
            self._version_sources[name] = installed_version
        self._validate()
        if load_entry_points:
            self._load_entry_points()

    def _load_entry_points(self) -> None:
        for entry_point in distributions.entry_points(hookspecs.ENTRY_POINT_GROUP):
            name = entry_point.name
            if self.pm.get_plugin(name) is not None or self.pm.is_blocked(name):
                continue
            self._version_sources[name] = entry_point.version
            try:
                plugin = entry_point.load()
                self.pm.register(plugin, name=name)
                self._validate(name)
            except Exception as exc:  # a broken plugin must never take the process down
                message = f"{type(exc).__name__}: {exc}"
                self.load_errors[name] = message
                logger.warning("plugin %r failed to load and is skipped: %s", name, message)

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register a plugin object directly (tests, embedding applications).

        :raises PluginContractError: when it implements a hook that does not exist
            (:class:`~autoconfig_cache.errors.UnknownHookError`) or answers a store hook
            (:class:`~autoconfig_cache.errors.StoreConflictError`); it is not registered then.
        """
        registered = self.pm.register(plugin, name=name)
        self._validate(registered)
        self._stores = None
        self._sink_types = None

    def _validate(self, name: str | None = None) -> None:
        """Check the plugin manager after registering ``name``; unregister it if it is bad.

        Stores are built by factories and registered into each cache, never here, so no
        plugin of the global manager may answer a store hook.
        """
        try:
            check_pending(self.pm)
            check_no_store_answers(self.pm)
        except Exception:
            if name is not None:
                self.pm.unregister(name=name)
            raise

    @property
    def stores(self) -> dict[str, StoreRegistration]:
        """Every registered scheme and its factory (discovery runs on first use)."""
        if self._stores is None:
            self._stores = self._discover_stores()
        return self._stores

    def _discover_stores(self) -> dict[str, StoreRegistration]:
        def ask(
            caller: pluggy.HookCaller, plugin_name: str, keep: _Keep[StoreRegistration]
        ) -> None:
            def register(
                schemes: Sequence[str], factory: StoreFactory, *, description: str = ""
            ) -> None:
                for scheme in schemes:
                    keep(StoreRegistration(scheme.lower(), factory, plugin_name, description))

            caller(register=register)

        return self._discover("autoconfig_cache_register_stores", "scheme", "stores", ask)

    @property
    def sink_types(self) -> dict[str, SinkTypeRegistration]:
        """Every registered sink type and its factory (discovery runs on first use)."""
        if self._sink_types is None:
            self._sink_types = self._discover_sink_types()
        return self._sink_types

    def _discover_sink_types(self) -> dict[str, SinkTypeRegistration]:
        def ask(
            caller: pluggy.HookCaller, plugin_name: str, keep: _Keep[SinkTypeRegistration]
        ) -> None:
            for result in caller():
                for scheme, factory in _sink_type_items(result):
                    keep(
                        SinkTypeRegistration(
                            scheme, factory, plugin_name, _first_line(factory.__doc__)
                        )
                    )

        return self._discover("autoconfig_cache_sink_types", "sink type", "sink types", ask)

    def _discover(
        self, hook_name: str, noun: str, plural: str, ask: _Ask[_Registration]
    ) -> dict[str, _Registration]:
        """Ask each plugin implementing ``hook_name`` in turn for its registrations.

        One plugin at a time so that each registration is attributed to its plugin and a plugin
        that fails (recorded in :attr:`load_errors`) loses only its own; the first registration
        of a scheme wins, a later one is recorded in :attr:`registration_errors`.

        :param noun: what a scheme is called in the conflict message (``"sink type"``).
        :param plural: what the plugin failed to register, in the warning (``"stores"``).
        :param ask: calls the plugin's hook through the caller it is given, handing each
            registration to ``keep``.
        """
        found: dict[str, _Registration] = {}

        def keep(registration: _Registration) -> None:
            scheme = registration.scheme
            if scheme in found:
                message = (
                    f"{noun} {scheme!r} registered by {registration.plugin_name!r} is already "
                    f"provided by {found[scheme].plugin_name!r}; keeping the first"
                )
                self.registration_errors.append(message)
                logger.warning("%s", message)
                return
            found[scheme] = registration

        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name
            # Through the hook (not impl.function) so that tracing and monitoring see the call.
            others = [p for p in self.pm.get_plugins() if p is not impl.plugin]
            caller = self.pm.subset_hook_caller(hook_name, others)
            try:
                ask(caller, plugin_name, keep)
            except Exception as exc:
                message = f"{type(exc).__name__}: {exc}"
                self.load_errors[plugin_name] = message
                logger.warning(
                    "plugin %r failed to register its %s: %s", plugin_name, plural, message
                )
        return found

    def build_sink(self, spec: SinkSpec) -> Sink:
        """Build the sink ``spec`` describes with the factory registered for its scheme.

        :raises UnknownSinkTypeError: when no plugin registered the scheme (naming those that
            are installed).
        :raises ConfigurationError: when the factory refuses the spec, fails, or returns
            something that is not a sink (naming the plugin).
        """
        from .sinks.base import Sink
        from .sinks.spec import UnknownSinkTypeError

        registration = self.sink_types.get(spec.scheme)
        if registration is None:
            raise UnknownSinkTypeError(spec.scheme, self.sink_types)
        try:
            sink = registration.factory(spec)
        except ConfigurationError:
            raise
        except Exception as exc:
            raise ConfigurationError(
                f"sink spec {spec.redacted!r}: the {spec.scheme!r} sink of plugin "
                f"{registration.plugin_name!r} could not be built: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(sink, Sink) or not isinstance(getattr(sink, "name", None), str):
            raise PluginContractError(
                f"plugin {registration.plugin_name!r}: the factory of sink type "
                f"{spec.scheme!r} returned {type(sink).__name__}, which is not a sink (it needs "
                "a name, and async deliver(change) and close())",
                plugin=registration.plugin_name,
            )
        return sink

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
        descriptions: dict[str, dict[str, str]] = {}
        for registration in self.stores.values():
            schemes_by_plugin.setdefault(registration.plugin_name, []).append(registration.scheme)
            descriptions.setdefault(registration.plugin_name, {})[registration.scheme] = (
                registration.description
            )
        infos: list[PluginInfo] = []
        sinks_by_plugin: dict[str, dict[str, str]] = {}
        for sink_type in self.sink_types.values():
            sinks_by_plugin.setdefault(sink_type.plugin_name, {})[sink_type.scheme] = (
                sink_type.description
            )
        for name, plugin in self.pm.list_name_plugin():
            hook_names = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
            sinks = sinks_by_plugin.get(name, {})
            infos.append(
                PluginInfo(
                    name=name,
                    version=self._version(name),
                    schemes=tuple(sorted(schemes_by_plugin.get(name, []))),
                    hooks=tuple(hook_names),
                    error=self.load_errors.get(name),
                    descriptions=descriptions.get(name, {}),
                    sink_types=tuple(sorted(sinks)),
                    sink_descriptions=sinks,
                )
            )
        for name, error in self.load_errors.items():
            if self.pm.get_plugin(name) is None:
                infos.append(PluginInfo(name, self._version(name), (), (), error))
        return sorted(infos, key=lambda info: info.name)

    def _version(self, name: str) -> str | None:
        """The version of the distribution that provides plugin ``name`` (``None``: unknown)."""
        return self._version_sources.get(name, _no_version)()

    def cache_plugins(self) -> list[tuple[str, object]]:
        """``(name, plugin)`` of every plugin a cache must register too: those implementing any
        hook besides store discovery (encryption, migration, observers, store-call wrappers)."""
        return [
            (name, plugin)
            for name, plugin in self.pm.list_name_plugin()
            if any(
                caller.name not in _DISCOVERY_HOOKS
                for caller in self.pm.get_hookcallers(plugin) or []
            )
        ]

    def environment_stores(self) -> list[EnvironmentStore]:
        """The Relay-style settings every plugin declares (``autoconfig_cache_environment_store``)."""
        results = self.pm.hook.autoconfig_cache_environment_store()
        # Sorted so that messages naming several switches do not depend on load order.
        return sorted(
            (result for result in results if result is not None), key=lambda s: s.switch.env
        )

    def noisy_loggers(self) -> list[str]:
        """The logger names plugins ask to quiet (``autoconfig_cache_noisy_loggers``)."""
        return sorted(
            {
                name
                for names in self.pm.hook.autoconfig_cache_noisy_loggers()
                for name in names or ()
            }
        )


#: Hooks called on the global plugin manager only: a plugin implementing nothing else is not
#: registered into caches.
_DISCOVERY_HOOKS = frozenset(
    {
        "autoconfig_cache_register_stores",
        "autoconfig_cache_environment_store",
        "autoconfig_cache_noisy_loggers",
        "autoconfig_cache_sink_types",
    }
)
#: Hooks whose registrations ``autoconfig-cache plugins`` shows in their own columns.
_SHOWN_HOOKS = frozenset({"autoconfig_cache_register_stores", "autoconfig_cache_sink_types"})


def _sink_type_items(result: object) -> list[tuple[str, SinkFactory]]:
    """The ``(scheme, factory)`` pairs of one plugin's answer, checked.

    :raises PluginContractError: (caught by discovery, recorded as the plugin's error) when the
        answer is not a mapping of non-empty scheme names to callables.
    """
    if result is None:
        return []
    if not isinstance(result, Mapping):
        raise TypeError(
            f"autoconfig_cache_sink_types returned {type(result).__name__}; return a dict "
            "{scheme: factory}"
        )
    items: list[tuple[str, SinkFactory]] = []
    for scheme, factory in result.items():
        if not isinstance(scheme, str) or not scheme or not callable(factory):
            raise TypeError(
                f"autoconfig_cache_sink_types returned the entry {scheme!r}: {factory!r}; "
                "each key must be a scheme name and each value a factory(spec) -> Sink"
            )
        items.append((scheme.lower(), factory))
    return items


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n", 1)[0].strip()


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


def _no_version() -> str | None:
    """The version of a plugin whose distribution is unknown (registered by hand)."""
    return None
