"""A thin wrapper around ``promtool``: Prometheus' own parser and rule-test engine, run offline."""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

TIMEOUT_SECONDS = 600
"""Rule tests replay days of samples at a 15 s interval; on two cores the whole suite takes well under this."""


class PromtoolMissing(RuntimeError):
    """No promtool binary was found (Debian ships it in the ``prometheus`` package)."""


@dataclass(frozen=True)
class Result:
    """What one promtool run said."""

    ok: bool
    """promtool exited 0."""
    output: str
    """stdout and stderr together: promtool splits one report across both."""
    command: tuple[str, ...]


def find(explicit: str | None = None) -> str:
    """The promtool to run: ``explicit``, ``$PROMTOOL``, or the first on PATH."""
    candidate = explicit or os.environ.get("PROMTOOL") or shutil.which("promtool")
    if not candidate or not (Path(candidate).is_file() and os.access(candidate, os.X_OK)):
        raise PromtoolMissing(f"promtool not found (looked at {candidate or 'PATH'}); install Debian's prometheus package")
    return candidate


def _run(binary: str, args: Sequence[str], cwd: Path | None = None) -> Result:
    command = (binary, *args)
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, cwd=cwd)
    return Result(ok=done.returncode == 0, output=(done.stdout + done.stderr).strip(), command=command)


def check_rules(files: Sequence[Path], binary: str) -> Result:
    """``promtool check rules``: YAML shape, PromQL syntax, duplicate rules."""
    return _run(binary, ["check", "rules", *map(str, files)])


def test_rules(files: Sequence[Path], binary: str) -> Result:
    """``promtool test rules``: replay synthetic series and compare alerts and query results."""
    return _run(binary, ["test", "rules", *map(str, files)])
