"""Entry points and versions read without importlib.metadata (``autoconfig_cache.distributions``).

Every answer is compared with what :mod:`importlib.metadata` says of the same installation: the
real test environment, and distributions the tests install into folders on ``sys.path``.
"""

from __future__ import annotations

import importlib.abc
import importlib.metadata
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autoconfig_cache import distributions


def reference(group: str) -> list[tuple[str, str, str | None]]:
    """``(name, value, version)`` of the group's entry points, as importlib.metadata lists them."""
    return [
        (point.name, point.value, point.dist.version if point.dist else None)
        for point in importlib.metadata.entry_points(group=group)
    ]


def found(group: str) -> list[tuple[str, str, str | None]]:
    return [
        (point.name, point.value, point.version()) for point in distributions.entry_points(group)
    ]


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """Two folders put first on sys.path, ``first`` before ``second``."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    sys.path[:0] = [str(first), str(second)]
    yield tmp_path
    sys.path.remove(str(first))
    sys.path.remove(str(second))
    for name in [m for m in sys.modules if m.startswith("acc_dist_")]:
        del sys.modules[name]


def install(folder: Path, dist_folder: str, entry_points: str, version: str = "1.0") -> None:
    info = folder / dist_folder
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {dist_folder.split('-')[0]}\nVersion: {version}\n\n"
        "Version: 9.9 (the description, not a header)\n"
    )
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.mark.parametrize("group", ["console_scripts", "pytest11", "autoconfig_cache"])
def test_the_installed_entry_points_are_those_importlib_metadata_lists(group: str) -> None:
    expected = reference(group)
    assert expected  # the test environment does install some in each group
    assert sorted(found(group)) == sorted(expected)


def test_installed_versions_are_those_importlib_metadata_reads() -> None:
    for name in ("autoconfig-cache", "pluggy", "PyNamoDB", "autoconfig_cache.redis"):
        try:
            expected: str | None = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            expected = None
        assert distributions.version(name) == expected, name
    assert distributions.version("autoconfig-cache") is not None
    assert distributions.version("acc-dist-not-installed") is None


def test_the_first_distribution_of_a_name_on_the_path_wins(site: Path) -> None:
    # Two spellings of one normalised name: only the first folder's entry points count.
    install(
        site / "first", "Acc.Dist_Dup-2.0.dist-info", "[acc_dist]\nfirst = acc_dist_a:x\n", "2.0"
    )
    install(site / "second", "ACC_dist_dup-1.0.dist-info", "[acc_dist]\nsecond = acc_dist_b\n")
    assert found("acc_dist") == reference("acc_dist") == [("first", "acc_dist_a:x", "2.0")]
    assert distributions.version("acc-dist-dup") == "2.0"


def test_an_egg_info_file_is_its_own_metadata(site: Path) -> None:
    # An old setuptools install: the .egg-info is a file holding the metadata headers.
    (site / "first" / "acc_dist_old-0.9-py3.11.egg-info").write_text(
        "Metadata-Version: 1.0\nName: acc-dist-old\nVersion: 0.9\n"
    )
    assert importlib.metadata.version("acc-dist-old") == "0.9"
    assert distributions.version("acc-dist-old") == "0.9"


def test_entry_points_txt_is_read_as_the_standard_library_reads_it(site: Path) -> None:
    (site / "first" / "acc_dist_mod.py").write_text("class Holder:\n    target = 42\n")
    install(
        site / "first",
        "acc_dist_syntax-1.0.dist-info",
        """
        # a comment
        [console_scripts]
        not-this = acc_dist_mod:Holder

        [acc_dist]
            # indented comment
        spaced   =   acc_dist_mod : Holder.target   [extra1, extra2]
        [acc_dist.other]
        elsewhere = acc_dist_mod
        """,
    )
    points = distributions.entry_points("acc_dist")
    assert [(p.name, p.value) for p in points] == [
        (p.name, p.value) for p in importlib.metadata.entry_points(group="acc_dist")
    ]
    assert [p.name for p in points] == ["spaced"]
    assert points[0].load() == 42


def test_a_missing_entry_point_module_fails_on_load_not_on_listing(site: Path) -> None:
    install(site / "first", "acc_dist_gone-1.0.dist-info", "[acc_dist]\ngone = acc_dist_gone\n")
    (point,) = distributions.entry_points("acc_dist")
    with pytest.raises(ModuleNotFoundError):
        point.load()


def test_a_zip_on_sys_path_is_left_to_importlib_metadata(site: Path) -> None:
    archive = site / "plugins.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr(
            "acc_dist_zipped-3.1.dist-info/METADATA", "Name: acc-dist-zipped\nVersion: 3.1\n"
        )
        zipped.writestr(
            "acc_dist_zipped-3.1.dist-info/entry_points.txt", "[acc_dist]\nz = acc_dist_z\n"
        )
    sys.path.insert(0, str(archive))
    try:
        assert found("acc_dist") == [("z", "acc_dist_z", "3.1")]
        assert distributions.version("acc-dist-zipped") == "3.1"
    finally:
        sys.path.remove(str(archive))


class _OwnFinder(importlib.abc.MetaPathFinder):
    """A finder that knows a distribution no folder holds (as some packaging tools install)."""

    def find_spec(self, *args: Any) -> None:
        return None

    def find_distributions(self, context: Any = None) -> Iterator[importlib.metadata.Distribution]:
        name = getattr(context, "name", None)
        if name is None or name == "acc-dist-own":
            yield _OwnDistribution()


class _OwnDistribution(importlib.metadata.Distribution):
    def read_text(self, filename: str) -> str | None:
        return {
            "METADATA": "Name: acc-dist-own\nVersion: 7.0\n",
            "entry_points.txt": "[acc_dist]\nown = acc_dist_own\n",
        }.get(filename)

    def locate_file(self, path: Any) -> Any:
        return Path(str(path))


def test_a_finder_of_its_own_is_left_to_importlib_metadata(site: Path) -> None:
    finder = _OwnFinder()
    sys.meta_path.append(finder)
    try:
        assert found("acc_dist") == [("own", "acc_dist_own", "7.0")]
        assert distributions.version("acc-dist-own") == "7.0"
    finally:
        sys.meta_path.remove(finder)
