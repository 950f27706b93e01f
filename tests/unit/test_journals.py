"""The tests' journal readers and the broker faults' open finding, on hand-made journals of Chaos Toolkit's shape."""
from __future__ import annotations

import pytest
from broker_findings import WRITE_GAP_PROBE, write_gap_finding
from journals import probe_output, probe_outputs, unmet_probes


def probe(name: str, output, met: bool = True) -> dict:
    return {"activity": {"name": name}, "output": output, "tolerance_met": met}


def journal(after: list[dict], deviated: bool = False, before_met: bool = True) -> dict:
    return {"deviated": deviated,
            "steady_states": {"before": {"steady_state_met": before_met, "probes": [probe("lost", 0)]},
                              "after": {"steady_state_met": not deviated, "probes": after}},
            "run": [{"output": {"active_controllers": [3]}}]}


GAPS = {"p95": 10.14, "partitions": {"gpu-events/0": 9.82, "gpu-events/2": 10.15},
        "fault": {"kind": "crash", "instance": "kafka-2"}}


def test_outputs_are_read_by_probe_name_and_a_missing_probe_is_named():
    j = journal([probe("lost", 0), probe("lag", 4.2, met=False)], deviated=True)
    assert probe_outputs(j) == {"lost": 0, "lag": 4.2}
    assert probe_output(j, "before", "lost") == 0
    assert unmet_probes(j, "after") == {"lag": 4.2} and unmet_probes(j, "before") == {}
    with pytest.raises(AssertionError, match="probe 'rto' not in the after hypothesis"):
        probe_output(j, "after", "rto")


def test_a_journal_without_a_hypothesis_has_no_outputs():
    assert probe_outputs({"steady_states": {"before": None}}, "before") == {}
    assert unmet_probes({}, "after") == {}


def test_a_write_gap_a_little_over_ten_seconds_is_the_open_finding_and_names_the_node():
    j = journal([probe("lost", 0), probe(WRITE_GAP_PROBE, GAPS, met=False)], deviated=True)
    assert write_gap_finding(j) == (
        "open finding, a broker crash's writes moved late: kafka-2 (active controllers [3]), write gaps "
        "{'gpu-events/0': 9.82, 'gpu-events/2': 10.15} s, p95 10.14 s over the 10 s objective")
    assert write_gap_finding(journal([probe(WRITE_GAP_PROBE, GAPS)])) is None


@pytest.mark.parametrize("case", ["another probe unmet", "over the ceiling", "baseline not met"])
def test_anything_else_fails(case):
    gaps = {**GAPS, "p95": 25.0} if case == "over the ceiling" else GAPS
    probes = [probe(WRITE_GAP_PROBE, gaps, met=False)] + ([probe("lost", 3, met=False)]
                                                          if case == "another probe unmet" else [])
    with pytest.raises(AssertionError):
        write_gap_finding(journal(probes, deviated=True, before_met=case != "baseline not met"))
