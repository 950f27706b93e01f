"""The users' CI gate on kind (.github/workflows/resilience-gate.yml) is wired to the same cluster config, script and
CLI as a person at a terminal; it cannot run here, so its wiring is what we check."""
from __future__ import annotations

from pathlib import Path

import yaml

from chaoslib_ext.cli import build_parser

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = yaml.safe_load((REPO / ".github" / "workflows" / "resilience-gate.yml").read_text())
STEPS = WORKFLOW["jobs"]["gate"]["steps"]


def step(fragment: str) -> dict:
    [found] = [s for s in STEPS if fragment in s.get("uses", "") or fragment in s.get("run", "")]
    return found


def test_the_cluster_is_the_one_make_kind_up_would_create():
    kind = step("helm/kind-action")["with"]
    cluster = yaml.safe_load((REPO / "deploy" / "kind" / "cluster.yaml").read_text())
    assert kind["config"] == "deploy/kind/cluster.yaml" and kind["cluster_name"] == cluster["name"]
    assert STEPS.index(step("helm/kind-action")) < STEPS.index(step("make kind-up"))


def test_the_gate_runs_on_the_kubernetes_target_and_its_evidence_is_always_kept():
    gate = step("gameday gate")["run"].split()
    args = build_parser().parse_args(gate[1:] if gate[0].endswith("gameday") else gate)
    assert args.command == "gate" and args.target == "kubernetes" and args.run_dir == '"$RUN_DIR"'
    upload = step("actions/upload-artifact")
    assert upload["if"] == "always()" and upload["with"]["path"] == "${{ env.RUN_DIR }}"
    # The job fails with the gate: no continue-on-error anywhere.
    assert not any(s.get("continue-on-error") for s in STEPS)
