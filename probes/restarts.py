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
"""
from __future__ import annotations

import math
import re
import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.errors import InvalidArgument, NoData
from chaoslib_ext.targets import from_configuration
from probes._clients import prometheus_scalar

__all__ = ["processor_restarts", "processor_restarts_during_run", "processor_restarts_counted"]

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
    target = from_configuration(configuration, secrets)
    try:
        return round(prometheus_scalar(target, RESTARTS_QUERY.format(window=window)), 3)
    finally:
        target.close()


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
    target = from_configuration(configuration, secrets)
    try:
        return sum(i.restarts for i in target.instances("processor"))
    finally:
        target.close()
