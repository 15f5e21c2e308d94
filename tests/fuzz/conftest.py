"""Hypothesis settings of the fuzzing harness: a short CI run by default, a long run on demand.

``AUTOCONFIG_CACHE_FUZZ_PROFILE=long`` selects the long profile (docs/testing.md, "Fuzzing").
The profiles are applied to the fuzz tests only (``FUZZ_SETTINGS``), never loaded globally, so
the project's other property tests keep their own settings. No example database is written:
a CI clone stays clean and every run starts afresh (``database=None``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "AUTOCONFIG_CACHE_FUZZ_PROFILE"
_COMMON = settings(
    deadline=None,  # a run is network and disk I/O: its time says nothing about the input
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,  # a failure prints the @reproduce_failure line to replay it
)
# CI replays the same 50 examples on every run (derandomize): a gate that passes or fails by the
# luck of the draw would block unrelated changes; the long profile explores at random, and what
# it finds becomes an @example or a unit test.
settings.register_profile("autoconfig-fuzz-ci", _COMMON, max_examples=50, derandomize=True)
settings.register_profile("autoconfig-fuzz-long", _COMMON, max_examples=2_000)


def fuzz_settings() -> settings:
    """The profile ``AUTOCONFIG_CACHE_FUZZ_PROFILE`` names (``ci`` by default, or ``long``)."""
    name = os.environ.get(PROFILE_VARIABLE, "ci").strip().lower() or "ci"
    if name not in ("ci", "long"):
        raise ValueError(f"{PROFILE_VARIABLE} must be 'ci' or 'long', got {name!r}")
    return settings.get_profile(f"autoconfig-fuzz-{name}")


FUZZ_SETTINGS = fuzz_settings()
