"""Suites: named lists of experiment files, with the variables to run them with. Validated before anything runs."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

SUITE_VERSION = "gameday/v1"


class SuiteError(ValueError):
    """A suite file that cannot be run. The message names the file and the field."""


@dataclass(frozen=True)
class SuiteEntry:
    path: Path
    vars: dict[str, str] = field(default_factory=dict)
    """Passed to `chaos run` as --var key=value; they override the experiment's configuration."""


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    experiments: tuple[SuiteEntry, ...]
    slo_check: bool = True
    """Run the live SLI check first: a suite whose alerts cannot fire must not pass."""


def load_suite(path: Path) -> Suite:
    path = Path(path)
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"cannot read suite {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SuiteError(f"suite {path} is not valid YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise SuiteError(f"suite {path}: expected a mapping at the top level")
    unknown = set(document) - {"version", "name", "description", "experiments", "slo_check"}
    if unknown:
        raise SuiteError(f"suite {path}: unknown field(s) {', '.join(sorted(unknown))}")
    if document.get("version") != SUITE_VERSION:
        raise SuiteError(f"suite {path}: version must be {SUITE_VERSION!r}, got {document.get('version')!r}")
    entries = document.get("experiments")
    if not isinstance(entries, list) or not entries:
        raise SuiteError(f"suite {path}: experiments must be a non-empty list")
    base = path.parent
    parsed = []
    for index, entry in enumerate(entries):
        where = f"suite {path}: experiments[{index}]"
        if isinstance(entry, str):
            entry = {"path": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise SuiteError(f"{where}: expected a path, or a mapping with a path")
        extra = set(entry) - {"path", "vars"}
        if extra:
            raise SuiteError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        experiment = (base / entry["path"]).resolve()
        if not experiment.is_file():
            raise SuiteError(f"{where}.path: {entry['path']} does not exist (resolved to {experiment})")
        variables = entry.get("vars") or {}
        if not isinstance(variables, dict):
            raise SuiteError(f"{where}.vars: expected a mapping of names to values")
        parsed.append(SuiteEntry(experiment, {str(k): str(v) for k, v in variables.items()}))
    slo_check = document.get("slo_check", True)
    if not isinstance(slo_check, bool):
        raise SuiteError(f"suite {path}: slo_check must be true or false")
    return Suite(str(document.get("name") or path.stem), str(document.get("description") or ""),
                 tuple(parsed), slo_check)
