"""``autoconfig-cache run``: the long-running service."""

from __future__ import annotations

import argparse
from typing import Any

import attrs

from ..config import EXEC_MODES, Config, check_sink_specs
from ..errors import ConfigurationError
from ..plugins import get_registry


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
) -> None:
    """Register the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        parents=[common],
        help="run the service: AutoConfig stream + cache + status server on PORT",
        description="Hold the AutoConfig configuration from the cache and the stream, keep the "
        "cache up to date, and serve /status, /healthz, /readyz and /metrics on PORT. "
        "Changes can also go to an output file, a program run per change, and plugin sinks "
        "(docs/sinks.md); the flags are ldactl's.",
    )
    add_sink_arguments(parser)
    add_once_arguments(parser)
    parser.set_defaults(func=run_service)


def add_once_arguments(parser: argparse.ArgumentParser) -> None:
    """``--once`` and its options (docs/operations.md, "One-off: run --once")."""
    once = parser.add_argument_group("one-off (docs/operations.md)")
    once.add_argument(
        "--once",
        action="store_true",
        help="print the current configuration (the output-file JSON, keys masked) and exit: "
        "from the stream, or from the cache when LaunchDarkly does not answer in time; with "
        "--output-file, write the file instead; exit 3 when neither has data",
    )
    once.add_argument(
        "--once-timeout",
        metavar="SECONDS",
        type=float,
        help="with --once: seconds to wait for the stream before answering from the cache "
        "(default: AUTO_CONFIG_CACHE_ONCE_TIMEOUT, 10)",
    )
    once.add_argument(
        "--include-secrets",
        action="store_true",
        help="with --once: print the SDK and mobile keys in clear",
    )
    once.add_argument(
        "--require-stream",
        action="store_true",
        help="with --once: exit 4 (printing nothing) when only the cache answered",
    )


def add_sink_arguments(parser: argparse.ArgumentParser) -> None:
    """ldactl's sink flags (tarqd/ldactl ``ldactl/src/main.rs``, ``Args``); each overrides its
    setting (docs/sinks.md)."""
    sinks = parser.add_argument_group("sinks (docs/sinks.md)")
    sinks.add_argument(
        "--output-file",
        metavar="FILE",
        help="keep FILE holding every environment as JSON, keys in clear (mode 0600, rewritten "
        "atomically); overrides AUTO_CONFIG_CACHE_OUTPUT_FILE / LDAC_OUTPUT_FILE",
    )
    sinks.add_argument(
        "--exec",
        metavar="PROGRAM",
        dest="exec_program",
        help="run PROGRAM (no shell) for every change, with LDAC_* variables; arguments go "
        "after --; overrides AUTO_CONFIG_CACHE_EXEC / LDAC_EXEC",
    )
    sinks.add_argument(
        "--exec-mode",
        choices=EXEC_MODES,
        help="env: LDAC_* variables only; change-json: also the change as JSON on stdin "
        "(default: env); overrides AUTO_CONFIG_CACHE_EXEC_MODE / LDAC_EXEC_MODE",
    )
    sinks.add_argument(
        "--sink",
        metavar="SPEC",
        action="append",
        dest="sink_specs",
        help="a plugin sink as TYPE:TARGET (e.g. directory:///var/lib/envs); repeatable; "
        "replaces AUTO_CONFIG_CACHE_SINKS",
    )
    # ldactl's `-- <EXEC_ARGS>...` (#[arg(last = true)]): everything after `--`.
    sinks.add_argument("exec_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def run_service(args: argparse.Namespace) -> int:
    """Run until SIGTERM or SIGINT; exit 0 after a clean shutdown.

    Logging is set up twice: first at INFO (or ``--log-level``) so that configuration warnings
    are seen, then at the level the configuration names.
    """
    import asyncio

    from ..service.runner import serve
    from .common import load_config, setup_logging

    setup_logging(getattr(args, "log_level", None) or "INFO", plain=True)
    config = apply_sink_arguments(load_config(args), args)
    setup_logging(getattr(args, "log_level", None) or config.log_level, plain=True)
    config.require_autoconfig_key()
    if getattr(args, "once", False):
        return _run_once(config, args)
    return asyncio.run(serve(config))


def _run_once(config: Config, args: argparse.Namespace) -> int:
    """``run --once`` (:mod:`autoconfig_cache.service.once`)."""
    from ..service.once import run_once

    timeout = args.once_timeout
    if timeout is not None and not 0 < timeout < float("inf"):
        raise ConfigurationError(
            f"--once-timeout must be a number of seconds more than 0, got {timeout:g}"
        )
    return run_once(
        config,
        include_secrets=args.include_secrets,
        require_stream=args.require_stream,
        timeout=timeout,
    )


def apply_sink_arguments(config: Config, args: argparse.Namespace) -> Config:
    """``config`` with the sink flags given on the command line in place of their settings.

    :raises ConfigurationError: for arguments not after ``--``, arguments without a program, or
        a ``--sink`` spec no installed plugin provides.
    """
    exec_args: list[str] = list(getattr(args, "exec_args", None) or [])
    if exec_args and exec_args[0] != "--":
        raise ConfigurationError(
            f"unexpected argument {exec_args[0]!r}; arguments for the --exec program go after "
            "--, e.g. run --exec /hooks/sync.sh -- --verbose"
        )
    exec_args = exec_args[1:]
    changes: dict[str, Any] = {}
    if args.output_file is not None:
        changes["output_file"] = args.output_file or None
    if args.exec_program is not None:
        changes["exec_program"] = args.exec_program or None
    if args.exec_mode is not None:
        changes["exec_mode"] = args.exec_mode
    if args.sink_specs is not None:
        specs = tuple(spec.strip() for spec in args.sink_specs if spec.strip())
        check_sink_specs(specs, get_registry(), "--sink")
        changes["sink_specs"] = specs
    if exec_args:
        changes["exec_args"] = tuple(exec_args)
    config = attrs.evolve(config, **changes)
    if config.exec_args and not config.exec_program:
        raise ConfigurationError(
            "arguments after -- are for the --exec program, but none is set; give --exec "
            "PROGRAM (or AUTO_CONFIG_CACHE_EXEC / LDAC_EXEC)"
        )
    return config
