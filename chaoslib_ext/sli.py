"""The seeds' SLIs read from Prometheus, each judged PASS, FAIL or NO_DATA against the SLO spec.

The queries come from the one SLO spec (``deploy/monitoring/slos.yaml``, or the configuration's ``slo_spec``)
that also generates the alert rules, so a measurement and an alert can never measure two different things. The
probes in ``probes.slo`` and the game day's SLI check and sampler all read them from here.
"""
from __future__ import annotations

import math
from decimal import Decimal

from chaoslib.types import Configuration, Secrets

from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.slo import spec as slo_spec
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.judge import SliVerdict, at_least, at_most, error_budget_status, presence_queries
from chaoslib_ext.slo.model import Catalog, EventsSLI, LatencySLI, ThresholdSLI
from chaoslib_ext.targets import Target, from_configuration
from chaoslib_ext.targets.prometheus import prometheus_query

__all__ = [
    "availability_ratio",
    "latency_p95_seconds",
    "processed_to_produced_ratio",
    "error_budget_remaining",
    "sli_queries_have_data",
    "catalog",
]

SEED_PROCESSED_PRODUCED = (
    "sum(rate(app_processed_messages_total[{window}]))\n/\nsum(rate(app_produced_messages_total[{window}]))"
)
"""SLO-3's proxy exactly as the CA3 seed writes it."""


def catalog(configuration: Configuration) -> Catalog:
    """The SLO catalogue the configuration names (``slo_spec``), or the default spec; InvalidArgument if bad."""
    path = slo_spec.configured_path(configuration)
    try:
        return slo_spec.load(path)
    except (OSError, slo_spec.SpecError) as exc:
        raise InvalidArgument(f"cannot load the SLO spec {path}: {exc}") from exc


def _window(window: str) -> Duration:
    try:
        return Duration.parse(window)
    except (ValueError, TypeError) as exc:
        raise InvalidArgument(f"window must be a Prometheus duration such as '5m', got {window!r}") from exc


def first_value(target: Target, query: str) -> float | None:
    """The first sample's value; None for no series or NaN (0/0 when nothing happened in the window)."""
    result = prometheus_query(target, query)
    if not result:
        return None
    value = float(result[0]["value"][1])
    return None if math.isnan(value) else value


def _query_value(query: str, configuration: Configuration, secrets: Secrets) -> float | None:
    with from_configuration(configuration, secrets) as target:
        return first_value(target, query)


def _result(slo: str, query: str, window: str, value: float | None, objective: str, verdict: SliVerdict) -> dict:
    return {
        "slo": slo, "window": window, "value": None if value is None else round(value, 6),
        "objective": objective, "verdict": verdict.value, "query": query,
    }


def availability_ratio(window: str = "5m", configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """SLO-1: the share of processor API requests (not /metrics) answered 2xx over ``window``, against 99.5 %."""
    duration = _window(window)
    slo = catalog(configuration).slo("processor-availability")
    assert isinstance(slo.sli, EventsSLI) and slo.objective is not None
    query = f"1 - (\n{slo.sli.error_ratio_query(duration)}\n)"
    value = _query_value(query, configuration, secrets)
    objective = float(slo.objective) / 100
    return _result(slo.name, query, window, value, f">= {objective}", at_least(value, objective))


def latency_p95_seconds(window: str = "5m", configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """SLO-2: p95 of processor API latency over ``window`` (the seed's histogram_quantile), against 0.2 s."""
    duration = _window(window)
    slo = catalog(configuration).slo("processor-latency")
    assert isinstance(slo.sli, LatencySLI)
    goal = slo.sli.target(Decimal("0.95"))
    assert goal is not None
    query = slo.sli.quantile_query(goal.quantile, duration)
    value = _query_value(query, configuration, secrets)
    limit = float(goal.max_seconds)
    return _result(slo.name, query, window, value, f"<= {limit}", at_most(value, limit))


def processed_to_produced_ratio(
    window: str = "1m", configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """SLO-3's proxy, with the seed's own PromQL: processed rate over produced rate, judged against the
    pipeline-throughput objective (99 %). Above 1 while a backlog drains; NO_DATA when nothing was produced."""
    _window(window)
    slo = catalog(configuration).slo("pipeline-throughput")
    assert slo.objective is not None
    query = SEED_PROCESSED_PRODUCED.format(window=window)
    value = _query_value(query, configuration, secrets)
    objective = float(slo.objective) / 100
    return _result(slo.name, query, window, value, f">= {objective}", at_least(value, objective))


def error_budget_remaining(
    slo: str = "processor-availability", window: str = "30d",
    configuration: Configuration = None, secrets: Secrets = None,
) -> dict:
    """How much of an events SLO's error budget is left over ``window`` (its period, 30d, by default; Prometheus
    uses whatever history it has), with the seed's budget-policy band: normal (> 50 %),
    prioritize-reliability (25–50 %), feature-freeze (10–25 %), emergency (< 10 %)."""
    duration = _window(window)
    slos = catalog(configuration)
    try:
        chosen = slos.slo(slo)
    except KeyError as exc:
        raise InvalidArgument(str(exc.args[0])) from exc
    if not isinstance(chosen.sli, EventsSLI) or chosen.error_budget is None:
        raise InvalidArgument(f"SLO {slo!r} is not an events SLO with an objective; it has no error budget to spend")
    query = chosen.sli.error_ratio_query(duration)
    error_ratio = _query_value(query, configuration, secrets)
    budget = float(chosen.error_budget)
    if error_ratio is None:
        return {"slo": slo, "window": window, "error_budget": budget, "error_ratio": None, "remaining_pct": None,
                "band": None, "verdict": SliVerdict.NO_DATA.value, "query": query}
    status = error_budget_status(max(error_ratio, 0.0), budget)
    return {
        "slo": slo, "window": window, "error_budget": budget, "error_ratio": round(error_ratio, 6),
        "remaining_pct": status.remaining_pct, "band": status.band, "action": status.action,
        "verdict": (SliVerdict.PASS if status.remaining_pct > 0 else SliVerdict.FAIL).value, "query": query,
    }


def _sli_queries(sli) -> list[str]:
    if isinstance(sli, EventsSLI):
        return [sli.error_query, sli.total_query]
    if isinstance(sli, LatencySLI):
        return [sli.bucket_query]
    if isinstance(sli, ThresholdSLI):
        return [sli.query]
    raise TypeError(f"unknown SLI type {type(sli).__name__}")


def sli_queries_have_data(
    services: list[str] | None = None, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Every served SLO of the deployed ``services`` (default: the CA3 pipeline) must select real series, with
    every label its matchers name. A rule against a label that does not exist returns no data, and its alert
    can never fire: that is a FAIL here, not a pass. Returns ``{"checked", "missing": [{"slo", "query"}], "verdict"}``.
    """
    if services is not None and (not isinstance(services, list) or not all(isinstance(s, str) for s in services)):
        raise InvalidArgument(f"services must be a list of service names, got {services!r}")
    served = catalog(configuration)
    slos = [s for s in served.for_services(services or ["processor"]) if s.served]
    checked: set[str] = set()
    missing = []
    with from_configuration(configuration, secrets) as target:
        for slo in slos:
            for raw in _sli_queries(slo.sli):
                for query in presence_queries(raw):
                    if query in checked:
                        continue
                    checked.add(query)
                    if not prometheus_query(target, query):
                        missing.append({"slo": slo.name, "query": query})
    verdict = SliVerdict.NO_DATA if not checked else (SliVerdict.FAIL if missing else SliVerdict.PASS)
    return {"checked": len(checked), "slos": [s.name for s in slos], "missing": missing, "verdict": verdict.value}
