"""burn-rate-alert.yaml and burn-rate-alert-negative.yaml through the real `chaos run` CLI, against one fresh
local stack for the module, judged from the journal.

The stack is this module's own: a drill measures an alert from a clean start, which other tests' faults and
restarts would spoil. The negative drill runs first; its 4 % leaves the critical alert's 5 s window well before
the total outage starts (the experiment's baseline checks that the alert is not active).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chaos_dr_stack.local.api import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GAMEDAY = Path(sys.executable).with_name("gameday")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("e2e-alert-stack"), rate=2) as running:
        yield running


def hypothesis(journal: dict, phase: str, probe: str) -> dict:
    for run in journal["steady_states"][phase]["probes"]:
        if run["activity"]["name"] == probe:
            return run
    raise AssertionError(f"probe {probe!r} not in the {phase} hypothesis")


def assert_baseline_met(journal: dict) -> None:
    """`chaos run` reports "completed", not deviated, and exits 0 when the steady state fails before the method."""
    before = (journal.get("steady_states") or {}).get("before") or {}
    assert before.get("steady_state_met") is True, \
        "steady state not met before the method: " + json.dumps(before, indent=1, default=str)[:3000]


def timeline(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines() if line.strip()]


def test_below_the_threshold_the_critical_alert_stays_silent(stack, tmp_path, chaos_run):
    proc, journal = chaos_run(REPO / "experiments" / "burn-rate-alert-negative.yaml", tmp_path / "run",
                              stack.control_url)
    assert journal["status"] == "completed", proc.stdout + proc.stderr
    assert_baseline_met(journal)
    assert journal["deviated"] is False, json.dumps(journal["steady_states"], indent=1)[:3000]
    after = hypothesis(journal, "after", "critical-burn-rate-alert-stays-silent")
    assert after["status"] == "succeeded" and after["output"] == 0 and after["tolerance_met"] is True
    events = timeline(tmp_path / "run")
    silent = [e for e in events if e["kind"] == "observation.alert_silent"]
    assert len(silent) == 1 and silent[0]["seen"] == 0
    # Not vacuous: the SLI saw the 4 % (between 0 and the 0.072 threshold) for twice a total outage's fire time.
    assert 0.02 < silent[0]["max_sli_error_ratio"] < 0.072
    assert silent[0]["observed_seconds"] == pytest.approx(16.72)
    assert [e["kind"] for e in events if e["kind"].startswith("fault.")] == ["fault.http_errors", "fault.healed"]
    verdict = subprocess.run([str(GAMEDAY), "verdict", str(tmp_path / "run" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 0, verdict.stdout


def test_a_total_outage_fires_within_prediction_and_resolves(stack, tmp_path, chaos_run):
    proc, journal = chaos_run(REPO / "experiments" / "burn-rate-alert.yaml", tmp_path / "run", stack.control_url)
    assert journal["status"] == "completed", proc.stdout + proc.stderr
    assert_baseline_met(journal)
    assert journal["deviated"] is False, json.dumps(journal["steady_states"]["after"], indent=1)[:3000]
    assert proc.returncode == 0
    assert hypothesis(journal, "before", "burn-rate-alert-fired-within-prediction")["output"]["phase"] == "baseline"
    fired = hypothesis(journal, "after", "burn-rate-alert-fired-within-prediction")["output"]
    resolved = hypothesis(journal, "after", "burn-rate-alert-resolved-within-prediction")["output"]
    assert fired["within_prediction"] is True and resolved["within_prediction"] is True
    assert fired["accepted_lower_s"] <= fired["webhook_s"] <= fired["accepted_upper_s"] == 8.86
    assert fired["predicted_upper_s"] == 8.36
    assert 0 < fired["fired_in_prometheus_s"] < fired["webhook_s"]
    assert resolved["accepted_lower_s"] <= resolved["webhook_s"] <= resolved["accepted_upper_s"] == 8.14
    assert resolved["predicted_upper_s"] == 7.64
    assert hypothesis(journal, "after", "processor-api-healthy")["output"] == 200
    # The after-hypothesis judged the very measurements the method's probes made.
    method = {r["activity"]["name"]: r for r in journal["run"]}
    assert method["watch-the-alert-fire"]["output"] == fired
    assert method["watch-the-alert-resolve"]["output"] == resolved
    verdict = subprocess.run([str(GAMEDAY), "verdict", str(tmp_path / "run" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 0, verdict.stdout


def test_a_prediction_too_tight_to_meet_deviates(stack, tmp_path, chaos_run):
    """Planted failure: the same drill with a 1 s deadline (the drill's for: alone is 5 s) must deviate, and
    `chaos run` must say so: the alert probe in the after-hypothesis times out and raises."""
    import yaml

    experiment = yaml.safe_load((REPO / "experiments" / "burn-rate-alert.yaml").read_text())
    for activity in experiment["steady-state-hypothesis"]["probes"] + experiment["method"]:
        if activity["name"] in ("burn-rate-alert-fired-within-prediction", "watch-the-alert-fire"):
            activity["provider"]["arguments"]["timeout"] = 1
    planted = tmp_path / "too-tight.yaml"
    planted.write_text(yaml.safe_dump(experiment, sort_keys=False))
    proc, journal = chaos_run(planted, tmp_path / "run", stack.control_url)
    assert journal["deviated"] is True and proc.returncode == 1
    failed = hypothesis(journal, "after", "burn-rate-alert-fired-within-prediction")
    assert failed["tolerance_met"] is False and "BudgetExceeded" in failed.get("exception", [""])[-1]
