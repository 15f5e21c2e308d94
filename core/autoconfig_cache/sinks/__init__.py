"""Sinks: where AutoConfig changes go besides the cache (ldactl's ``--output-file`` and
``--exec``, and plugins).

The pieces, in the order a change meets them:

* :class:`ChangeTracker`, an AutoConfig handler, turns the stream manager's calls into
  :class:`Change` objects (``insert``, ``update``, ``delete``, ``initialized``; each marked as
  coming from the stream or the cache);
* :class:`SinkDispatcher` delivers each change to every :class:`Sink`: in order per
  environment, concurrently across environments, with a timeout, retries and backoff, never
  blocking the stream;
* the sinks: :class:`OutputFileSink` (every environment in one JSON file, ldactl's shape),
  :class:`ExecSink` (a program run per change, with ldactl's variables and JSON), and any a
  plugin provides.

Wiring::

    dispatcher = SinkDispatcher([OutputFileSink(path), ExecSink([program, *args])])
    tracker = ChangeTracker(dispatcher.submit)   # an AutoConfigHandler
    async with dispatcher:
        ...  # run the stream manager with the tracker among its handlers
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .atomic_file import write_file_atomically
    from .base import PermanentDeliveryError, Sink, is_per_instance
    from .change import Change, ChangeKind, ChangeSource
    from .dispatcher import DeliveryTimeoutError, SinkDispatcher
    from .exec import ExecMode, ExecSink, HookFailedError
    from .hook_payload import change_document, event_variables
    from .ldactl_json import environment_config
    from .ledger import DeliverAllLedger, DeliveryLedger
    from .output_file import OutputFileError, OutputFileSink, render_environments
    from .retry import RetryPolicy
    from .status import DispatcherStatus, SinkStatus
    from .tracker import ChangeCallback, ChangeTracker

#: Where each name of the package lives. The package imports a submodule only when one of its
#: names is first used: every process registers the built-in sinks (``sinks.builtin``), and one
#: that configures no sink should not pay for the dispatcher, the exec machinery and the output
#: file (``docs/operations.md``, "Start-up").
_EXPORTS = {
    "write_file_atomically": "atomic_file",
    "PermanentDeliveryError": "base",
    "Sink": "base",
    "is_per_instance": "base",
    "Change": "change",
    "ChangeKind": "change",
    "ChangeSource": "change",
    "DeliveryTimeoutError": "dispatcher",
    "SinkDispatcher": "dispatcher",
    "ExecMode": "exec",
    "ExecSink": "exec",
    "HookFailedError": "exec",
    "change_document": "hook_payload",
    "event_variables": "hook_payload",
    "environment_config": "ldactl_json",
    "DeliverAllLedger": "ledger",
    "DeliveryLedger": "ledger",
    "OutputFileError": "output_file",
    "OutputFileSink": "output_file",
    "render_environments": "output_file",
    "RetryPolicy": "retry",
    "DispatcherStatus": "status",
    "SinkStatus": "status",
    "ChangeCallback": "tracker",
    "ChangeTracker": "tracker",
}


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "Change",
    "ChangeCallback",
    "ChangeKind",
    "ChangeSource",
    "ChangeTracker",
    "DeliverAllLedger",
    "DeliveryLedger",
    "DeliveryTimeoutError",
    "DispatcherStatus",
    "ExecMode",
    "ExecSink",
    "HookFailedError",
    "OutputFileError",
    "OutputFileSink",
    "PermanentDeliveryError",
    "RetryPolicy",
    "Sink",
    "SinkDispatcher",
    "SinkStatus",
    "change_document",
    "environment_config",
    "event_variables",
    "is_per_instance",
    "render_environments",
    "write_file_atomically",
]
