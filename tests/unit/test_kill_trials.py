"""The failover trials' pure parts: when a consumer group counts as settled, argument checks before any kill,
and the failover probe's phases and finding."""
import pytest

from chaoslib_ext import timeline
from chaoslib_ext.actions.kill_trials import Assignment, kill_processor_pods_in_trials
from chaoslib_ext.controls import after_method_control, before_experiment_control, before_method_control
from chaoslib_ext.errors import InvalidArgument, NoData, TargetUnreachable
from probes.failover import _finding, failover_distribution

NOWHERE = {"target": "local", "local_control_url": "http://127.0.0.1:9"}


@pytest.fixture
def config(tmp_path):
    return {**NOWHERE, "gameday_timeline": str(tmp_path / "timeline.jsonl")}


JOINED = {"processor-0": 1, "processor-1": 1}


@pytest.mark.parametrize("owned, assignments, replicas, expected_total, settled", [
    ({"processor-0": 3, "processor-1": 3}, JOINED, 2, None, True),
    ({"processor-0": 3, "processor-1": 3}, JOINED, 2, 6, True),
    # Measured with cooperative-sticky (on the broker the stack ran before Kafka): the rejoined replica got nothing.
    ({"processor-0": 6, "processor-1": 0}, JOINED, 2, 6, True),
    ({"processor-0": 6, "processor-1": 0}, {"processor-0": 2, "processor-1": 0}, 2, 6, False),  # not joined yet
    ({"processor-0": 3}, {"processor-0": 1}, 2, 6, False),  # one replica not counted (not ready, or stale)
    ({"processor-0": 3, "processor-1": 2}, JOINED, 2, 6, False),  # a partition is owned by nobody
    ({"processor-0": 0, "processor-1": 0}, JOINED, 2, None, False),  # the stuck group: nothing assigned
])
def test_a_group_is_settled_when_every_replica_has_joined_and_every_partition_is_owned(
        owned, assignments, replicas, expected_total, settled):
    assert Assignment(owned, assignments).settled(replicas, expected_total) is settled


def test_balance_is_reported_not_required():
    assert Assignment({"a": 3, "b": 3}, {}).balanced and Assignment({"a": 3, "b": 2}, {}).balanced
    assert not Assignment({"a": 6, "b": 0}, {}).balanced


@pytest.mark.parametrize("kwargs, message", [
    ({"trials": 0}, "trials must be a whole number within \\[1, 100\\], got 0"),
    ({"trials": 2.5}, "trials must be a whole number within \\[1, 100\\], got 2.5"),
    ({"trials": True}, "trials must be a whole number within \\[1, 100\\], got True"),
    ({"signal": "SIGSTOP"}, "signal must be one of SIGKILL, SIGTERM, got 'SIGSTOP'"),
    ({"settle_seconds": -1}, "settle_seconds must be a number >= 0, got -1"),
    ({"settle_timeout": 0}, "settle_timeout must be a number >= 1, got 0"),
])
def test_trial_arguments_are_refused_before_reaching_the_target(kwargs, message):
    with pytest.raises(InvalidArgument, match=message):
        kill_processor_pods_in_trials(**kwargs, configuration=NOWHERE)


def test_good_trial_arguments_reach_for_the_target():
    with pytest.raises(TargetUnreachable, match="did not answer GET /instances"):
        kill_processor_pods_in_trials(trials=1, configuration=NOWHERE)


def test_the_distribution_is_a_zero_baseline_before_the_method_and_no_data_after_it_without_kills(config):
    before_experiment_control({"title": "t"}, configuration=config)
    baseline = failover_distribution("SIGKILL", configuration=config)  # must not touch the unreachable target
    assert baseline == {"phase": "before", "signal": "SIGKILL", "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0,
                        "budget_seconds": 30.0}
    before_method_control(None, configuration=config)
    after_method_control(None, configuration=config)
    with pytest.raises(NoData, match="no fault.kill was recorded in this run: no failover trial to measure"):
        failover_distribution("SIGKILL", configuration=config)


def test_kills_of_the_other_signal_only_are_no_data(config):
    before_experiment_control({"title": "t"}, configuration=config)
    before_method_control(None, configuration=config)
    timeline.record("fault.kill", config, signal="SIGTERM", instance="processor-0", trial=1)
    with pytest.raises(NoData, match="no fault.kill with SIGKILL was recorded in this run"):
        failover_distribution("SIGKILL", configuration=config)


def test_faults_of_this_run_ignores_earlier_runs(config):
    timeline.record("fault.kill", config, at=1.0)
    timeline.record("run.started", config, at=2.0)
    assert timeline.faults_of_this_run({"fault.kill"}, config) == []
    timeline.record("run.method_started", config, at=3.0)
    with pytest.raises(NoData, match="no fault.kill was recorded in this run: because"):
        timeline.faults_of_this_run({"fault.kill"}, config, "because")
    timeline.record("fault.kill", config, at=4.0, instance="processor-1")
    assert [e["instance"] for e in timeline.faults_of_this_run({"fault.kill"}, config)] == ["processor-1"]


def test_a_session_at_or_over_the_budget_is_named_as_the_cause_of_a_crash_finding():
    settings = {"session_timeout_ms": "45000", "heartbeat_interval_ms": "3000", "assignment_strategy": "range"}
    over = _finding({"p95": 47.2, "max": 48.0, "n": 3, "budget_seconds": 30.0}, "SIGKILL", settings)
    assert over.startswith("SIGKILL failover p95 47.2 s (max 48.0 s, n=3) EXCEEDS the 30 s platform budget")
    assert "session.timeout.ms=45000, heartbeat.interval.ms=3000, range" in over
    assert "cannot be within the budget; lower session.timeout.ms" in over
    within = _finding({"p95": 7.0, "max": 7.1, "n": 3, "budget_seconds": 30.0}, "SIGKILL",
                      {"session_timeout_ms": "6000"})
    assert "is within the 30 s platform budget; the processor runs session.timeout.ms=6000" in within
    assert "cannot" not in within
