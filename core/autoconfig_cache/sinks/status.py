"""The dispatcher's counters, for ``/status`` and ``/metrics``."""

from __future__ import annotations

from typing import Any

import attrs


@attrs.frozen
class SinkStatus:
    """One sink's deliveries since the start.

    :param name: the sink's name.
    :param delivered: changes delivered.
    :param failed_attempts: attempts that failed or timed out (each retry counts).
    :param dropped: changes given up on (every attempt failed, or they can never be delivered).
    :param skipped: changes the delivery ledger said were already delivered.
    :param pending: changes received and not yet finished (queued, waiting for a retry, or
        running).
    :param in_flight: deliveries running right now.
    :param last_error: the last failure, masked and escaped (``None``: none yet).
    """

    name: str
    delivered: int = 0
    failed_attempts: int = 0
    dropped: int = 0
    skipped: int = 0
    pending: int = 0
    in_flight: int = 0
    last_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON shape for ``/status`` (camelCase, as the rest of it)."""
        return {
            "name": self.name,
            "delivered": self.delivered,
            "failedAttempts": self.failed_attempts,
            "dropped": self.dropped,
            "skipped": self.skipped,
            "pending": self.pending,
            "inFlight": self.in_flight,
            "lastError": self.last_error,
        }


@attrs.frozen
class DispatcherStatus:
    """Every sink's :class:`SinkStatus`, and their totals."""

    sinks: tuple[SinkStatus, ...] = ()

    def _total(self, field: str) -> int:
        return sum(int(getattr(sink, field)) for sink in self.sinks)

    @property
    def delivered(self) -> int:
        """Changes delivered, all sinks together."""
        return self._total("delivered")

    @property
    def failed_attempts(self) -> int:
        """Failed attempts, all sinks together."""
        return self._total("failed_attempts")

    @property
    def dropped(self) -> int:
        """Changes dropped, all sinks together."""
        return self._total("dropped")

    @property
    def skipped(self) -> int:
        """Changes skipped as already delivered, all sinks together."""
        return self._total("skipped")

    @property
    def pending(self) -> int:
        """Changes not finished yet, all sinks together."""
        return self._total("pending")

    @property
    def in_flight(self) -> int:
        """Deliveries running, all sinks together."""
        return self._total("in_flight")

    def sink(self, name: str) -> SinkStatus:
        """The status of the sink called ``name``.

        :raises KeyError: when there is no such sink.
        """
        for sink in self.sinks:
            if sink.name == name:
                return sink
        raise KeyError(name)

    def to_json(self) -> list[dict[str, Any]]:
        """The JSON shape for ``/status``: one object per sink."""
        return [sink.to_json() for sink in self.sinks]
