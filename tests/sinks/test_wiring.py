"""Unit tests of the sink wiring: setting aliases, sink settings, sink specs, sink-type discovery
through the plugin hook, the service's sinks, and the fan-out handler."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache.cli.run_cmd import add_sink_arguments, apply_sink_arguments
from autoconfig_cache.config import Config
from autoconfig_cache.errors import ConfigurationError
from autoconfig_cache.hookspecs import hookimpl
from autoconfig_cache.models import Environment
from autoconfig_cache.plugins import PluginRegistry
from autoconfig_cache.service.sink_setup import build_sinks, withheld_variables
from autoconfig_cache.sinks import ExecMode, ExecSink, OutputFileSink
from autoconfig_cache.sinks.spec import SinkSpec, UnknownSinkTypeError
from autoconfig_cache.stream.handler import BaseHandler, FanOutHandler, call_handler
from tests.sinks.conftest import make_env
from tests.sinks.example_directory_sink import DirectorySink

KEY = "rel-0a1b2c3d-4e5f-6a7b-8c9d-0123456789ab"


def load(environ: Mapping[str, str], registry: PluginRegistry | None = None) -> Config:
    return Config.load(
        environ=environ, registry=registry or PluginRegistry(load_entry_points=False)
    )


class DirectoryPlugin:
    """A third-party plugin registering the example directory sink."""

    @hookimpl
    def autoconfig_cache_sink_types(self) -> dict[str, Any]:
        def directory(spec: SinkSpec) -> DirectorySink:
            """One file per environment."""
            return DirectorySink(spec.require_path("the directory"), name=spec.name("directory"))

        return {"directory": directory}


def registry_with(*plugins: object) -> PluginRegistry:
    registry = PluginRegistry(load_entry_points=False)
    for index, plugin in enumerate(plugins):
        registry.register(plugin, name=f"test-plugin-{index}")
    return registry


# -- aliases -----------------------------------------------------------------------------------


def test_ldactl_variables_are_read_when_ours_are_unset() -> None:
    config = load(
        {
            "LD_RELAY_AUTO_CONFIG_KEY": KEY,
            "LD_STREAM_URI": "https://stream.eu.launchdarkly.com/",
            "LDAC_OUTPUT_FILE": "/tmp/out.json",
            "LDAC_EXEC": "/hooks/sync.sh",
            "LDAC_EXEC_MODE": "change-json",
        }
    )
    assert config.autoconfig_key == KEY
    # ldactl's base URI with its trailing slash: the stream path is appended to it once.
    assert config.stream_uri == "https://stream.eu.launchdarkly.com"
    assert (config.output_file, config.exec_program, config.exec_mode) == (
        "/tmp/out.json",
        "/hooks/sync.sh",
        "change-json",
    )


def test_our_variable_and_its_alias_may_agree() -> None:
    assert load({"AUTO_CONFIG_KEY": KEY, "LD_RELAY_AUTO_CONFIG_KEY": KEY}).autoconfig_key == KEY


def test_our_variable_and_its_alias_disagreeing_is_an_error_naming_both_masked() -> None:
    other = KEY[:-4] + "ffff"
    with pytest.raises(ConfigurationError) as error:
        load({"AUTO_CONFIG_KEY": KEY, "LD_RELAY_AUTO_CONFIG_KEY": other})
    message = str(error.value)
    assert "AUTO_CONFIG_KEY" in message and "LD_RELAY_AUTO_CONFIG_KEY" in message
    assert KEY not in message and other not in message
    assert "****ffff" in message


def test_an_empty_alias_counts_as_unset() -> None:
    assert load({"AUTO_CONFIG_KEY": KEY, "LD_RELAY_AUTO_CONFIG_KEY": ""}).autoconfig_key == KEY


# -- sink settings -----------------------------------------------------------------------------


def test_sink_settings_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="AUTO_CONFIG_CACHE_EXEC_MODE"):
        load({"AUTO_CONFIG_CACHE_EXEC_MODE": "json"})
    with pytest.raises(ConfigurationError, match="AUTO_CONFIG_CACHE_SINK_TIMEOUT"):
        load({"AUTO_CONFIG_CACHE_SINK_TIMEOUT": "0"})
    with pytest.raises(ConfigurationError, match="AUTO_CONFIG_CACHE_SINK_MAX_ATTEMPTS"):
        load({"AUTO_CONFIG_CACHE_SINK_MAX_ATTEMPTS": "none"})
    config = load(
        {
            "AUTO_CONFIG_CACHE_SINK_TIMEOUT": "2.5",
            "AUTO_CONFIG_CACHE_SINK_CONCURRENCY": "3",
            "AUTO_CONFIG_CACHE_SINK_MAX_ATTEMPTS": "1",
        }
    )
    assert (config.sink_timeout, config.sink_concurrency, config.sink_max_attempts) == (2.5, 3, 1)


def test_an_unknown_sink_type_is_an_error_listing_the_installed_ones() -> None:
    with pytest.raises(ConfigurationError) as error:
        load({"AUTO_CONFIG_CACHE_SINKS": "output-file:///tmp/a.json, vault:///secret"})
    message = str(error.value)
    assert "AUTO_CONFIG_CACHE_SINKS" in message and "'vault'" in message
    assert "exec, file, output-file" in message


def test_sink_settings_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[sinks]\noutput_file = "/tmp/o.json"\nexec = "hook"\nexec_mode = "env"\n'
        'specs = ["file:///tmp/b.json?name=second"]\ntimeout = 4\n'
    )
    config = Config.load(
        config_file=path, environ={}, registry=PluginRegistry(load_entry_points=False)
    )
    assert config.output_file == "/tmp/o.json" and config.exec_program == "hook"
    assert config.sink_specs == ("file:///tmp/b.json?name=second",)
    assert config.sink_timeout == 4.0


# -- specs and discovery -----------------------------------------------------------------------


def test_spec_parsing() -> None:
    spec = SinkSpec.parse("exec:///usr/bin/hook?mode=change-json&arg=a&arg=b%20c&name=vault")
    assert (spec.scheme, spec.path, spec.option("mode"), spec.name("exec")) == (
        "exec",
        "/usr/bin/hook",
        "change-json",
        "vault",
    )
    assert spec.options("arg") == ("a", "b c")
    assert SinkSpec.parse("directory:envs").path == "envs"
    with pytest.raises(ConfigurationError, match="no scheme"):
        SinkSpec.parse("/var/lib/envs")


def test_builtin_sinks_are_built_through_the_hook() -> None:
    registry = PluginRegistry(load_entry_points=False)
    assert registry.sink_types["exec"].plugin_name == "sinks"
    sink = registry.build_sink(SinkSpec.parse("exec:hook?mode=change-json&arg=-v&name=x"))
    assert isinstance(sink, ExecSink)
    assert (sink.argv, sink.mode, sink.name) == (("hook", "-v"), ExecMode.CHANGE_JSON, "x")
    assert isinstance(registry.build_sink(SinkSpec.parse("file:out.json")), OutputFileSink)
    with pytest.raises(ConfigurationError, match="unknown option"):
        registry.build_sink(SinkSpec.parse("exec:hook?mdoe=env"))
    with pytest.raises(ConfigurationError, match="names no target"):
        registry.build_sink(SinkSpec.parse("output-file:"))


def test_a_third_party_sink_type_is_discovered_and_listed() -> None:
    registry = registry_with(DirectoryPlugin())
    sink = registry.build_sink(SinkSpec.parse("directory:///var/lib/envs"))
    assert isinstance(sink, DirectorySink) and sink.directory == Path("/var/lib/envs")
    info = next(i for i in registry.plugin_infos() if i.name == "test-plugin-0")
    assert info.sink_types == ("directory",)
    assert info.to_json()["sinkTypes"] == [
        {"scheme": "directory", "description": "One file per environment."}
    ]
    assert "autoconfig_cache_sink_types" not in info.other_hooks
    # A plugin that only registers sink types is not registered into caches.
    assert all(name != "test-plugin-0" for name, _ in registry.cache_plugins())


def test_unknown_sink_type_names_the_installed_ones() -> None:
    with pytest.raises(UnknownSinkTypeError) as error:
        registry_with(DirectoryPlugin()).build_sink(SinkSpec.parse("vault:///kv"))
    assert "directory, exec, file, output-file" in str(error.value)


def test_a_scheme_registered_twice_is_a_conflict_and_the_first_wins() -> None:
    class Again:
        @hookimpl
        def autoconfig_cache_sink_types(self) -> dict[str, Any]:
            return {"exec": lambda spec: DirectorySink("/x")}

    registry = registry_with(Again())
    assert registry.sink_types["exec"].plugin_name == "sinks"
    assert any("'exec'" in error for error in registry.registration_errors)


def test_a_bad_answer_is_the_plugins_error_and_the_others_still_work() -> None:
    class Broken:
        @hookimpl
        def autoconfig_cache_sink_types(self) -> object:
            return ["directory"]

    registry = registry_with(Broken(), DirectoryPlugin())
    assert "directory" in registry.sink_types
    assert "returned list" in registry.load_errors["test-plugin-0"]


def test_a_factory_returning_no_sink_is_a_contract_error() -> None:
    class NotASink:
        @hookimpl
        def autoconfig_cache_sink_types(self) -> dict[str, Any]:
            return {"nothing": lambda spec: object()}

    with pytest.raises(ConfigurationError, match="not a sink"):
        registry_with(NotASink()).build_sink(SinkSpec.parse("nothing:x"))


# -- the service's sinks -----------------------------------------------------------------------


def test_build_sinks_from_configuration_withholds_every_secret_setting() -> None:
    config = load(
        {
            "AUTO_CONFIG_CACHE_OUTPUT_FILE": "/tmp/o.json",
            "AUTO_CONFIG_CACHE_EXEC": "hook",
            "AUTO_CONFIG_CACHE_SINKS": "exec:other?name=second",
        }
    )
    sinks = build_sinks(config, PluginRegistry(load_entry_points=False))
    assert [sink.name for sink in sinks] == ["output-file", "exec", "second"]
    withheld = withheld_variables(PluginRegistry(load_entry_points=False))
    assert {"AUTO_CONFIG_KEY", "LD_RELAY_AUTO_CONFIG_KEY", "PROXY_AUTH_PASSWORD"} <= withheld
    for sink in sinks[1:]:
        assert isinstance(sink, ExecSink)
        environment = sink_environment(sink, {"AUTO_CONFIG_KEY": KEY, "PROXY_AUTH_PASSWORD": "p"})
        assert "AUTO_CONFIG_KEY" not in environment and "PROXY_AUTH_PASSWORD" not in environment


def sink_environment(sink: ExecSink, parent: dict[str, str]) -> dict[str, str]:
    from autoconfig_cache.sinks.hook_payload import child_environment
    from tests.sinks.conftest import insert

    return child_environment(parent, insert(make_env()), withheld=sink._withheld)


def test_two_sinks_with_one_name_are_refused() -> None:
    config = load({"AUTO_CONFIG_CACHE_EXEC": "hook", "AUTO_CONFIG_CACHE_SINKS": "exec:other"})
    with pytest.raises(ConfigurationError, match="two sinks are named exec"):
        build_sinks(config, PluginRegistry(load_entry_points=False))


def run_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_sink_arguments(parser)
    return parser.parse_args(argv)


def test_run_flags_override_their_settings() -> None:
    config = load({"LDAC_EXEC": "ldactl-hook", "AUTO_CONFIG_CACHE_SINKS": "file:a.json"})
    args = run_args("--exec", "mine", "--exec-mode", "change-json", "--sink", "file:b.json")
    config = apply_sink_arguments(config, args)
    assert (config.exec_program, config.exec_mode, config.sink_specs) == (
        "mine",
        "change-json",
        ("file:b.json",),
    )
    with_args = apply_sink_arguments(config, run_args("--output-file", "o.json", "--", "-v", "x"))
    assert with_args.exec_args == ("-v", "x") and with_args.output_file == "o.json"


def test_run_arguments_need_the_double_dash_and_a_program() -> None:
    config = load({})
    with pytest.raises(ConfigurationError, match="go after --"):
        apply_sink_arguments(config, run_args("stray"))
    with pytest.raises(ConfigurationError, match="none is set"):
        apply_sink_arguments(config, run_args("--", "x"))
    with pytest.raises(ConfigurationError, match="--sink"):
        apply_sink_arguments(config, run_args("--sink", "vault:x"))


# -- fan-out -----------------------------------------------------------------------------------


class Recording(BaseHandler):
    def __init__(self, log: list[str], label: str, *, fail: bool = False) -> None:
        self.log, self.label, self.fail = log, label, fail

    def on_environment_added(self, env: Environment) -> None:
        self.log.append(f"{self.label} {env.env_id}")
        if self.fail:
            raise RuntimeError("boom")


class AsyncRecording(BaseHandler):
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def on_environment_added(self, env: Environment) -> None:
        self.log.append(f"async {env.env_id}")


async def test_fan_out_calls_every_handler_in_order_despite_a_failing_one() -> None:
    log: list[str] = []
    env = make_env()
    handler = FanOutHandler(
        Recording(log, "a", fail=True), AsyncRecording(log), Recording(log, "b")
    )
    await call_handler(handler.on_environment_added, env)
    assert sorted(log) == sorted([f"a {env.env_id}", f"async {env.env_id}", f"b {env.env_id}"])
    sync_only = FanOutHandler(Recording(log, "c"))
    assert sync_only.on_environment_added(env) is None  # no coroutine for synchronous handlers
