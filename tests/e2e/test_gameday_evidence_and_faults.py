"""Against one fresh local stack: the evidence report of a real drill, the outage safeguard, and faults that
outlive a SIGKILLed `chaos run` (healed by their TTL, or found and healed by `gameday sweep`).

Order matters: the burn-rate drill runs first, on a clean stack (its baseline requires the alert to be inactive).
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from chaoslib_ext.gameday.sli_sampler import DEFAULT_WINDOW
from probes.slo import availability_ratio
from chaos_dr_stack.local.api import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "experiments"
GAMEDAY = Path(sys.executable).with_name("gameday")
CHAOS = Path(sys.executable).with_name("chaos")


def wait_for_the_availability_sli(control_url: str, timeout: float = 60.0) -> float:
    """A fresh stack's Prometheus has no request rate until it has scraped the load generator's requests twice;
    until then the progress lines say "availability n/a", truthfully, and the drill's line has no figure."""
    config = {"local_control_url": control_url}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = availability_ratio(window=DEFAULT_WINDOW, configuration=config)["value"]
        if value is not None:
            return value
        time.sleep(1.0)
    raise AssertionError(f"Prometheus had no availability over {DEFAULT_WINDOW} within {timeout:g} s of the start")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("e2e-gameday-stack"), rate=2) as running:
        wait_for_the_availability_sli(running.control_url)
        yield running


def gameday(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([str(GAMEDAY), *args], cwd=REPO, capture_output=True, text=True, timeout=timeout)


def active_faults(stack) -> list[dict]:
    return httpx.get(stack.control_url + "/faults", timeout=5).json()["faults"]


def events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "timeline.jsonl").read_text().splitlines() if line.strip()]


def test_the_report_of_a_real_drill_shows_faults_alerts_slis_and_budgets(stack, tmp_path):
    runs = tmp_path / "runs"
    result = gameday("run", str(REPO / "experiments" / "burn-rate-alert.yaml"),
                     "--var", f"local_control_url={stack.control_url}", "--run-dir", str(runs))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # Progress is plain (not a terminal) and carries the live SLIs.
    assert "\x1b[" not in result.stdout
    assert re.search(r"\[ *\d+\.\ds\] +Action: processor-api-answers-every-request-with-503 +\(availability \d", result.stdout)

    run_dir = runs / "01-burn-rate-alert"
    samples = [json.loads(line) for line in (run_dir / "sli.jsonl").read_text().splitlines()]
    fault = next(e for e in events(run_dir) if e["kind"] == "fault.http_errors")
    during = [s["availability"] for s in samples if s["at"] > fault["at"] + 2 and s["availability"] is not None]
    assert during and min(during) < 0.9, f"the sampler never saw the total outage: {samples}"

    html = (runs / "report.html").read_text()
    assert len(re.findall(r'<img alt="[^"]+" src="data:image/png;base64,[A-Za-z0-9+/=]{2000,}">', html)) == 2
    assert re.search(r'<tr class="fault">.*?<td>fault\.http_errors</td>', html)
    assert re.search(r'<tr class="heal">.*?<td>fault\.healed</td>', html)
    assert re.search(r'<tr class="alert">.*?<td>observation\.alert_fired</td>', html)
    assert re.search(r'<tr class="alert">.*?<td>observation\.alert_resolved</td>', html)
    assert "burn-rate-alert-fired-within-prediction (webhook)" in html
    assert re.search(r"Error budget: peak burn rate <b>\d{2,}\.\dx</b>", html), "a total outage burns at > 10x"

    suite = ET.parse(runs / "junit.xml").getroot().find("testsuite")
    assert suite.get("name") == "01-burn-rate-alert"
    assert len(suite.findall("testcase")) == 1 + 6 and suite.get("failures") == "0"
    summary = (runs / "summary.md").read_text()
    assert "| 01-burn-rate-alert | PASS |" in summary and "| 1 |" in summary


def test_the_safeguard_aborts_a_long_outage_and_the_rollback_still_runs(stack, tmp_path):
    runs = tmp_path / "runs"
    started = time.monotonic()
    result = gameday("run", str(FIXTURES / "outage-with-safeguard.yaml"), "--no-report",
                     "--var", f"local_control_url={stack.control_url}", "--run-dir", str(runs))
    elapsed = time.monotonic() - started
    assert result.returncode == 9, result.stdout[-3000:] + result.stderr[-2000:]
    assert "verdict: SAFEGUARD_TRIPPED (exit 9)" in result.stdout
    assert "rollbacks run: heal-the-api" in result.stdout
    assert elapsed < 35, f"the 40 s idle was not cut short ({elapsed:.0f} s)"
    kinds = [e["kind"] for e in events(runs / "01-outage-with-safeguard")]
    assert kinds.index("fault.http_errors") < kinds.index("safeguard.tripped") < kinds.index("fault.healed")
    tripped = next(e for e in events(runs / "01-outage-with-safeguard") if e["kind"] == "safeguard.tripped")
    assert 2.0 < tripped["outage_seconds"] < 10
    assert active_faults(stack) == []
    # Healed: the API answers again (a loaded machine may need a few seconds for it, not 60).
    deadline = time.monotonic() + 30
    while httpx.get(stack.endpoints["processor_api"] + "/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the API still fails after the rollback healed the fault"
        time.sleep(0.5)


def _start_hanging_run(stack, run_dir: Path) -> subprocess.Popen:
    run_dir.mkdir(parents=True)
    env = dict(os.environ, GAMEDAY_CONTROL_URL=stack.control_url, GAMEDAY_TIMELINE=str(run_dir / "timeline.jsonl"))
    proc = subprocess.Popen(
        [str(CHAOS), "--log-file", str(run_dir / "chaostoolkit.log"), "run", "--journal-path",
         str(run_dir / "journal.json"), "--rollback-strategy", "always", str(FIXTURES / "faults-then-hang.yaml")],
        cwd=run_dir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while {f["kind"] for f in active_faults(stack)} != {"http-errors", "kafka-partition"}:
        assert proc.poll() is None, "chaos run ended before both faults were in force"
        assert time.monotonic() < deadline, f"faults never applied: {active_faults(stack)}"
        time.sleep(0.2)
    return proc


def _kill_group(proc: subprocess.Popen, sig: int) -> None:
    # The run's own session: chaos and the `sleep` its action started, by their group id, nothing else.
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def test_after_a_sigkill_faults_end_by_ttl_and_sweep_heals_the_leftovers(stack, tmp_path):
    proc = _start_hanging_run(stack, tmp_path / "run")
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        faults = {f["kind"]: f for f in active_faults(stack)}
        assert set(faults) == {"http-errors", "kafka-partition"}, "a rollback ran after SIGKILL?"
        # The 6 s fault ends by its TTL, with no one to heal it.
        time.sleep(max(0.0, faults["http-errors"]["expires_at"] - time.time()) + 0.5)
        assert [f["kind"] for f in active_faults(stack)] == ["kafka-partition"]
    finally:
        _kill_group(proc, signal.SIGKILL)
    swept = gameday("sweep", "--var", f"local_control_url={stack.control_url}", timeout=60)
    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert re.search(r"healed  kafka-partition .*mode=latency", swept.stdout)
    assert "1 healed, 0 failed" in swept.stdout
    assert active_faults(stack) == []
    again = gameday("sweep", "--var", f"local_control_url={stack.control_url}", timeout=60)
    assert again.returncode == 0 and "nothing to heal" in again.stdout


def test_sweep_leaves_the_faults_of_a_running_experiment_alone(stack, tmp_path):
    proc = _start_hanging_run(stack, tmp_path / "run")
    try:
        swept = gameday("sweep", "--var", f"local_control_url={stack.control_url}", timeout=60)
        assert swept.returncode == 0, swept.stdout + swept.stderr
        assert f"(chaos run pid {proc.pid})" in swept.stdout
        # The 6 s http-errors fault may end by its TTL while a loaded machine runs the sweep; the 120 s one may not.
        assert "left    kafka-partition" in swept.stdout and ": 0 healed, 0 failed" in swept.stdout
        assert "kafka-partition" in {f["kind"] for f in active_faults(stack)}
        # SIGTERM: chaoslib interrupts the hang and plays the rollbacks.
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        _kill_group(proc, signal.SIGKILL)
    assert active_faults(stack) == []


def test_a_sigkilled_gameday_run_still_rolls_back_its_experiment(stack, tmp_path):
    runs = tmp_path / "runs"
    runner = subprocess.Popen(
        [str(GAMEDAY), "run", str(FIXTURES / "faults-then-hang.yaml"), "--quiet",
         "--var", f"local_control_url={stack.control_url}", "--run-dir", str(runs)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while {f["kind"] for f in active_faults(stack)} != {"http-errors", "kafka-partition"}:
            assert runner.poll() is None and time.monotonic() < deadline, "the faults were never applied"
            time.sleep(0.2)
        runner.send_signal(signal.SIGKILL)
        runner.wait(timeout=10)
        journal_path = runs / "01-faults-then-hang" / "journal.json"
        deadline = time.monotonic() + 60
        while not journal_path.exists():
            assert time.monotonic() < deadline, "chaos run did not end after its parent was SIGKILLed"
            time.sleep(0.2)
    finally:
        if runner.poll() is None:
            runner.kill()
    journal = json.loads(journal_path.read_text())
    assert journal["status"] == "interrupted"
    assert [(r["activity"]["name"], r["status"]) for r in journal["rollbacks"]] == [
        ("heal-the-api", "succeeded"), ("heal-the-partition", "succeeded")]
    assert active_faults(stack) == [], "the rollbacks ran but a fault is still in force"
