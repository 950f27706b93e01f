"""kafka-partition.yaml through the real `chaos run`, against this module's own local stack."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stack.local.api import LocalStack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXPERIMENT = REPO / "experiments" / "kafka-partition.yaml"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with LocalStack(state_dir=tmp_path_factory.mktemp("partition-stack")) as running:
        yield running


def after(journal: dict, probe: str):
    return next(p["output"] for p in journal["steady_states"]["after"]["probes"] if p["activity"]["name"] == probe)


def test_partition_stalls_then_drains_with_nothing_lost(stack, tmp_path, chaos_run):
    proc, journal = chaos_run(EXPERIMENT, tmp_path / "run", stack.endpoints["control"])
    assert journal["status"] == "completed" and journal["deviated"] is False, proc.stdout[-4000:]
    assert proc.returncode == 0

    stall = after(journal, "processing-resumed-after-partition")
    # Held for 30 s: processing cannot resume before the heal, and must within the probe's budget after it.
    assert 29.0 <= stall["seconds"] <= 120, stall
    drain = after(journal, "backlog-drained-after-heal")
    assert 0 < drain <= 60
    delivery = after(journal, "no-acknowledged-event-lost")
    assert delivery["lost"] == 0 and delivery["checked"] > 1000
    assert after(journal, "gpu-latest-equals-recomputed")["consistent"] is True
    # CUJ-1 needs no Kafka: judged over the partition itself, from both views.
    cuj1 = after(journal, "cuj1-served-during-the-partition")
    print(f"CUJ-1 over the {cuj1['window']['seconds']} s partition: client {cuj1['client_availability']} "
          f"p95 {cuj1['client_p95_s']} s ({cuj1['client']['requests']} requests); server "
          f"{cuj1['server_availability']} p95 {cuj1['server_p95_s']} s ({cuj1['server']['requests']} requests)")
    assert cuj1["verdict"] == "PASS" and cuj1["window"]["ended_by"] == "fault.healed", cuj1
    assert 29.0 <= cuj1["window"]["seconds"] <= 31.0, cuj1["window"]
    assert cuj1["client"]["requests"] >= 300 and cuj1["server"]["requests"] > 0, cuj1

    kinds = [json.loads(line)["kind"] for line in (tmp_path / "run" / "timeline.jsonl").read_text().splitlines()]
    assert "fault.partition" in kinds and "fault.healed" in kinds


def test_a_drain_budget_too_tight_deviates(stack, tmp_path, chaos_run):
    """Planted failure: a 10 s partition cannot drain its backlog within 1 ms."""
    experiment = yaml.safe_load(EXPERIMENT.read_text())
    experiment["method"][0]["provider"]["arguments"]["duration"] = 10
    for probe in experiment["steady-state-hypothesis"]["probes"]:
        if probe["name"] == "backlog-drained-after-heal":
            probe["tolerance"]["range"] = [0, 0.001]
    planted = tmp_path / "too-tight.yaml"
    planted.write_text(yaml.safe_dump(experiment, sort_keys=False))
    proc, journal = chaos_run(planted, tmp_path / "run", stack.endpoints["control"])
    assert journal["deviated"] is True, proc.stdout[-3000:]
    assert proc.returncode == 1
