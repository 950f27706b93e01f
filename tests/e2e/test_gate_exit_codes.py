"""Each gate exit code, proven with a planted failure, through the real `chaos run`. No stack is needed."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "experiments"
GAMEDAY = Path(sys.executable).with_name("gameday")


def suite_for(tmp_path: Path, *experiments: str) -> Path:
    suite = tmp_path / "suite.yaml"
    lines = ["version: gameday/v1", "name: planted", "slo_check: false", "experiments:"]
    lines += [f"  - {FIXTURES / e}" for e in experiments]
    suite.write_text("\n".join(lines) + "\n")
    return suite


def gate(tmp_path: Path, *experiments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GAMEDAY), "gate", str(suite_for(tmp_path, *experiments)), "--run-dir", str(tmp_path / "runs")],
        capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    "experiment, code, outcome, reason",
    [
        ("pass.yaml", 0, "PASS", None),
        ("deviated.yaml", 1, "DEVIATED", "after: flag-absent"),
        ("baseline-not-met.yaml", 3, "BASELINE_NOT_MET", "before: always-fails"),
        ("activity-failed.yaml", 4, "ACTIVITY_FAILED", "InvalidArgument: path must start with '/'"),
        ("unreachable.yaml", 5, "TARGET_UNREACHABLE", "http://127.0.0.1:9 did not answer"),
    ],
)
def test_each_outcome_has_its_own_exit_code(tmp_path, experiment, code, outcome, reason):
    result = gate(tmp_path, experiment)
    assert result.returncode == code, result.stdout + result.stderr
    assert f"verdict: {outcome} (exit {code})" in result.stdout
    if reason:
        assert reason in result.stdout


def test_the_most_severe_outcome_decides(tmp_path):
    result = gate(tmp_path, "pass.yaml", "deviated.yaml", "baseline-not-met.yaml")
    assert result.returncode == 3
    table = result.stdout.split("\noutcome ")[1]
    assert table.index("PASS") < table.index("DEVIATED") < table.index("BASELINE_NOT_MET")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_gate_still_rolls_back(tmp_path, sig):
    proc = subprocess.Popen(
        [str(GAMEDAY), "gate", str(suite_for(tmp_path, "interrupted.yaml", "pass.yaml")),
         "--run-dir", str(tmp_path / "runs")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    run_dir = tmp_path / "runs" / "01-interrupted"
    deadline = time.monotonic() + 30
    while "long-action" not in (run_dir / "chaos-output.txt").read_text() if (run_dir / "chaos-output.txt").exists() else True:
        assert time.monotonic() < deadline, "the long action never started"
        time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=30)
    assert time.monotonic() - started < 15, "the interruption waited for the 60 s action"
    assert proc.returncode == 6, out
    assert "verdict: INTERRUPTED (exit 6)" in out
    assert (run_dir / "rolled-back").exists(), "the rollback did not run"
    assert not (tmp_path / "runs" / "02-pass").exists(), "experiments after an interruption must be skipped"


def test_a_bad_suite_is_a_usage_error(tmp_path):
    suite = tmp_path / "suite.yaml"
    suite.write_text("version: gameday/v1\nexperiments:\n  - nowhere.yaml\n")
    result = subprocess.run([str(GAMEDAY), "gate", str(suite)], capture_output=True, text=True)
    assert result.returncode == 2
    assert "experiments[0].path: nowhere.yaml does not exist" in result.stderr
