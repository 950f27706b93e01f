"""The restart budget (SLO-4): processor pods restart fewer than 3 times a day.

Locally the stack runner exports ``kube_pod_container_status_restarts_total`` for each replica it supervises,
counting every time it starts a replica's process again, exactly as the kubelet counts container restarts. The
seed's PromQL therefore runs unchanged on both targets.
"""
from __future__ import annotations

import re

from chaoslib.types import Configuration, Secrets

from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration
from probes._clients import prometheus_scalar

__all__ = ["processor_restarts", "processor_restarts_counted"]

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


def processor_restarts_counted(configuration: Configuration = None, secrets: Secrets = None) -> int:
    """Restarts of every processor replica since the stack started, as the supervisor counted them."""
    target = from_configuration(configuration, secrets)
    try:
        return sum(i.restarts for i in target.instances("processor"))
    finally:
        target.close()
