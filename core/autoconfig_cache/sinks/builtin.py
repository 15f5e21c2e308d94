"""The built-in sink types, registered through the same hook as a third-party plugin's.

* ``output-file:PATH`` (also ``file:PATH``): :class:`~.output_file.OutputFileSink`, ldactl's
  ``--output-file``. Options: ``name``.
* ``exec:PROGRAM``: :class:`~.exec.ExecSink`, ldactl's ``--exec``. Options: ``mode`` (``env``,
  default, or ``change-json``), ``arg`` (repeatable: the program's arguments, in order),
  ``per_instance`` (``true``: every instance of a fleet runs it, for a hook that writes a local
  file), ``name``.

``run --output-file`` and ``run --exec`` (and their settings) build the same sinks, named
``output-file`` and ``exec``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..hookspecs import hookimpl

if TYPE_CHECKING:
    from .exec import ExecMode, ExecSink
    from .output_file import OutputFileSink
    from .spec import SinkFactory, SinkSpec

# Every process registers these sink types; the sinks themselves are imported by their factory,
# so a process that configures none never loads them (docs/operations.md, "Start-up").


def parse_exec_mode(text: str, where: str) -> ExecMode:
    """``env`` or ``change-json`` (any case) as an :class:`ExecMode`.

    :param where: the setting or spec it came from, for the error.
    :raises ConfigurationError: for any other value.
    """
    from .exec import ExecMode

    try:
        return ExecMode(text.strip().lower())
    except ValueError:
        raise ConfigurationError(
            f"{where} must be 'env' (LDAC_* variables) or 'change-json' (the variables, and the "
            f"change as JSON on stdin), got {text!r}"
        ) from None


def output_file_sink(spec: SinkSpec) -> OutputFileSink:
    """Every environment in one JSON file, ldactl's --output-file (mode 0600, atomic)."""
    from .output_file import OutputFileSink

    spec.check_options(())
    return OutputFileSink(spec.require_path("the file to write"), name=spec.name("output-file"))


def exec_sink(spec: SinkSpec) -> ExecSink:
    """A program run per change with ldactl's LDAC_* variables (or JSON on stdin)."""
    from .exec import ExecMode, ExecSink
    from .hook_payload import WITHHELD_VARIABLES

    spec.check_options(("mode", "arg", "per_instance"))
    mode_text = spec.option("mode")
    mode = ExecMode.ENV if mode_text is None else parse_exec_mode(mode_text, spec.redacted)
    program = spec.require_path("the program to run")
    return ExecSink(
        [program, *spec.options("arg")],
        mode=mode,
        name=spec.name("exec"),
        per_instance=spec.flag("per_instance"),
        # Our secrets never reach a hook, whatever the spec's builder passed.
        withheld=WITHHELD_VARIABLES | spec.withheld,
    )


@hookimpl
def autoconfig_cache_sink_types() -> Mapping[str, SinkFactory]:
    """The built-in sink types."""
    return {"output-file": output_file_sink, "file": output_file_sink, "exec": exec_sink}
