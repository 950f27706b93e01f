"""Running experiments through the real `chaos run` CLI, for every e2e module."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

CHAOS = Path(sys.executable).with_name("chaos")

ChaosRun = Callable[[Path, Path, str], "tuple[subprocess.CompletedProcess, dict]"]


def run_chaos(experiment: Path, run_dir: Path, control_url: str, timeout: float = 300) -> tuple[
        subprocess.CompletedProcess, dict]:
    """`chaos run --rollback-strategy always EXPERIMENT` in ``run_dir`` against the stack at ``control_url``,
    with the run's own timeline. Returns the process and its journal; fails the test if no journal was written."""
    run_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GAMEDAY_CONTROL_URL=control_url, GAMEDAY_TIMELINE=str(run_dir / "timeline.jsonl"))
    proc = subprocess.run(
        [str(CHAOS), "--log-file", str(run_dir / "chaostoolkit.log"), "run", "--journal-path",
         str(run_dir / "journal.json"), "--rollback-strategy", "always", str(experiment)],
        cwd=run_dir, env=env, capture_output=True, text=True, timeout=timeout,
    )
    journal_path = run_dir / "journal.json"
    assert journal_path.exists(), f"chaos run wrote no journal (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(journal_path.read_text())


@pytest.fixture
def chaos_run() -> ChaosRun:
    return run_chaos
