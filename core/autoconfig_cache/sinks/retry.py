"""How often and how long apart a failed delivery is tried again."""

from __future__ import annotations

import random

import attrs

#: Jitter needs no cryptographic randomness.
_RNG = random.Random()


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be more than 0, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be at least 1, got {value!r}")


@attrs.frozen
class RetryPolicy:
    """Exponential backoff with jitter, and a bounded number of attempts.

    After the ``n``-th failed attempt (``n`` from 1) the next waits a random time between half
    and all of ``min(max_delay, base_delay * 2 ** (n - 1))``: it grows 1, 2, 4, ... s up to 60 s
    by default, and the randomness keeps many environments that failed together (a secret store
    that was down) from all retrying at the same instant.

    After ``max_attempts`` failed attempts the change is dropped: an error is logged and counted,
    and the environment's next changes go ahead. A hook that is broken for good would otherwise
    hold every later change of that environment for ever; a dropped change is not lost for good
    either, since the next complete configuration (a reconnection's ``put``, a restart) delivers
    ``initialized`` with every environment, and the next change of that environment carries its
    whole state.

    :param max_attempts: attempts per change, the first included.
    :param base_delay: seconds before the first retry (at most).
    :param max_delay: the longest wait between two attempts, in seconds.
    """

    max_attempts: int = attrs.field(default=5, validator=_at_least_one)
    base_delay: float = attrs.field(default=1.0, validator=_positive)
    max_delay: float = attrs.field(default=60.0, validator=_positive)

    def ceiling(self, failed_attempts: int) -> float:
        """The longest wait after ``failed_attempts`` failed attempts (from 1)."""
        # The exponent is bounded so that a large count cannot overflow the float.
        exponent = min(max(failed_attempts, 1) - 1, 64)
        return min(self.max_delay, self.base_delay * 2.0**exponent)

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """The wait before the next attempt, after ``failed_attempts`` failed ones."""
        ceiling = self.ceiling(failed_attempts)
        return (rng or _RNG).uniform(ceiling / 2, ceiling)
