"""A 0.x or pre-release dependency may break its API in any minor release, so each one has a ceiling."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

REPO = Path(__file__).resolve().parents[2]
PYPROJECTS = (REPO / "pyproject.toml", REPO / "stack" / "pyproject.toml")


def unbounded_unstable(requirements: list[str]) -> list[str]:
    found = []
    for line in requirements:
        requirement = Requirement(line)
        floors = [Version(s.version) for s in requirement.specifier if s.operator in (">=", "==", "~=", ">")]
        ceilings = [s for s in requirement.specifier if s.operator in ("<", "<=", "==", "~=")]
        if any(v.major == 0 or v.is_prerelease for v in floors) and not ceilings:
            found.append(line)
    return found


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_unstable_dependency_has_a_ceiling(pyproject):
    project = tomllib.loads(pyproject.read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    assert unbounded_unstable(requirements) == []


def test_the_check_sees_an_unbounded_zero_x_or_pre_release():
    assert unbounded_unstable(["httpx>=0.27", "SecantusDB>=0.7.0b3", "pyyaml>=6", "kmock>=0.8,<0.9"]) == [
        "httpx>=0.27", "SecantusDB>=0.7.0b3"]
