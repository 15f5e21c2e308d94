"""``autoconfig-cache demo``: the README's first command, run as a person would."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from autoconfig_cache.demo.data import environment_json, sample_put_data
from tests.cli.conftest import clean_environ
from tests.items import credential_values


def test_demo_runs_the_outage_story_and_exits_0() -> None:
    # Through the installed console script, as the README says to run it.
    script = Path(sys.executable).parent / "autoconfig-cache"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "autoconfig_cache.cli"]
    result = subprocess.run(
        [*command, "demo"],
        env=clean_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = " ".join(result.stdout.split())  # undo the terminal-width wrapping
    steps = [
        "LaunchDarkly is up",
        "Instance A starts",
        "LaunchDarkly goes down",
        "fresh instance B",
        "— from the cache",
        "without a cache answers /readyz 503",
        "LaunchDarkly comes back",
        "1 updated, 1 deleted, 1 added",
        "the SQLite cache holds the new configuration",
        "Done in",
    ]
    position = 0
    for step in steps:  # each step appears, in this order
        found = text.find(step, position)
        assert found >= 0, f"{step!r} missing after position {position}: {text}"
        position = found + len(step)
    assert "Traceback" not in result.stderr
    # Every environment carries concurrent keys (sdkKeys, mobileKeys): none is shown in clear.
    data = sample_put_data(environments=6, filters=2)
    ids = list(data["environments"])
    shown = [*data["environments"].values(), environment_json(ids[1], version=2)]
    shown.append(environment_json("0006billprod000000000000"))
    assert all(env.get("sdkKeys") and env.get("mobileKeys") for env in shown)
    for env in shown:
        for value in credential_values(env):
            assert value not in result.stdout and value not in result.stderr

    folder = re.search(r"SQLite cache: (\S+?);", text)
    assert folder is not None
    assert not Path(folder.group(1)).parent.exists()  # the temporary folder is removed
