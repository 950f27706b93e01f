"""The verdict must be able to fail: each outcome is planted in a journal and must be named."""
import copy
import json

import pytest

from chaoslib_ext.gameday.verdict import Outcome, judge, judge_file, overall

PROBE = {"activity": {"name": "api-healthy", "tolerance": 200}, "status": "succeeded", "output": 200,
         "tolerance_met": True}
PASSING = {
    "experiment": {"title": "t"},
    "status": "completed",
    "deviated": False,
    "steady_states": {
        "before": {"steady_state_met": True, "probes": [PROBE]},
        "after": {"steady_state_met": True, "probes": [PROBE]},
        "during": [],
    },
    "run": [{"activity": {"name": "kill"}, "status": "succeeded"}],
    "rollbacks": [],
}


def planted(**changes):
    journal = copy.deepcopy(PASSING)
    for path, value in changes.items():
        node = journal
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return journal


def test_a_clean_run_passes():
    assert judge(PASSING).outcome is Outcome.PASS


def test_baseline_not_met_is_not_a_pass_even_though_chaos_run_exits_0():
    failing = dict(PROBE, output=503, tolerance_met=False)
    journal = planted(steady_states__before={"steady_state_met": False, "probes": [failing]}, steady_states__after=None)
    result = judge(journal)
    assert result.outcome is Outcome.BASELINE_NOT_MET
    assert result.reasons == ["before: api-healthy = 503, tolerance 200"]


def test_deviation_names_the_probe_and_values():
    failing = dict(PROBE, activity={"name": "recovered-within-budget", "tolerance": {"type": "range", "range": [0, 30]}},
                   output=41.2, tolerance_met=False)
    journal = planted(deviated=True, steady_states__after={"steady_state_met": False, "probes": [failing]})
    result = judge(journal)
    assert result.outcome is Outcome.DEVIATED
    assert "recovered-within-budget = 41.2" in result.reasons[0]


def test_a_failed_method_activity_fails_the_run():
    journal = planted(run=[{"activity": {"name": "kill"}, "status": "failed",
                            "exception": ["Traceback...\n", "chaoslib_ext.errors.InvalidArgument: count must be >= 1\n"]}])
    result = judge(journal)
    assert result.outcome is Outcome.ACTIVITY_FAILED
    assert result.reasons == ["kill: chaoslib_ext.errors.InvalidArgument: count must be >= 1"]


def test_unreachable_target_is_its_own_outcome():
    broken = dict(PROBE, status="failed", tolerance_met=False, output=None,
                  exception=["chaoslib_ext.errors.TargetUnreachable: control API at http://127.0.0.1:1 did not answer"])
    journal = planted(steady_states__before={"steady_state_met": False, "probes": [broken]})
    assert judge(journal).outcome is Outcome.TARGET_UNREACHABLE


def test_interrupted_run():
    assert judge(planted(status="interrupted")).outcome is Outcome.INTERRUPTED


def test_missing_after_hypothesis_is_not_a_pass():
    assert judge(planted(steady_states__after=None)).outcome is Outcome.ACTIVITY_FAILED


def test_unreadable_journal(tmp_path):
    bad = tmp_path / "journal.json"
    bad.write_text("{not json")
    assert judge_file(bad).outcome is Outcome.INVALID_JOURNAL
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"hello": 1}))
    assert "not a Chaos Toolkit journal" in judge_file(other).reasons[0]


@pytest.mark.parametrize(
    "outcomes, expected",
    [
        ([Outcome.PASS, Outcome.PASS], Outcome.PASS),
        ([Outcome.PASS, Outcome.DEVIATED, Outcome.ACTIVITY_FAILED], Outcome.DEVIATED),
        ([Outcome.DEVIATED, Outcome.BASELINE_NOT_MET], Outcome.BASELINE_NOT_MET),
        ([], Outcome.INVALID_JOURNAL),
    ],
)
def test_overall_takes_the_most_severe(outcomes, expected):
    from chaoslib_ext.gameday.verdict import Verdict

    assert overall([Verdict("x", o) for o in outcomes]) is expected
