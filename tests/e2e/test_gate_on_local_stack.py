"""`gameday gate` with the default suite against a fresh local stack: the SLI check, then the experiments."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stack.local.api import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GAMEDAY = Path(sys.executable).with_name("gameday")


def test_the_default_gate_passes_on_a_healthy_stack(tmp_path):
    with LocalStack(state_dir=tmp_path / "stack") as stack:
        result = subprocess.run(
            [str(GAMEDAY), "gate", "--var", f"local_control_url={stack.endpoints['control']}",
             "--run-dir", str(tmp_path / "runs")],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "SLI check PASS: 8 selectors of 5 SLOs have series" in result.stdout
    assert "verdict: PASS (exit 0)" in result.stdout
    journal = json.loads((tmp_path / "runs" / "01-processor-pod-kill" / "journal.json").read_text())
    assert journal["experiment"]["title"].startswith("A processor replica crashes")
    recovered = [p for p in journal["steady_states"]["after"]["probes"]
                 if p["activity"]["name"] == "processor-recovered-within-failover-budget"][0]
    assert 0.5 < recovered["output"] <= 30
    timeline = (tmp_path / "runs" / "01-processor-pod-kill" / "timeline.jsonl").read_text()
    assert '"kind": "fault.kill"' in timeline
