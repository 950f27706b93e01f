"""kafka-broker-crash.yaml through the real `chaos run` CLI, on a stack of three Apache Kafka nodes: the busiest
leader is SIGKILLed, and the journal holds the measured write unavailability per partition, the time until every
replica is in sync again, and zero lost events. Each is asserted on its measured value, so the experiment's
tolerances are checked against what was measured, not only its verdict."""
from __future__ import annotations

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
EXPERIMENT = REPO / "experiments" / "kafka-broker-crash.yaml"


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
    proc, journal = chaos_run(EXPERIMENT, tmp_path / "run", control, timeout=420)
    assert journal["status"] == "completed" and journal["deviated"] is False, proc.stdout[-3000:]
    assert proc.returncode == 0
    killed = journal["run"][0]["output"]
    assert killed["signal"] == "SIGKILL" and killed["led_partitions"] == max(killed["leader_counts"].values())
    gaps = probe_output(journal, "partition-write-unavailability-p95-within-10s")
    assert gaps["phase"] == "after" and gaps["partitions"] and set(gaps["partitions"]) <= {"0", "1", "2", "3"}, gaps
    assert 0 < gaps["p95"] <= 10 and gaps["producer_errors"] is not None, gaps
    in_sync = probe_output(journal, "replicas-back-in-sync")
    assert 0 < in_sync["seconds"] <= 120 and in_sync["max_under_replicated"] > 0, in_sync
    assert probe_output(journal, "no-acknowledged-event-lost")["lost"] == 0
    node = next(n for n in httpx.get(control + "/instances", params={"component": "kafka"}).json()["instances"]
                if n["name"] == killed["name"])
    assert node["restarts"] == 1 and node["ready"], node
    print(f"{killed['name']} (leading {killed['led_partitions']}) killed: write gaps {gaps['partitions']} s, "
          f"{gaps['producer_errors']} producer errors, in sync again after {in_sync['seconds']} s")
