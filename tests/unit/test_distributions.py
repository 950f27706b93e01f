"""Two distributions in one repository: the framework (``chaos-dr-verify``) and the reference system under test
(``chaos-dr-verify-stack``, package ``chaos_dr_stack``). Each declares what its code imports, and neither ships
the other's package."""
from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[2]
FRAMEWORK = tomllib.loads((REPO / "pyproject.toml").read_text())
STACK = tomllib.loads((REPO / "stack" / "pyproject.toml").read_text())


def imported_top_level(root: Path, leaving_out: Path | None = None) -> set[str]:
    """Every absolute top-level module the ``.py`` files under ``root`` (less ``leaving_out``) import, wherever
    the import sits."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        if leaving_out is not None and path.is_relative_to(leaving_out):
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def third_party_distributions(root: Path, own: set[str], leaving_out: Path | None = None) -> dict[str, set[str]]:
    """Module → the installed distributions that provide it, for the third-party modules ``root`` imports."""
    provided = packages_distributions()
    return {name: {d.lower() for d in provided.get(name, [])}
            for name in imported_top_level(root, leaving_out) - set(sys.stdlib_module_names) - own - {"__future__"}}


def declared(requirements: list[str]) -> set[str]:
    return {Requirement(r).name.lower().replace("_", "-") for r in requirements}


def test_the_reference_stack_declares_every_distribution_its_code_imports():
    names = declared(STACK["project"]["dependencies"])
    # A module is covered when one of its distributions is declared, or comes with one that is (pydantic with
    # fastapi, bson with pymongo, starlette and anyio with fastapi).
    bundled = {"pydantic": "fastapi", "starlette": "fastapi", "anyio": "fastapi", "bson": "pymongo"}
    missing = {module: dists for module, dists in
               third_party_distributions(REPO / "stack" / "chaos_dr_stack", {"chaos_dr_stack"}).items()
               if not ({d.replace("_", "-") for d in dists} & names) and bundled.get(module) not in names}
    assert missing == {}, f"imported by chaos_dr_stack but not in stack/pyproject.toml: {missing}"


def test_the_framework_ships_no_system_under_test_and_its_local_extra_is_the_stack_distribution():
    assert FRAMEWORK["tool"]["setuptools"]["packages"]["find"]["include"] == ["chaoslib_ext*", "probes*"]
    assert STACK["tool"]["setuptools"]["packages"]["find"]["include"] == ["chaos_dr_stack*"]
    local = [Requirement(r) for r in FRAMEWORK["project"]["optional-dependencies"]["local"]]
    assert [(r.name, str(r.specifier)) for r in local] == [(STACK["project"]["name"], f"=={STACK['project']['version']}")]


def test_the_framework_declares_every_distribution_its_core_imports():
    """The core (everything but the Kubernetes target, the report's plots and the local stack, which are extras)
    imports only what a plain install brings."""
    names = declared(FRAMEWORK["project"]["dependencies"])
    # The game day's blast-radius check reads the kube context only for the Kubernetes target.
    extras = {"matplotlib", "chaos_dr_stack", "kubernetes"}
    own = {"chaoslib_ext", "probes"}
    imported = third_party_distributions(REPO / "chaoslib_ext", own, REPO / "chaoslib_ext" / "targets" / "kubernetes")
    imported.update(third_party_distributions(REPO / "probes", own))
    bundled = {"chaoslib": "chaostoolkit-lib", "yaml": "pyyaml", "bson": "pymongo", "packaging": "chaostoolkit-lib"}
    missing = {module: dists for module, dists in imported.items()
               if module not in extras and not ({d.replace("_", "-") for d in dists} & names)
               and bundled.get(module) not in names}
    assert missing == {}, f"imported by the framework but not in pyproject.toml's dependencies: {missing}"
