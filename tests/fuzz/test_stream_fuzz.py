"""Hostile AutoConfig streams against a real StreamManager, SQLite store and HTTP server.

Each example is a generated script of connections (``script.py``): events of every kind, good,
ignored and hostile, cut into chunks anywhere, with HTTP failures between them. After it has been
played, the invariants of ``invariants.py`` must all hold; a failure lists every invariant the
example broke, with the script.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import Phase, example, find, given, settings

from . import invariants
from .conftest import FUZZ_SETTINGS
from .harness import run_script
from .items import secret
from .scenarios import done_when_script
from .script import Script, scripts


# Shrinking a failure to a minimal script replays hundreds of streams: minutes, over the suite's
# 300 s default, and a timeout would lose the report.
@pytest.mark.timeout(900)
@FUZZ_SETTINGS
@given(script=scripts(), autoconfig_key=secret("rel"), encryption_key=secret("enc"))
@example(
    script=done_when_script(), autoconfig_key="rel-" + "7a" * 8, encryption_key="enc-" + "e7" * 8
)
def test_a_hostile_stream_breaks_no_invariant(
    script: Script, autoconfig_key: str, encryption_key: str
) -> None:
    with tempfile.TemporaryDirectory(prefix="autoconfig-fuzz-") as directory:
        observed = asyncio.run(run_script(script, Path(directory), autoconfig_key, encryption_key))
    expected = script.expected()
    broken = {
        "the process never dies": invariants.process_never_dies(observed),
        "memory stays bounded": invariants.memory_stays_bounded(observed),
        "good items always reach the store": invariants.good_items_reach_the_store(
            observed, expected
        ),
        "the store never holds an invalid item": invariants.store_holds_only_valid_items(observed),
        "reconnects are spaced": invariants.reconnects_are_spaced(observed, script),
        "no secret is logged": invariants.no_secret_is_logged(
            observed, [autoconfig_key, encryption_key]
        ),
        "the instance is ready after a put": invariants.instance_is_ready(observed, script),
    }
    report = [
        f"{name}:\n" + "\n".join(f"    {problem}" for problem in problems)
        for name, problems in broken.items()
        if problems
    ]
    # A plain assertion, not pytest.fail(pytrace=False), so that the report keeps Hypothesis's
    # notes: the falsifying example and the @reproduce_failure line.
    assert not report, "\n".join(report) + "\nscript:\n" + script.describe()


@pytest.mark.parametrize("profile", ["ci", "long"])
def test_the_profile_is_chosen_by_an_environment_variable(
    profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .conftest import PROFILE_VARIABLE, fuzz_settings

    monkeypatch.setenv(PROFILE_VARIABLE, profile)
    chosen = fuzz_settings()
    assert chosen.database is None and chosen.deadline is None
    assert (chosen.max_examples > 1_000) is (profile == "long")
    monkeypatch.setenv(PROFILE_VARIABLE, "forever")
    with pytest.raises(ValueError, match=PROFILE_VARIABLE):
        fuzz_settings()


#: A few words of the label of each family of segment the generator must keep making.
FAMILIES = [
    "put[",
    "refused",  # a hostile item in a put
    "uncertain",
    "lone surrogate",
    "delete",
    "reconnect",
    "retry:",
    "unknown event",
    "without data",
    "nesting",
    "-digit number",
    "invalid UTF-8",
    "event of",  # over the size limit
    "endless",
    "never ended",
    "credentials",
    "HTTP",
]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.filterwarnings("ignore:Generating overly large repr")  # find()'s own report
def test_the_generator_makes_every_family_of_segment(family: str) -> None:
    # Guards the harness against a generator that silently stopped making some hostile input.
    def has_family(script: Script) -> bool:
        return any(family in line for line in script.describe().splitlines())

    search = settings(max_examples=5_000, database=None, phases=[Phase.generate])
    find(scripts(), has_family, settings=search)  # raises NoSuchExample if it never comes
