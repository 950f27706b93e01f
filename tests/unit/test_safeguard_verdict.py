"""A run a safeguard aborted is judged SAFEGUARD_TRIPPED (exit 9), not a plain interruption; sweeping a fault
kind nobody can heal is a failure, never a silent success."""
from __future__ import annotations

import json

from chaoslib_ext.gameday.verdict import Outcome, Verdict, judge_file, overall
from chaoslib_ext.targets.base import sweep_faults


def _journal(tmp_path, status="interrupted"):
    journal = {
        "experiment": {"title": "planted"}, "status": status, "deviated": False,
        "steady_states": {"before": {"steady_state_met": True, "probes": []}, "after": None},
        "run": [], "rollbacks": [{"activity": {"name": "heal-the-api"}, "status": "succeeded"}],
    }
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    return tmp_path / "journal.json"


def test_an_interruption_with_a_safeguard_trip_is_safeguard_tripped(tmp_path):
    path = _journal(tmp_path)
    (tmp_path / "timeline.jsonl").write_text(json.dumps({
        "at": 1.0, "kind": "safeguard.tripped", "outage_seconds": 2.4,
        "reason": "processor API answered nothing but errors for 2.4 s (limit 2 s)"}) + "\n")
    verdict = judge_file(path)
    assert verdict.outcome is Outcome.SAFEGUARD_TRIPPED and verdict.outcome.exit_code == 9
    assert verdict.reasons == [
        "safeguard: processor API answered nothing but errors for 2.4 s (limit 2 s); experiment aborted",
        "rollbacks run: heal-the-api",
    ]


def test_an_interruption_without_a_trip_stays_interrupted(tmp_path):
    assert judge_file(_journal(tmp_path)).outcome is Outcome.INTERRUPTED


def test_a_safeguard_trip_outranks_an_interruption_and_a_deviation():
    outcomes = (Outcome.DEVIATED, Outcome.SAFEGUARD_TRIPPED, Outcome.INTERRUPTED)
    assert overall([Verdict("t", o) for o in outcomes]) is Outcome.SAFEGUARD_TRIPPED


class _Target:
    """Only what sweep_faults calls: a fault list and one healer."""

    kind = "fake"

    def __init__(self, faults):
        self.faults = faults
        self.healed = 0

    def active_faults(self):
        return self.faults

    def heal_http_errors(self):
        self.healed += 1


def test_every_fault_of_a_kind_is_healed_by_one_call_and_unknown_kinds_fail():
    target = _Target([{"kind": "http-errors", "n": 1}, {"kind": "http-errors", "n": 2}, {"kind": "disk-fill"}])
    result = sweep_faults(target)
    assert target.healed == 1
    assert [f["n"] for f in result["healed"]] == [1, 2]
    assert result["failed"] == [{"kind": "disk-fill", "error": "no healer for fault kind 'disk-fill'",
                                 "fault": {"kind": "disk-fill"}}]


def test_a_driver_with_its_own_sweep_is_asked_instead():
    class Kube(_Target):
        def sweep(self):
            return {"healed": [{"kind": "networkpolicy", "name": "chaos-partition-1"}], "failed": []}

    assert sweep_faults(Kube([]))["healed"][0]["name"] == "chaos-partition-1"


def test_a_stopped_component_is_started_again_by_name():
    class Holding(_Target):
        started: list = []

        def start_component(self, component):
            self.started.append(component)

    target = Holding([{"kind": "component-stopped", "component": "mongo"},
                      {"kind": "component-stopped", "component": "processor"}])
    result = sweep_faults(target)
    assert target.started == ["mongo", "processor"]
    assert [f["component"] for f in result["healed"]] == ["mongo", "processor"] and result["failed"] == []
