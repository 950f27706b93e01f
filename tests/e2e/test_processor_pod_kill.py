"""processor-pod-kill.yaml's planted failures through the real `chaos run` CLI, against a fresh local stack, judged
from the journal. The experiment itself, unchanged, is judged in detail from the game day's journal
(tests/e2e/test_gate_on_local_stack.py), which runs it first on a fresh stack.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chaoslib_ext.errors import NoData
from probes.processing import end_to_end_lag_seconds
from chaos_dr_stack.local.api import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "experiments" / "processor-pod-kill.yaml"
GAMEDAY = Path(sys.executable).with_name("gameday")


WARM_LAG_SECONDS = 1.0
"""The first consumer-group join delays the first events by seconds; experiments start once the pipeline is warm."""


def wait_until_warm(control_url: str, timeout: float = 60.0) -> float:
    config = {"local_control_url": control_url}
    deadline = time.monotonic() + timeout
    lag = None
    while time.monotonic() < deadline:
        try:
            lag = end_to_end_lag_seconds(q=0.99, window_seconds=3, configuration=config)
            if lag < WARM_LAG_SECONDS:
                return lag
        except NoData:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the pipeline did not warm up in {timeout} s: last p99 lag {lag}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("e2e-stack")) as running:
        wait_until_warm(running.endpoints["control"])
        yield running


def test_a_recovery_budget_too_tight_to_meet_deviates(stack, tmp_path, chaos_run):
    """Planted failure: the same experiment with a 10 ms budget must deviate, and the verdict must say so."""
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    for probe in experiment["steady-state-hypothesis"]["probes"]:
        if probe["name"] == "processor-recovered-within-failover-budget":
            probe["tolerance"]["range"] = [0, 0.01]
    planted = tmp_path / "too-tight.yaml"
    planted.write_text(yaml.safe_dump(experiment, sort_keys=False))

    proc, journal = chaos_run(planted, tmp_path / "run", stack.endpoints["control"])
    assert journal["deviated"] is True
    assert proc.returncode == 1
    verdict = subprocess.run([str(GAMEDAY), "verdict", str(tmp_path / "run" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 1
    assert "DEVIATED" in verdict.stdout
    assert "processor-recovered-within-failover-budget" in verdict.stdout


def test_baseline_not_met_is_caught_although_chaos_run_exits_0(stack, tmp_path, chaos_run):
    """Planted failure: /health must answer 299, which it never does. The baseline fails before the method, no
    fault is injected, `chaos run` exits 0 — and the verdict must not."""
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    for probe in experiment["steady-state-hypothesis"]["probes"]:
        if probe["name"] == "processor-api-healthy":
            probe["tolerance"] = 299
    planted = tmp_path / "impossible-baseline.yaml"
    planted.write_text(yaml.safe_dump(experiment, sort_keys=False))

    proc, journal = chaos_run(planted, tmp_path / "run", stack.endpoints["control"])
    assert proc.returncode == 0  # Chaos Toolkit's own exit code cannot be trusted here...
    assert journal["run"] == []  # ...and the method never ran.
    verdict = subprocess.run([str(GAMEDAY), "verdict", str(tmp_path / "run" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 3, verdict.stdout
    assert "BASELINE_NOT_MET" in verdict.stdout
    assert "before: processor-api-healthy = 200, tolerance 299" in verdict.stdout


def test_an_unreachable_stack_is_named(tmp_path, chaos_run):
    proc, journal = chaos_run(EXPERIMENT, tmp_path / "run", "http://127.0.0.1:9")
    assert journal["status"] == "failed"
    verdict = subprocess.run([str(GAMEDAY), "verdict", str(tmp_path / "run" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 5, verdict.stdout
    assert "TARGET_UNREACHABLE" in verdict.stdout
    assert "control API at http://127.0.0.1:9 did not answer" in verdict.stdout
