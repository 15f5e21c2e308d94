"""Building the service's sinks and their dispatcher from the configuration (docs/sinks.md).

``--output-file`` / ``AUTO_CONFIG_CACHE_OUTPUT_FILE`` and ``--exec`` / ``AUTO_CONFIG_CACHE_EXEC``
become the built-in sinks named ``output-file`` and ``exec``; every spec of
``AUTO_CONFIG_CACHE_SINKS`` / ``--sink`` is built by the plugin that registered its scheme. The
built-ins go through the same registry as plugin sinks, so they follow the same rules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import SETTINGS, Config, known_settings
from ..errors import ConfigurationError
from ..plugins import PluginRegistry, get_registry

if TYPE_CHECKING:
    from ..sinks.base import Sink
    from ..sinks.dispatcher import SinkDispatcher
    from ..sinks.ledger import DeliveryLedger

# The sinks' modules are imported once a sink is configured: a service without sinks never
# loads them (docs/operations.md, "Start-up").


def sinks_configured(config: Config) -> bool:
    """Whether ``config`` enables any sink (output file, exec hook or a sink spec)."""
    return bool(config.output_file or config.exec_program or config.sink_specs)


def withheld_variables(registry: PluginRegistry | None = None) -> frozenset[str]:
    """Every variable a hook must not inherit: each secret setting of the core and of the
    installed store plugins (with its aliases), and the built-in list."""
    from ..sinks.hook_payload import WITHHELD_VARIABLES

    names = set(WITHHELD_VARIABLES)
    for setting in known_settings(registry):
        if setting.secret:
            names.update((setting.env, *setting.aliases))
    return frozenset(names)


def build_sinks(config: Config, registry: PluginRegistry | None = None) -> list[Sink]:
    """The sinks ``config`` enables, in this order: output file, exec hook, then the specs.

    :raises ConfigurationError: for a spec no plugin can build, or two sinks with one name.
    """
    if not sinks_configured(config):
        return []
    from ..sinks.builtin import parse_exec_mode
    from ..sinks.exec import ExecSink
    from ..sinks.output_file import OutputFileSink
    from ..sinks.spec import SinkSpec

    registry = registry or get_registry()
    withheld = withheld_variables(registry)
    sinks: list[Sink] = []
    if config.output_file:
        sinks.append(OutputFileSink(config.output_file))
    if config.exec_program:
        mode = parse_exec_mode(config.exec_mode, SETTINGS["exec_mode"].name())
        argv = [config.exec_program, *config.exec_args]
        sinks.append(ExecSink(argv, mode=mode, withheld=withheld))
    for text in config.sink_specs:
        sinks.append(registry.build_sink(SinkSpec.parse(text, withheld=withheld)))
    names = [sink.name for sink in sinks]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ConfigurationError(
            f"two sinks are named {', '.join(twice)}; sink names key their deliveries, so "
            "give each spec of the same type its own name (…?name=second)"
        )
    return sinks


def build_dispatcher(
    config: Config, sinks: list[Sink], *, ledger: DeliveryLedger | None = None
) -> SinkDispatcher:
    """The dispatcher delivering to ``sinks`` with the configured concurrency, timeout and
    attempts; ``ledger`` says which changes are still due (default: all, as ldactl)."""
    from ..sinks.dispatcher import SinkDispatcher
    from ..sinks.retry import RetryPolicy

    return SinkDispatcher(
        sinks,
        concurrency=config.sink_concurrency,
        timeout=config.sink_timeout,
        retry=RetryPolicy(max_attempts=config.sink_max_attempts),
        ledger=ledger,
    )
