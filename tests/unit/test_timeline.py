from chaoslib_ext import timeline
from chaoslib_ext.controls import after_method_control, before_experiment_control, before_method_control
from probes.recovery import processor_recovery_seconds
from chaoslib_ext.errors import NoData

import pytest


@pytest.fixture
def config(tmp_path):
    return {"gameday_timeline": str(tmp_path / "timeline.jsonl"), "local_control_url": "http://127.0.0.1:9"}


def test_current_run_starts_at_the_newest_marker(config):
    timeline.record("fault.kill", config, at=1.0, instance="processor-0")
    timeline.record("run.started", config, at=2.0)
    timeline.record("fault.kill", config, at=3.0, instance="processor-1")
    run = timeline.current_run(config)
    assert [e["kind"] for e in run] == ["run.started", "fault.kill"]
    assert timeline.run_started_at(config) == 2.0
    assert timeline.last("fault.", config)["instance"] == "processor-1"


def test_recovery_before_the_method_is_zero_and_after_a_missing_fault_is_no_data(config):
    before_experiment_control({"title": "t"}, configuration=config)
    # Before the method nothing is broken; the probe must not touch the (unreachable) target.
    assert processor_recovery_seconds(configuration=config) == 0.0
    before_method_control(None, configuration=config)
    after_method_control(None, configuration=config)
    with pytest.raises(NoData, match="no fault.kill was recorded in this run"):
        processor_recovery_seconds(configuration=config)


def test_restarts_during_a_run_needs_the_run_marker(config):
    from probes.restarts import processor_restarts_during_run

    with pytest.raises(NoData, match="no run.started in the timeline"):
        processor_restarts_during_run(configuration=config)
