"""Packaging metadata of the three distributions: license file and Project-URLs.

Building the wheels and sdists is checked by hand (slow, needs the build backend from the
index); these checks keep the inputs of those builds consistent.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from autoconfig_cache.project import DOCUMENTATION_URL, REPOSITORY_URL, docs_page

ROOT = Path(__file__).resolve().parent.parent
#: Each distribution's folder and the page its Documentation URL points to.
DISTRIBUTIONS = {
    ROOT: DOCUMENTATION_URL,
    ROOT / "plugins" / "redis_store": docs_page("stores/redis.md"),
    ROOT / "plugins" / "dynamo_store": docs_page("stores/dynamodb.md"),
}


def _project(folder: Path) -> dict[str, object]:
    with (folder / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda f: f.name)
def test_each_distribution_carries_the_apache_license_file(folder: Path) -> None:
    project = _project(folder)
    assert project["license"] == "Apache-2.0"
    # hatchling looks for license files in the distribution's own folder: each has a copy.
    assert project["license-files"] == ["LICENSE"]
    text = (folder / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert text == (ROOT / "LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("folder", DISTRIBUTIONS, ids=lambda f: f.name)
def test_each_distribution_names_its_documentation_and_source(folder: Path) -> None:
    project = _project(folder)
    urls = project["urls"]
    assert isinstance(urls, dict)
    assert urls["Documentation"] == DISTRIBUTIONS[folder]
    assert urls["Source"] == REPOSITORY_URL
    assert urls["Changelog"].startswith(REPOSITORY_URL)
    description = project["description"]
    assert isinstance(description, str) and "AutoConfig" in description
    assert (folder / str(project.get("readme", "README.md"))).is_file()
