"""Game days on one long-lived stack, as a scheduled game day runs them: the whole suite, then the CI gate again on
the same stack. Each must pass: an experiment that leaves the stack worse than it found it (a replica crash-looping,
an alert still firing, a fault not healed, a backlog not drained) fails the next one's baseline.

The stack is the one `gameday stack up` starts: three Kafka nodes, so the game day's broker faults have a cluster to
act on. The game day's own journals are judged here in detail for the processor kill, the Kafka partition and the
broker faults (running them again on a fresh stack of their own would only repeat them), and the partition's planted
failure runs last, on the same stack."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
import pytest
import yaml
from broker_findings import WRITE_GAP_FINDING_CEILING_S, WRITE_GAP_PROBE, write_gap_finding
from journals import probe_output, unmet_probes
from proc_sampler import ProcSampler

from chaos_dr_stack.local.api import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GAMEDAY = Path(sys.executable).with_name("gameday")
GAMEDAY_SUITE = REPO / "experiments" / "suites" / "gameday.yaml"
VERDICT_ROW = re.compile(r"^(PASS|DEVIATED|BASELINE_NOT_MET|ACTIVITY_FAILED|TARGET_UNREACHABLE|INTERRUPTED|"
                         r"INVALID_JOURNAL|SAFEGUARD_TRIPPED)\s+([0-9.]+)\s+(\S+)$", re.MULTILINE)


GAMEDAY_STACK_RATE = 10
"""Events per second per producer: half the default. The database grows all through a game day on one stack, and on
single-threaded SecantusDB the DR experiments' restores and replays grow with it (at 20/s beside CI's other worker,
the suite took 20 minutes)."""


@pytest.fixture(scope="module")
def stack(stack_binaries, stack_dirs):
    with LocalStack(state_dir=stack_dirs("gameday-stack"), rate=GAMEDAY_STACK_RATE, timeout=240,
                    runner_args=("--kafka-brokers", "3")) as running:
        yield running


def _gate(stack: LocalStack, run_dir: Path, *suite: str, timeout: float,
          quiet: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(GAMEDAY), "gate", *suite, "--var", f"local_control_url={stack.endpoints['control']}",
         "--run-dir", str(run_dir), *(["--quiet"] if quiet else [])],
        cwd=REPO, capture_output=True, text=True, timeout=timeout,
    )


def _failure(result: subprocess.CompletedProcess, run_dir: Path) -> str:
    summary = run_dir / "summary.md"
    return (result.stdout[-4000:] + result.stderr[-2000:]
            + (summary.read_text()[-4000:] if summary.exists() else ""))


@pytest.fixture(scope="module")
def gameday(stack, tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    run_dir = tmp_path_factory.mktemp("gameday-run") / "gameday"
    return _gate(stack, run_dir, str(GAMEDAY_SUITE), timeout=2100), run_dir


def _journal(run_dir: Path, name: str) -> dict:
    path = run_dir / name / "journal.json"
    assert path.exists(), f"the game day wrote no {name} journal"
    return json.loads(path.read_text())


@pytest.mark.timeout(2200)
def test_the_whole_game_day_passes_on_one_stack(gameday):
    result, run_dir = gameday
    rows = VERDICT_ROW.findall(result.stdout)
    print("\n".join(f"{outcome:<20}{seconds:>8}  {name}" for outcome, seconds, name in rows))
    suite_files = [line.strip()[2:].split("/")[-1] for line in GAMEDAY_SUITE.read_text().splitlines()
                   if line.strip().startswith("- ../")]
    assert [name for _, _, name in rows] == suite_files, _failure(result, run_dir)
    finding = write_gap_finding(_journal(run_dir, "15-kafka-broker-isolated"))
    judged = [outcome for outcome, _, name in rows if not (finding and name == "kafka-broker-isolated.yaml")]
    assert set(judged) == {"PASS"}, _failure(result, run_dir)
    assert result.returncode == (1 if finding else 0), _failure(result, run_dir)
    if finding:
        warnings.warn(finding)


def pod_kill_min_window_seconds() -> float:
    experiment = yaml.safe_load((REPO / "experiments" / "processor-pod-kill.yaml").read_text())
    [probe] = [p for p in experiment["steady-state-hypothesis"]["probes"]
               if p["name"] == "cuj1-served-while-a-replica-was-down"]
    return float(probe["provider"]["arguments"]["min_window_seconds"])


def test_the_game_days_pod_kill_recovers_within_budget_and_loses_nothing(gameday):
    _, run_dir = gameday
    journal = _journal(run_dir, "01-processor-pod-kill")
    assert journal["deviated"] is False, unmet_probes(journal, "after")
    recovery = probe_output(journal, "after", "processor-recovered-within-failover-budget")
    # A real crash: the supervisor's first restart waits 0.5 s and the consumer must rejoin its group.
    assert 0.5 < recovery <= 30.0
    assert probe_output(journal, "before", "processor-recovered-within-failover-budget") == 0.0
    delivery = probe_output(journal, "after", "no-acknowledged-event-lost")
    assert delivery["lost"] == 0 and delivery["lost_events"] == [] and delivery["checked"] >= 20, delivery
    restarts = probe_output(journal, "after", "restarts-explained-by-this-run")
    assert {k: restarts[k] for k in ("injected", "expected", "observed", "unexplained", "uncounted")} == {
        "injected": 1, "expected": 1, "observed": 1, "unexplained": 0, "uncounted": 0}
    assert probe_output(journal, "before", "restarts-explained-by-this-run")["observed"] == 0
    daily = journal["run"][1]["output"]  # SLO-4's figure: evidence in the method, not judged
    assert journal["run"][1]["activity"]["name"] == "slo-4-daily-restarts-and-budget-left"
    assert daily["budget"] == 3 and daily["restarts"] >= 0.9
    assert daily["budget_left"] == round(3 - daily["restarts"], 3)
    assert 0 < probe_output(journal, "after", "end-to-end-lag-p99-within-slo-3") <= 10
    # The other replica kept serving CUJ-1 from the kill until the killed one recovered.
    cuj1 = probe_output(journal, "after", "cuj1-served-while-a-replica-was-down")
    assert cuj1["verdict"] == "PASS", cuj1
    # From the kill until the replica recovered, and at least the experiment's min_window_seconds.
    least = pod_kill_min_window_seconds()
    assert cuj1["window"]["seconds"] == pytest.approx(max(recovery, least), abs=0.01), (cuj1["window"], recovery)
    assert cuj1["window"]["ended_by"] == ("observation.recovered" if recovery > least else "min_seconds")
    assert cuj1["client"]["requests"] >= 200, cuj1
    assert probe_output(journal, "before", "cuj1-served-while-a-replica-was-down")["phase"] == "baseline"
    killed = journal["run"][0]["output"]["killed"]
    assert len(killed) == 1 and killed[0]["signal"] == "SIGKILL" and killed[0]["name"] in ("processor-0", "processor-1")
    verdict = subprocess.run([str(GAMEDAY), "verdict", str(run_dir / "01-processor-pod-kill" / "journal.json")],
                             capture_output=True, text=True)
    assert verdict.returncode == 0 and "verdict: PASS (exit 0)" in verdict.stdout, verdict.stdout


def test_the_game_days_partition_stalls_then_drains_with_nothing_lost(gameday):
    _, run_dir = gameday
    journal = _journal(run_dir, "04-kafka-partition")
    assert journal["deviated"] is False, unmet_probes(journal, "after")
    stall = probe_output(journal, "after", "processing-resumed-after-partition")
    # Held for 30 s: processing cannot resume before the heal, and must within the probe's budget after it.
    assert 29.0 <= stall["seconds"] <= 120, stall
    assert 0 < probe_output(journal, "after", "backlog-drained-after-heal") <= 60
    delivery = probe_output(journal, "after", "no-acknowledged-event-lost")
    assert delivery["lost"] == 0 and delivery["checked"] > 500, delivery  # ~1,000 at the game day's 10 events/s
    assert probe_output(journal, "after", "gpu-latest-equals-recomputed")["consistent"] is True
    # CUJ-1 needs no Kafka: judged over the partition itself, from both views.
    cuj1 = probe_output(journal, "after", "cuj1-served-during-the-partition")
    assert cuj1["verdict"] == "PASS" and cuj1["window"]["ended_by"] == "fault.healed", cuj1
    assert 29.0 <= cuj1["window"]["seconds"] <= 31.0, cuj1["window"]
    assert cuj1["client"]["requests"] >= 300 and cuj1["server"]["requests"] > 0, cuj1
    kinds = [json.loads(line)["kind"] for line in
             (run_dir / "04-kafka-partition" / "timeline.jsonl").read_text().splitlines() if line.strip()]
    assert "fault.partition" in kinds and "fault.healed" in kinds


def test_the_game_days_broker_crash_moves_every_leader_and_loses_nothing(stack, gameday):
    _, run_dir = gameday
    journal = _journal(run_dir, "14-kafka-broker-crash")
    assert journal["deviated"] is False, unmet_probes(journal, "after")
    killed = journal["run"][0]["output"]
    assert killed["signal"] == "SIGKILL" and killed["led_partitions"] == max(killed["leader_counts"].values())
    gaps = probe_output(journal, "after", "partition-write-unavailability-p95-within-10s")
    assert gaps["phase"] == "after" and gaps["partitions"] and set(gaps["partitions"]) <= {"0", "1", "2", "3"}, gaps
    assert 0 < gaps["p95"] <= 10 and gaps["producer_errors"] is not None, gaps
    in_sync = probe_output(journal, "after", "replicas-back-in-sync")
    # A node back within its broker session (4 s) is never fenced, so no ISR need shrink: seen in CI once the JVM
    # restarted in under 4 s (in sync 4.6 s after the kill, no partition ever under-replicated).
    assert 0 < in_sync["seconds"] <= 120 and in_sync["max_under_replicated"] >= 0, in_sync
    assert probe_output(journal, "after", "no-acknowledged-event-lost")["lost"] == 0
    nodes = httpx.get(stack.endpoints["control"] + "/instances", params={"component": "kafka"}).json()["instances"]
    node = next(n for n in nodes if n["name"] == killed["name"])
    assert node["restarts"] == 1 and node["ready"], node
    print(f"{killed['name']} (leading {killed['led_partitions']}) killed: write gaps {gaps['partitions']} s, "
          f"{gaps['producer_errors']} producer errors, in sync again after {in_sync['seconds']} s")


def test_the_game_days_broker_isolation_is_fenced_written_elsewhere_and_healed(stack, gameday):
    _, run_dir = gameday
    journal = _journal(run_dir, "15-kafka-broker-isolated")
    finding = write_gap_finding(journal)
    isolated = journal["run"][0]["output"]
    assert isolated["led_partitions"] == max(isolated["leader_counts"].values()), isolated
    assert set(isolated["active_controllers"]) <= set(isolated["leader_counts"]), isolated
    assert 29.5 <= isolated["healed_at"] - isolated["applied_at"] <= 31, isolated
    gaps = probe_output(journal, "after", WRITE_GAP_PROBE)
    assert gaps["fault"]["kind"] == "isolation" and gaps["fault"]["instance"] == isolated["isolate"], gaps
    assert 0 < gaps["p95"] <= (WRITE_GAP_FINDING_CEILING_S if finding else 10), gaps
    in_sync = probe_output(journal, "after", "replicas-back-in-sync-within-60s-of-the-heal")
    assert in_sync["fault"] == "isolation" and 0 <= in_sync["seconds"] <= 60, in_sync
    # The controller fenced the cut node (a new active controller, when the cut node was the old one, counted 2 for a
    # moment once), and the new leaders left it out of their in-sync replicas within the fault.
    assert in_sync["max_fenced"] >= 1 and 0 < in_sync["shrank_after"] < 30, in_sync
    assert in_sync["max_under_replicated"] >= 1, in_sync
    assert probe_output(journal, "after", "no-acknowledged-event-lost")["lost"] == 0
    assert not httpx.get(stack.endpoints["control"] + "/faults/kafka-partition").json().get("active")
    print(f"{isolated['isolate']} (leading {isolated['led_partitions']}, active controllers "
          f"{isolated['active_controllers']}) isolated for 30 s: write gaps {gaps['partitions']} s, "
          f"{gaps['producer_errors']} producer errors, ISRs shrank after {in_sync['shrank_after']} s, in sync "
          f"{in_sync['seconds']} s after the heal")
    if finding:
        warnings.warn(finding)


@pytest.mark.timeout(600)
def test_the_gate_passes_again_on_the_same_stack(stack, gameday, tmp_path):
    """What the game day left behind must not fail the next gate: every baseline is met, the alert drills pass,
    and the pod kill recovers, loses nothing, restarts nothing more than it killed, and CUJ-1 is served through
    it. The DR experiments' restores must leave the processor's indexes in place: when a replayed drop lost them,
    the restarted replica built them while serving, and the database held every /gpu/info read for seconds."""
    from pymongo import MongoClient

    with MongoClient(stack.endpoints["mongo_uri"], serverSelectionTimeoutMS=10000) as client:
        indexes = {ix["name"] for ix in client["ca3"]["events"].list_indexes()}
    assert {"produced_at_1", "written_at_1", "producer_id_1_seq_1"} <= indexes, indexes
    run_dir = tmp_path / "gate"
    with ProcSampler(stack.endpoints["control"], tmp_path / "mongo-proc-samples.jsonl") as sampler:
        result = _gate(stack, run_dir, timeout=500, quiet=False)
    sli_check = re.search(r"^SLI check PASS: (\d+) selectors of (\d+) SLOs have series$", result.stdout, re.MULTILINE)
    assert sli_check and int(sli_check[1]) >= 8 and int(sli_check[2]) >= 5, _failure(result, run_dir)
    rows = {name: outcome for outcome, _, name in VERDICT_ROW.findall(result.stdout)}
    assert list(rows) == ["processor-pod-kill.yaml", "burn-rate-alert-negative.yaml", "burn-rate-alert.yaml"], (
        _failure(result, run_dir))
    for experiment in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        journal = json.loads((experiment / "journal.json").read_text())
        assert journal["steady_states"]["before"]["steady_state_met"] is True, (experiment.name, unmet_probes(journal, "before"))

    journal = json.loads((run_dir / "01-processor-pod-kill" / "journal.json").read_text())
    assert journal["experiment"]["title"].startswith("A processor replica crashes")
    cuj1 = probe_output(journal, "after", "cuj1-served-while-a-replica-was-down") or {}
    window = cuj1.get("window") or {"start": sampler.samples[0]["at"], "end": sampler.samples[-1]["at"]}
    database = "\n".join(sampler.around(window["start"], window["end"]))
    print(f"CUJ-1 during the second gate's pod kill: {json.dumps(cuj1)[:2000]}")
    assert unmet_probes(journal, "after") == {}, f"{unmet_probes(journal, 'after')}\nthe database meanwhile:\n{database[:4000]}"
    assert cuj1["verdict"] == "PASS" and cuj1["server_p95_s"] <= 0.2 and cuj1["client_availability"] >= 0.995, cuj1
    assert set(rows.values()) == {"PASS"} and result.returncode == 0, _failure(result, run_dir)
    recovered = [p for p in journal["steady_states"]["after"]["probes"]
                 if p["activity"]["name"] == "processor-recovered-within-failover-budget"][0]
    assert 0.5 < recovered["output"] <= 30
    timeline = (run_dir / "01-processor-pod-kill" / "timeline.jsonl").read_text()
    assert '"kind": "fault.kill"' in timeline


@pytest.mark.timeout(600)
def test_a_partition_whose_drain_budget_is_too_tight_deviates(stack, tmp_path, chaos_run):
    """Planted failure: a 10 s partition cannot drain its backlog within 1 ms."""
    experiment = yaml.safe_load((REPO / "experiments" / "kafka-partition.yaml").read_text())
    experiment["method"][0]["provider"]["arguments"]["ttl_seconds"] = 10
    for probe in experiment["steady-state-hypothesis"]["probes"]:
        if probe["name"] == "backlog-drained-after-heal":
            probe["tolerance"]["range"] = [0, 0.001]
    planted = tmp_path / "too-tight.yaml"
    planted.write_text(yaml.safe_dump(experiment, sort_keys=False))
    proc, journal = chaos_run(planted, tmp_path / "run", stack.endpoints["control"])
    assert journal["steady_states"]["before"]["steady_state_met"] is True, unmet_probes(journal, "before")
    assert journal["deviated"] is True, proc.stdout[-3000:]
    assert proc.returncode == 1
    assert "backlog-drained-after-heal" in unmet_probes(journal, "after")
