"""The restart probes: what a run's kills explain, judged from the raw counter, and SLO-4's daily figure."""
from __future__ import annotations

import contextlib

import pytest

from chaoslib_ext import timeline
from chaoslib_ext.controls import before_experiment_control, before_method_control
from chaoslib_ext.errors import NoData
from probes import restarts
from probes.restarts import explain_restarts, processor_restarts_explained, restarts_between

P0 = ("app", "processor-0", "processor", "")
P1 = ("app", "processor-1", "processor", "")


def kill(instance: str = "processor-0", **extra) -> dict:
    return {"kind": "fault.kill", "instance": instance, **extra}


def test_restarts_are_the_counter_differences_series_by_series():
    assert restarts_between({P0: 4, P1: 2}, {P0: 5, P1: 2}) == 1
    # A series new since the start (a new pod, a new stack's first scrape) counts from 0.
    assert restarts_between({P0: 4}, {P0: 4, P1: 1}) == 1
    # A drop is a counter reset (the runner restarted): counted from 0, never negative.
    assert restarts_between({P0: 4}, {P0: 1}) == 1
    # A series that ended before the run (not in the run's readings) adds nothing.
    assert restarts_between({P0: 4, P1: 9}, {P0: 4}) == 0


def test_a_kill_that_restarted_once_is_explained():
    report = explain_restarts([kill()], observed=1)
    assert {k: report[k] for k in ("injected", "expected", "observed", "unexplained", "uncounted")} == {
        "injected": 1, "expected": 1, "observed": 1, "unexplained": 0, "uncounted": 0}
    assert report["message"] == "processor restarts during this run: observed 1, expected 1 from 1 kill(s)"


def test_more_restarts_than_kills_are_unexplained_and_named():
    report = explain_restarts([kill()], observed=3)
    assert (report["unexplained"], report["uncounted"]) == (2, 0)
    assert report["message"] == ("processor restarts during this run: observed 3, but the run's kills explain only 1: "
                                 "2 unexplained (a crash loop?)")


def test_a_kill_the_counter_did_not_show_is_uncounted():
    report = explain_restarts([kill(), kill("processor-1")], observed=1)
    assert (report["expected"], report["unexplained"], report["uncounted"]) == (2, 0, 1)
    assert "should have caused 2: 1 not counted" in report["message"]


def test_a_deleted_pod_and_a_database_kill_expect_no_processor_restart():
    kills = [kill(restart_expected=False), kill("mongo")]
    report = explain_restarts(kills, observed=0)
    assert (report["injected"], report["expected"], report["unexplained"]) == (1, 0, 0)


@pytest.fixture
def config(tmp_path):
    return {"gameday_timeline": str(tmp_path / "timeline.jsonl"), "local_control_url": "http://127.0.0.1:9"}


class FakePrometheus:
    """Answers the probe's two queries: the counter at the run's start, and its last value in the run, which
    ``after`` replaces after ``lag`` readings (the scrape that has not happened yet)."""

    def __init__(self, start: dict, now: dict, lag: int = 0, later: dict | None = None):
        self.start, self.now, self.lag, self.later = start, now, lag, later
        self.calls: list[tuple[str, float | None]] = []

    def __call__(self, target, promql, timeout=5.0, at=None):
        self.calls.append((promql, at))
        if at is not None:
            values = self.start
        else:
            readings = sum(1 for _, a in self.calls if a is None)
            values = self.later if self.later is not None and readings > self.lag else self.now
        return [{"metric": {"namespace": k[0], "pod": k[1], "container": k[2], "instance": "x"}, "value": [0, str(v)]}
                for k, v in values.items()]


@pytest.fixture
def prometheus(monkeypatch):
    monkeypatch.setattr(restarts, "from_configuration", lambda c, s: contextlib.nullcontext())

    def install(fake: FakePrometheus) -> FakePrometheus:
        monkeypatch.setattr(restarts, "prometheus_query", fake)
        monkeypatch.setattr(restarts.time, "sleep", lambda s: None)
        return fake

    return install


def test_before_the_method_any_restart_since_the_start_is_unexplained(config, prometheus):
    before_experiment_control({"title": "t"}, configuration=config)
    fake = prometheus(FakePrometheus(start={P0: 2, P1: 0}, now={P0: 2, P1: 0}))
    assert processor_restarts_explained(configuration=config)["observed"] == 0
    # The start reading is taken at the run's start, not now.
    assert [at for _, at in fake.calls] == [timeline.run_started_at(config), None]
    prometheus(FakePrometheus(start={P0: 2, P1: 0}, now={P0: 4, P1: 0}))
    assert processor_restarts_explained(configuration=config)["unexplained"] == 2


def test_after_the_kill_it_waits_for_the_scrape_that_counts_it(config, prometheus):
    before_experiment_control({"title": "t"}, configuration=config)
    before_method_control(None, configuration=config)
    timeline.record("fault.kill", config, instance="processor-1", restart_expected=True)
    fake = prometheus(FakePrometheus(start={P0: 0, P1: 0}, now={P0: 0, P1: 0}, lag=2, later={P0: 0, P1: 1}))
    report = processor_restarts_explained(settle_timeout=30, configuration=config)
    assert (report["observed"], report["unexplained"], report["uncounted"]) == (1, 0, 0)
    assert sum(1 for _, at in fake.calls if at is None) == 3


def test_after_the_method_without_a_kill_or_without_series_is_no_data(config, prometheus):
    before_experiment_control({"title": "t"}, configuration=config)
    before_method_control(None, configuration=config)
    with pytest.raises(NoData, match="no fault.kill was recorded in this run"):
        processor_restarts_explained(configuration=config)
    timeline.record("fault.kill", config, instance="processor-0")
    prometheus(FakePrometheus(start={}, now={}))
    with pytest.raises(NoData, match="no kube_pod_container_status_restarts_total.* series during this run"):
        processor_restarts_explained(settle_timeout=0, configuration=config)


def test_outside_a_run_is_no_data(config):
    with pytest.raises(NoData, match="no run.started in the timeline"):
        processor_restarts_explained(configuration=config)


def test_the_daily_figure_reports_the_budget_left(monkeypatch):
    monkeypatch.setattr(restarts, "processor_restarts", lambda window, configuration, secrets: 2.4)
    report = restarts.slo4_daily_restarts()
    assert report == {"restarts": 2.4, "window": "24h", "budget": 3, "budget_left": 0.6, "within_budget": True,
                      "query": restarts.RESTARTS_QUERY.format(window="24h")}
    monkeypatch.setattr(restarts, "processor_restarts", lambda window, configuration, secrets: 3.0)
    assert restarts.slo4_daily_restarts()["within_budget"] is False
