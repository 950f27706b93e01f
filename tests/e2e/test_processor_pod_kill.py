"""processor-pod-kill.yaml through the real `chaos run` CLI, against a fresh local stack, judged from the journal.

The stack is this module's own. The experiment judges the restarts of its own run (one kill, one restart), so the
other tests' kills on the same stack do not change its verdict; SLO-4's daily figure is only reported.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from chaoslib_ext.errors import NoData
from probes.processing import end_to_end_lag_seconds
from stack.local.api import LocalStack

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


def failed_probes(journal: dict, phase: str) -> str:
    """The probes of a hypothesis that missed their tolerance, with their outputs: why the journal deviated."""
    runs = (journal["steady_states"].get(phase) or {}).get("probes", [])
    return "\n".join(f"{run['activity']['name']} = {json.dumps(run.get('output'))[:2000]}"
                     for run in runs if not run.get("tolerance_met"))


def hypothesis_output(journal: dict, phase: str, probe: str):
    for run in journal["steady_states"][phase]["probes"]:
        if run["activity"]["name"] == probe:
            return run["output"]
    raise AssertionError(f"probe {probe!r} not in the {phase} hypothesis")


def test_pod_kill_recovers_within_budget_and_loses_nothing(stack, tmp_path, chaos_run):
    proc, journal = chaos_run(EXPERIMENT, tmp_path / "run", stack.endpoints["control"])
    assert journal["status"] == "completed", proc.stdout + proc.stderr
    assert journal["deviated"] is False, failed_probes(journal, "after")
    assert proc.returncode == 0

    recovery = hypothesis_output(journal, "after", "processor-recovered-within-failover-budget")
    # A real crash: the supervisor's first restart waits 0.5 s and the consumer must rejoin its group.
    assert 0.5 < recovery <= 30.0
    assert hypothesis_output(journal, "before", "processor-recovered-within-failover-budget") == 0.0
    delivery = hypothesis_output(journal, "after", "no-acknowledged-event-lost")
    assert delivery["lost"] == 0 and delivery["lost_events"] == []
    assert delivery["checked"] >= 20  # two producers at 20/s for the length of the run
    restarts = hypothesis_output(journal, "after", "restarts-explained-by-this-run")
    assert {k: restarts[k] for k in ("injected", "expected", "observed", "unexplained", "uncounted")} == {
        "injected": 1, "expected": 1, "observed": 1, "unexplained": 0, "uncounted": 0}
    assert hypothesis_output(journal, "before", "restarts-explained-by-this-run")["observed"] == 0
    daily = journal["run"][1]["output"]  # SLO-4's figure: evidence in the method, not judged
    assert journal["run"][1]["activity"]["name"] == "slo-4-daily-restarts-and-budget-left"
    assert daily["budget"] == 3 and daily["restarts"] >= 0.9
    assert daily["budget_left"] == round(3 - daily["restarts"], 3)
    lag = hypothesis_output(journal, "after", "end-to-end-lag-p99-within-slo-3")
    assert 0 < lag <= 10
    # The other replica kept serving CUJ-1 from the kill until the killed one recovered.
    cuj1 = hypothesis_output(journal, "after", "cuj1-served-while-a-replica-was-down")
    print(f"CUJ-1 over the {cuj1['window']['seconds']} s kill: client {cuj1['client_availability']} "
          f"p95 {cuj1['client_p95_s']} s ({cuj1['client']['requests']} requests); server "
          f"{cuj1['server_availability']} p95 {cuj1['server_p95_s']} s ({cuj1['server']['requests']} requests)")
    assert cuj1["verdict"] == "PASS", cuj1
    # From the kill until the replica recovered, and at least 20 s (the experiment's min_window_seconds).
    assert cuj1["window"]["seconds"] == pytest.approx(max(recovery, 20.0), abs=0.01), (cuj1["window"], recovery)
    assert cuj1["window"]["ended_by"] == ("observation.recovered" if recovery > 20 else "min_seconds")
    assert cuj1["client"]["requests"] >= 200, cuj1
    assert hypothesis_output(journal, "before", "cuj1-served-while-a-replica-was-down")["phase"] == "baseline"

    killed = journal["run"][0]["output"]["killed"]
    assert len(killed) == 1 and killed[0]["signal"] == "SIGKILL"
    assert killed[0]["name"] in ("processor-0", "processor-1")

    verdict = subprocess.run([str(GAMEDAY), "verdict", str(tmp_path / "run" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 0, verdict.stdout
    assert "verdict: PASS (exit 0)" in verdict.stdout


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
