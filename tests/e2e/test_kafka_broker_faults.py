"""The broker experiments through the real `chaos run` CLI, on one stack of three Apache Kafka nodes: the busiest
leader is SIGKILLed (kafka-broker-crash.yaml), then isolated from the other nodes (kafka-broker-isolated.yaml). Each
journal holds the measured write unavailability per partition, the time until every replica is in sync again, and
zero lost events. Each is asserted on its measured value, so the experiments' tolerances are checked against what
was measured, not only their verdicts."""
from __future__ import annotations

import warnings
from pathlib import Path

import httpx
import pytest
from test_processor_pod_kill import wait_until_warm

from stack.local.api import LocalStack
from stack.local.kraft import KafkaNotInstalled, java_binary, jmx_exporter_agent, kafka_libs


def _kafka_missing() -> str | None:
    try:
        kafka_libs(), jmx_exporter_agent(), java_binary()
    except KafkaNotInstalled as exc:
        return str(exc)
    return None


MISSING = _kafka_missing()
pytestmark = [pytest.mark.e2e]
if MISSING:
    pytestmark.append(pytest.mark.skip(reason=f"no Kafka cluster here: {MISSING}"))

REPO = Path(__file__).resolve().parents[2]
CRASH = REPO / "experiments" / "kafka-broker-crash.yaml"
ISOLATION = REPO / "experiments" / "kafka-broker-isolated.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("kafka-cluster"), timeout=240,
                    runner_args=("--kafka-brokers", "3")) as running:
        wait_until_warm(running.endpoints["control"])
        yield running


def probe_output(journal: dict, name: str) -> dict:
    runs = [r for r in journal["steady_states"]["after"]["probes"] if r["activity"]["name"] == name]
    assert runs, [r["activity"]["name"] for r in journal["steady_states"]["after"]["probes"]]
    return runs[0]["output"]


def test_the_busiest_leader_crashes_and_the_cluster_heals_with_nothing_lost(stack, tmp_path, chaos_run):
    control = stack.endpoints["control"]
    proc, journal = chaos_run(CRASH, tmp_path / "run", control, timeout=420)
    assert journal["status"] == "completed" and journal["deviated"] is False, proc.stdout[-3000:]
    assert proc.returncode == 0
    killed = journal["run"][0]["output"]
    assert killed["signal"] == "SIGKILL" and killed["led_partitions"] == max(killed["leader_counts"].values())
    gaps = probe_output(journal, "partition-write-unavailability-p95-within-10s")
    assert gaps["phase"] == "after" and gaps["partitions"] and set(gaps["partitions"]) <= {"0", "1", "2", "3"}, gaps
    assert 0 < gaps["p95"] <= 10 and gaps["producer_errors"] is not None, gaps
    in_sync = probe_output(journal, "replicas-back-in-sync")
    # A node back within its broker session (4 s) is never fenced, so no ISR shrinks: seen in CI once the JVM
    # restarted in under 4 s (in sync 4.6 s after the kill, no partition ever under-replicated).
    assert 0 < in_sync["seconds"] <= 120 and in_sync["max_under_replicated"] >= 0, in_sync
    assert probe_output(journal, "no-acknowledged-event-lost")["lost"] == 0
    node = next(n for n in httpx.get(control + "/instances", params={"component": "kafka"}).json()["instances"]
                if n["name"] == killed["name"])
    assert node["restarts"] == 1 and node["ready"], node
    print(f"{killed['name']} (leading {killed['led_partitions']}) killed: write gaps {gaps['partitions']} s, "
          f"{gaps['producer_errors']} producer errors, at most {in_sync['max_under_replicated']} partitions "
          f"under-replicated, in sync again after {in_sync['seconds']} s")


OPEN_FINDING = "partition-write-unavailability-p95-within-10s"
"""Reported, not asserted, while it stays open: in about half the runs a producer stays on the isolated node until
the heal, 25 to 32 s into the 30 s isolation. Its debug log showed the cut node publishing itself as the leader of a
partition it had not led, at a higher leader epoch than the rest of the cluster's, which the client trusts; the
node then refused every write for want of in-sync replicas (docs/benchmarks.md, "The wedge")."""


def test_the_busiest_leader_is_isolated_fenced_and_catches_up_with_nothing_lost(stack, tmp_path, chaos_run):
    control = stack.endpoints["control"]
    proc, journal = chaos_run(ISOLATION, tmp_path / "run", control, timeout=420)
    assert journal["status"] == "completed", proc.stdout[-3000:]
    unmet = [r["activity"]["name"] for r in journal["steady_states"]["after"]["probes"] if not r["tolerance_met"]]
    assert set(unmet) <= {OPEN_FINDING}, proc.stdout[-3000:]
    assert proc.returncode == (1 if unmet else 0)
    isolated = journal["run"][0]["output"]
    assert isolated["led_partitions"] == max(isolated["leader_counts"].values()), isolated
    assert set(isolated["active_controllers"]) <= set(isolated["leader_counts"]), isolated
    assert 29.5 <= isolated["healed_at"] - isolated["applied_at"] <= 31, isolated
    gaps = probe_output(journal, OPEN_FINDING)
    assert gaps["phase"] == "after" and gaps["fault"]["kind"] == "isolation", gaps
    assert gaps["fault"]["instance"] == isolated["isolate"] and 0 < gaps["p95"] <= 60, gaps
    in_sync = probe_output(journal, "replicas-back-in-sync-within-60s-of-the-heal")
    assert in_sync["fault"] == "isolation" and 0 <= in_sync["seconds"] <= 60, in_sync
    # The controller fenced the cut node (a new active controller, when the cut node was the old one, counted 2 for a
    # moment once), and the new leaders left it out of their in-sync replicas within the fault.
    assert in_sync["max_fenced"] >= 1 and 0 < in_sync["shrank_after"] < 30, in_sync
    assert in_sync["max_under_replicated"] >= 1, in_sync
    assert probe_output(journal, "no-acknowledged-event-lost")["lost"] == 0
    partition = httpx.get(control + "/faults/kafka-partition").json()
    assert not partition.get("active"), partition
    controller = "the active controller" if isolated["active_controllers"] == [isolated["isolate"]] else (
        f"active controller {', '.join(isolated['active_controllers']) or 'none'}")
    summary = (f"{isolated['isolate']} (leading {isolated['led_partitions']}; {controller}) isolated for 30 s: "
               f"write gaps {gaps['partitions']} s, {gaps['producer_errors']} producer errors, ISRs shrank after "
               f"{in_sync['shrank_after']} s, in sync {in_sync['seconds']} s after the heal")
    print(summary)
    if unmet:
        warnings.warn(f"open finding, a producer wedged on the isolated leader: {summary}")
