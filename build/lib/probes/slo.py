"""SLO probes: the seeds' SLIs read from Prometheus, each judged PASS, FAIL or NO_DATA against the spec.

The queries come from the one SLO spec (``deploy/monitoring/slos.yaml``) that also generates the alert rules, so
a probe and an alert can never measure two different things. Experiments judge a result with a jsonpath
tolerance on ``$.verdict`` (expect ``PASS``); "no samples" is NO_DATA, which is never a pass.
"""
from __future__ import annotations

from chaoslib_ext.sli import (
    availability_ratio,
    error_budget_remaining,
    latency_p95_seconds,
    processed_to_produced_ratio,
    sli_queries_have_data,
)

__all__ = [
    "availability_ratio",
    "latency_p95_seconds",
    "processed_to_produced_ratio",
    "error_budget_remaining",
    "sli_queries_have_data",
]
