"""The report's reading of timelines and probe outputs: fault windows, measurements by output shape, burn."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from chaoslib_ext.gameday.report.model import (
    Measurement, ReportError, _fault_windows, _measurement_from, burn, load_run, merge_measurements,
)


def test_an_http_error_fault_lasts_until_its_heal():
    rows = [
        {"at": 100.0, "kind": "fault.http_errors", "ratio": 1.0, "status": 503, "expires_at": 160.0},
        {"at": 108.0, "kind": "fault.healed", "fault": "http_errors"},
    ]
    [window] = _fault_windows(rows, run_end=120.0)
    assert (window.start, window.end) == (100.0, 108.0)
    assert window.label == "http errors 1x503"


def test_an_unhealed_fault_ends_at_its_expiry_or_the_run_end():
    rows = [{"at": 100.0, "kind": "fault.partition", "between": ["processor"], "expires_at": 110.0}]
    assert _fault_windows(rows, run_end=130.0)[0].end == 110.0
    assert _fault_windows(rows, run_end=105.0)[0].end == 105.0


def test_a_kafka_partition_heal_matches_the_partition_fault():
    rows = [{"at": 100.0, "kind": "fault.partition", "between": ["processor"], "expires_at": 160.0},
            {"at": 104.5, "kind": "fault.healed", "fault": "kafka-partition"}]
    assert _fault_windows(rows, run_end=None)[0].end == 104.5


def test_a_kill_lasts_until_the_recovery_observation():
    rows = [{"at": 100.0, "kind": "fault.kill", "instance": "processor-1"},
            {"at": 112.9, "kind": "observation.recovered", "seconds": 12.9}]
    [window] = _fault_windows(rows, run_end=None)
    assert window.end == 112.9 and window.label == "kill processor-1"


def test_a_distribution_output_is_a_measurement_with_its_budget():
    output = {"phase": "after", "n": 3, "p50": 7.1, "p95": 13.0, "max": 13.7, "seconds": [13.7, 7.1, 6.6],
              "budget_seconds": 30.0}
    m = _measurement_from("failover", "01-x", output, None, True)
    assert (m.samples, m.p95, m.budget, m.within_budget) == ([13.7, 7.1, 6.6], 13.0, 30.0, True)


def test_a_distribution_over_budget_is_not_within():
    m = _measurement_from("rto", "01-x", {"p50": 20, "p95": 45, "max": 50, "budget_seconds": 30}, None, False)
    assert m.within_budget is False


def test_the_baseline_placeholder_is_not_a_measurement():
    assert _measurement_from("failover", "01-x", {"phase": "before", "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0},
                             None, True) is None


def test_a_number_with_a_range_tolerance_takes_the_upper_bound_as_budget():
    m = _measurement_from("recovered", "01-x", 12.9, {"type": "range", "range": [0, 30]}, True)
    assert (m.max, m.budget) == (12.9, 30.0)
    assert _measurement_from("status", "01-x", 200, 200, True) is None


def test_repeated_probes_merge_into_one_distribution():
    a = Measurement("rto", "01-a", [10.0], 10.0, 10.0, 10.0, 30.0, True)
    b = Measurement("rto", "02-b", [20.0, 40.0], 30.0, 40.0, 40.0, 30.0, False)
    [m] = merge_measurements([a, b])
    assert m.samples == [10.0, 20.0, 40.0] and m.p50 == 20.0 and m.max == 40.0
    assert m.within_budget is False and m.met is False


def test_burn_integrates_the_error_ratio(tmp_path):
    run = tmp_path / "01-x"
    run.mkdir()
    (run / "journal.json").write_text(json.dumps({"experiment": {"title": "t"}, "status": "completed",
                                                  "steady_states": {}, "run": [], "rollbacks": []}))
    samples = [{"at": 0.0, "availability": 1.0}, {"at": 10.0, "availability": 0.0}, {"at": 20.0, "availability": 1.0}]
    (run / "sli.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    evidence = load_run(tmp_path, secrets=set())
    result = burn(evidence, evidence.experiments[0])
    # 10 s at error ratio 1, against 0.5 % of 30 days of budget.
    assert result["budget_consumed_pct"] == pytest.approx(100 * 10 / (0.005 * 30 * 86400))
    assert result["peak_burn_rate"] == pytest.approx(200.0)


def test_a_directory_without_journals_is_refused(tmp_path):
    with pytest.raises(ReportError, match="holds no journal.json"):
        load_run(tmp_path)


def test_a_truncated_timeline_line_is_skipped(tmp_path):
    (tmp_path / "journal.json").write_text(json.dumps({"experiment": {"title": "t"}, "status": "completed",
                                                       "steady_states": {}, "run": [], "rollbacks": []}))
    (tmp_path / "timeline.jsonl").write_text('{"at": 1.0, "kind": "run.started"}\n{"at": 2.0, "kind": "fau')
    evidence = load_run(Path(tmp_path), secrets=set())
    assert [e.kind for e in evidence.experiments[0].events] == ["run.started"]


def test_a_method_probe_repeating_the_hypothesis_result_is_counted_once(tmp_path):
    fired = {"webhook_s": 8.1, "predicted_upper_s": 8.36, "within_prediction": True}
    probe = {"type": "probe", "tolerance": {"type": "range", "range": [0, 30]}}
    journal = {"experiment": {"title": "t"}, "status": "completed", "rollbacks": [],
               "steady_states": {"after": {"steady_state_met": True, "probes": [
                   {"activity": {"name": "fired", **probe}, "output": fired, "status": "succeeded"},
                   {"activity": {"name": "lag", **probe}, "output": 0, "status": "succeeded"},
                   {"activity": {"name": "restarts", **probe}, "output": 0, "status": "succeeded"}]}},
               "run": [{"activity": {"name": "watch", "type": "probe"}, "output": dict(fired), "status": "succeeded"}]}
    (tmp_path / "journal.json").write_text(json.dumps(journal))
    evidence = load_run(tmp_path, secrets=set())
    assert [m.name for m in evidence.measurements] == ["fired (webhook)", "lag", "restarts"]


def test_a_substitution_in_force_is_in_every_report(tmp_path):
    from chaoslib_ext.gameday.report import write_report
    from chaoslib_ext.gameday.report.model import SUBSTITUTIONS_FILE

    (tmp_path / "journal.json").write_text(json.dumps({"experiment": {"title": "t"}, "status": "completed",
                                                       "steady_states": {}, "run": [], "rollbacks": []}))
    note = "mongo: SecantusDB (deploy/kind/offline): no mongo image could be had"
    (tmp_path / SUBSTITUTIONS_FILE).write_text(json.dumps([note]))
    evidence, paths = write_report(tmp_path, secrets=set())
    assert evidence.substitutions == [note]
    texts = {p.name: p.read_text() for p in paths}
    assert f"**Substitution in force:** {note}" in texts["summary.md"]
    assert "<strong>Substitution in force:</strong> mongo: SecantusDB" in texts["report.html"]
    assert f'<property name="substitution" value="{note}" />' in texts["junit.xml"]


def test_without_a_substitution_the_reports_name_none(tmp_path):
    from chaoslib_ext.gameday.report import write_report

    (tmp_path / "journal.json").write_text(json.dumps({"experiment": {"title": "t"}, "status": "completed",
                                                       "steady_states": {}, "run": [], "rollbacks": []}))
    evidence, paths = write_report(tmp_path, secrets=set())
    assert evidence.substitutions == []
    assert not any("Substitution in force" in p.read_text() or 'name="substitution"' in p.read_text() for p in paths)
