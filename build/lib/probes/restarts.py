"""The restart budget (SLO-4): processor pods restart fewer than 3 times a day.

How restarts are counted, on both targets, with the seed's PromQL unchanged:
- Locally the stack runner exports ``kube_pod_container_status_restarts_total`` for each replica it supervises,
  counting every time it starts a replica's process again, as the kubelet counts container restarts. A pod kill
  (SIGKILL or SIGTERM to the replica) is therefore one restart.
- On Kubernetes, kube-state-metrics exports the kubelet's own ``restartCount``. A container that dies and is
  restarted in place counts; a pod deleted (chaosk8s ``terminate_pods``) is replaced by a *new* pod, whose
  counter starts at 0, and the old pod's series ends. ``increase`` over the window sees neither as a restart,
  which is what SLO-4 means: the budget is about crash loops, not rescheduling. An experiment that wants a
  deletion to count must measure it with the recovery probes instead.

Two questions, two probes (docs/slos.md, "SLO-4 in experiments"):
- ``processor_restarts_explained`` judges what the experiment can cause: the restarts counted during this run
  equal the restarts its own kills should cause (``fault.kill`` events in the run's timeline), no more, no fewer.
  It compares the raw counter at the run's start and now, series by series, so it is exact (no ``increase()``
  extrapolation) and does not see restarts from before the run, earlier runs or earlier stacks.
- ``slo4_daily_restarts`` reports SLO-4's own figure (the seed's ``increase(...[24h])``) and the budget left, as
  evidence. On a long-lived stack a scheduled game day that kills one replica a run spends that budget by itself
  (the third run of the day reaches 3): true of SLO-4, not of the experiment, so experiments record it, not judge it.
"""
from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import InvalidArgument, NoData
from chaoslib_ext.targets import from_configuration
from probes._clients import prometheus_query, prometheus_scalar

__all__ = [
    "processor_restarts", "processor_restarts_during_run", "processor_restarts_counted",
    "processor_restarts_explained", "slo4_daily_restarts",
]

RESTARTS_QUERY = (
    'sum(increase(kube_pod_container_status_restarts_total{{namespace="app",pod=~"processor-.*"}}[{window}]))'
)
"""SLO-4's query from the seed, summed over replicas."""

_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")


def processor_restarts(window: str = "24h", configuration: Configuration = None, secrets: Secrets = None) -> float:
    """Processor restarts over ``window`` (a Prometheus duration such as ``5m`` or ``24h``), by SLO-4's PromQL.

    ``increase`` extrapolates, so the value may be fractional. No series at all raises NoData: a missing
    restart metric is not zero restarts.
    """
    if not isinstance(window, str) or not _DURATION.match(window):
        raise InvalidArgument(f"window must be a Prometheus duration such as '5m' or '24h', got {window!r}")
    with from_configuration(configuration, secrets) as target:
        return round(prometheus_scalar(target, RESTARTS_QUERY.format(window=window)), 3)


def processor_restarts_during_run(configuration: Configuration = None, secrets: Secrets = None) -> float:
    """Processor restarts since this experiment started (the timeline's ``run.started``), by SLO-4's PromQL over
    a window of that length. Raises NoData outside an experiment run."""
    started = timeline.run_started_at(configuration)
    if started is None:
        raise NoData("no run.started in the timeline: add the chaoslib_ext.controls control to the experiment")
    seconds = max(1, math.ceil(time.time() - started))
    return processor_restarts(window=f"{seconds}s", configuration=configuration, secrets=secrets)


def processor_restarts_counted(configuration: Configuration = None, secrets: Secrets = None) -> int:
    """Restarts of every processor replica since the stack started, as the supervisor counted them."""
    with from_configuration(configuration, secrets) as target:
        return sum(i.restarts for i in target.instances("processor"))


SLO4_DAILY_BUDGET = 3
"""SLO-4: processor pods restart fewer than 3 times a day."""

SERIES = 'kube_pod_container_status_restarts_total{namespace="app",pod=~"processor-.*"}'
SERIES_KEY = ("namespace", "pod", "container", "uid")
"""What identifies one container's counter. Not ``instance`` or ``job``: a restarted kube-state-metrics (a new
pod IP) would otherwise look like new containers with old counts. ``uid`` (Kubernetes only) makes a pod deleted
and recreated under the same name a new series."""
COUNTER_AT_START = f"max by ({', '.join(SERIES_KEY)}) ({SERIES})"
COUNTER_LAST_IN_RUN = f"max by ({', '.join(SERIES_KEY)}) (last_over_time({SERIES}[SECONDSs]))"
"""Every series with a sample during the run, with its last value: a deleted pod's series ended during the run
but its restarts before the deletion still count."""

SeriesKey = tuple[str, ...]


def _by_series(result: Iterable[dict]) -> dict[SeriesKey, float]:
    return {tuple(r["metric"].get(k, "") for k in SERIES_KEY): float(r["value"][1]) for r in result}


def restarts_between(at_start: Mapping[SeriesKey, float], at_end: Mapping[SeriesKey, float]) -> int:
    """Restarts counted between two readings of the raw counter, series by series. A series new since the start (a
    new pod, or the first scrape of a new stack) counted from 0; a value lower than at the start is a counter reset,
    counted from 0 like Prometheus does. Series that ended before the start are not in ``at_end``: nothing of theirs
    happened during the run."""
    total = 0.0
    for key, end in at_end.items():
        start = at_start.get(key, 0.0)
        total += end - start if end >= start else end
    return int(round(total))


def processor_kills(kills: Iterable[dict]) -> list[dict]:
    """The ``fault.kill`` events of processor replicas (a run may also kill ``mongo``, which SLO-4 does not count)."""
    return [k for k in kills if str(k.get("instance", "")).startswith("processor-")]


def restarts_expected(kills: Iterable[dict]) -> int:
    """Restarts the run's processor ``fault.kill`` events should cause: one each, except a pod deleted on
    Kubernetes (``restart_expected: false``), which is replaced by a new pod whose counter starts at 0."""
    return sum(1 for k in processor_kills(kills) if k.get("restart_expected", True))


def explain_restarts(kills: list[dict], observed: int) -> dict:
    """The judgement, pure: ``unexplained`` restarts (more than the kills caused: a crash loop, a replica that
    died by itself) and ``uncounted`` ones (the kills' restarts the counter did not show) must both be 0."""
    kills = processor_kills(kills)
    expected = restarts_expected(kills)
    unexplained, uncounted = max(0, observed - expected), max(0, expected - observed)
    if unexplained:
        message = (f"processor restarts during this run: observed {observed}, but the run's kills explain only "
                   f"{expected}: {unexplained} unexplained (a crash loop?)")
    elif uncounted:
        message = (f"processor restarts during this run: observed {observed}, but the run's kills should have caused "
                   f"{expected}: {uncounted} not counted by kube_pod_container_status_restarts_total")
    else:
        message = f"processor restarts during this run: observed {observed}, expected {expected} from {len(kills)} kill(s)"
    return {"injected": len(kills), "expected": expected, "observed": observed, "unexplained": unexplained,
            "uncounted": uncounted, "killed": [k.get("instance") for k in kills], "message": message}


def processor_restarts_explained(settle_timeout: float = 30.0, configuration: Configuration = None,
                                 secrets: Secrets = None) -> dict:
    """Processor restarts during this run, compared with what the run's own kills explain.

    Observed: the raw ``kube_pod_container_status_restarts_total`` per container, at the run's start
    (``run.started`` in the timeline) and its last value since, differenced series by series (``restarts_between``).
    Expected: one restart per ``fault.kill`` recorded in this run (``chaoslib_ext.actions.pods``), none for a pod
    deleted on Kubernetes. Before the method there is no kill yet, so any restart since the start is unexplained.
    While fewer restarts are counted than expected, it waits up to ``settle_timeout`` seconds for the scrape.

    Returns ``{"injected", "expected", "observed", "unexplained", "uncounted", "killed", "message"}``; judge
    ``$["unexplained","uncounted"]`` == ``[0, 0]``. Raises NoData outside a run, when the method ran but recorded
    no kill, or when Prometheus has no restart series at all (a missing metric is not zero restarts).
    """
    settle_timeout = number("settle_timeout", settle_timeout, at_least=0, at_most=600)
    started = timeline.run_started_at(configuration)
    if started is None:
        raise NoData("no run.started in the timeline: add the chaoslib_ext.controls control to the experiment")
    kills = timeline.faults_of_this_run({"fault.kill"}, configuration,
                                        needed_for="the restarts the run caused cannot be told from others")
    with from_configuration(configuration, secrets) as target:
        at_start = _by_series(prometheus_query(target, COUNTER_AT_START, at=started))
        deadline = time.monotonic() + settle_timeout
        while True:
            seconds = max(1, math.ceil(time.time() - started) + 1)
            at_end = _by_series(prometheus_query(target, COUNTER_LAST_IN_RUN.replace("SECONDS", str(seconds))))
            if not at_end:
                raise NoData(f"Prometheus has no {SERIES} series during this run: the restart metric is missing")
            report = explain_restarts(kills, restarts_between(at_start, at_end))
            if not report["uncounted"] or time.monotonic() >= deadline:
                return report
            time.sleep(1.0)


def slo4_daily_restarts(window: str = "24h", configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """SLO-4's figure by the seed's query over ``window`` and the daily budget left, as evidence for the journal
    and the report: ``{"restarts", "window", "budget", "budget_left", "within_budget", "query"}``.

    Not a judgement of the experiment (see the module docstring): on a long-lived stack it includes every other
    restart of the day, the earlier runs' kills among them. Raises NoData when there is no restart series.
    """
    restarts = processor_restarts(window=window, configuration=configuration, secrets=secrets)
    return {"restarts": restarts, "window": window, "budget": SLO4_DAILY_BUDGET,
            "budget_left": round(SLO4_DAILY_BUDGET - restarts, 3), "within_budget": restarts < SLO4_DAILY_BUDGET,
            "query": RESTARTS_QUERY.format(window=window)}
