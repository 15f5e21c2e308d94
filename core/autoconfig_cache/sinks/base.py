"""The interface of a sink, for plugin authors.

A sink is told about every change of the AutoConfig configuration: every ``insert``,
``update`` and ``delete`` of an environment, and ``initialized`` once per complete
configuration (see :class:`~.change.Change`). The built-in sinks (the output file, the exec
hook) implement the same interface as a third-party one.

What the dispatcher (:class:`~.dispatcher.SinkDispatcher`) guarantees a sink:

* the changes of one environment arrive one at a time, in order; an ``initialized`` arrives
  after every change before it, and before every change after it;
* changes of different environments may arrive concurrently (up to the dispatcher's bound), so
  a sink that keeps shared state protects it (on the event loop, without awaiting in between,
  nothing more is needed);
* a :meth:`Sink.deliver` that raises, or runs past the timeout (it is then cancelled), is
  retried with backoff, up to a bounded number of attempts: make delivery idempotent;
* :meth:`Sink.close` is called once, when the service stops.

A minimal sink::

    class PrintingSink:
        name = "print"

        async def deliver(self, change: Change) -> None:
            print(change.describe())   # ids and versions only: keys are secrets

        async def close(self) -> None:
            pass

A sink never logs a key in clear (mask it with :func:`autoconfig_cache.secrets.mask`): the
dispatcher masks the keys it knows of in the errors it logs, but cannot see inside a sink.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .change import Change


@runtime_checkable
class Sink(Protocol):
    """Receives the changes of the AutoConfig configuration.

    Optional attribute ``per_instance`` (``bool``, default ``False``): ``True`` when what the
    sink does is local to this process (a file on this host). Such a sink gets every change in
    every instance, and the delivery ledger (which lets one instance of a fleet deliver a
    change for all) is not asked. Leave it ``False`` for a sink that updates a system shared by
    the fleet (a secret store, say).
    """

    @property
    def name(self) -> str:
        """A short, stable name: shown in logs and ``/status``, and the key under which
        deliveries are recorded (changing it makes a restart deliver everything again)."""
        ...

    async def deliver(self, change: Change) -> None:
        """Deliver one change. Return when it is done; raise to report a failure (the
        dispatcher logs it and retries), or raise :class:`PermanentDeliveryError` for a change
        that can never be delivered (it is dropped at once)."""
        ...

    async def close(self) -> None:
        """Release what the sink holds. Called once, after the last delivery."""
        ...


class PermanentDeliveryError(Exception):
    """Raised by :meth:`Sink.deliver` for a change no retry can deliver (the data cannot be
    expressed in the sink's output, say): the dispatcher drops it at once, with an error."""


def is_per_instance(sink: Sink) -> bool:
    """Whether ``sink`` delivers locally, in every instance (its ``per_instance`` attribute)."""
    return getattr(sink, "per_instance", False) is True
