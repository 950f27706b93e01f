"""Judging measured SLIs: three-state verdicts, error budget left, the seed's budget-policy bands, and the
selectors a live check must find series for. Pure functions; the probes do the querying."""
from __future__ import annotations

import enum
import re
from dataclasses import dataclass


class SliVerdict(str, enum.Enum):
    """A measurement against its objective. "No samples" is NO_DATA, never PASS."""

    PASS = "PASS"
    FAIL = "FAIL"
    NO_DATA = "NO_DATA"


def at_least(value: float | None, objective: float) -> SliVerdict:
    if value is None:
        return SliVerdict.NO_DATA
    return SliVerdict.PASS if value >= objective else SliVerdict.FAIL


def at_most(value: float | None, limit: float) -> SliVerdict:
    if value is None:
        return SliVerdict.NO_DATA
    return SliVerdict.PASS if value <= limit else SliVerdict.FAIL


BUDGET_BANDS = (
    (50.0, "normal", "Normal development velocity"),
    (25.0, "prioritize-reliability", "Prioritize reliability work"),
    (10.0, "feature-freeze", "Feature freeze, focus on stability"),
    (float("-inf"), "emergency", "Emergency response, all hands on deck"),
)
"""The AI Active Trader seed's error budget policy: > 50 %, 25–50 %, 10–25 %, < 10 % remaining."""


@dataclass(frozen=True)
class BudgetStatus:
    remaining_pct: float
    """Share of the error budget not yet spent, in percent; negative once the budget is overspent."""
    band: str
    action: str


def error_budget_status(error_ratio: float, error_budget: float) -> BudgetStatus:
    """How much of ``error_budget`` (e.g. 0.005 for 99.5 %) an observed ``error_ratio`` has left unspent."""
    if not 0 < error_budget < 1:
        raise ValueError(f"error budget must be within (0, 1), got {error_budget}")
    if error_ratio < 0:
        raise ValueError(f"error ratio cannot be negative, got {error_ratio}")
    remaining = (1 - error_ratio / error_budget) * 100
    for floor, band, action in BUDGET_BANDS:
        # The seed's bands are "> 50 %", "25–50 %", ...: a boundary value belongs to the band below it.
        if remaining > floor:
            return BudgetStatus(round(remaining, 3), band, action)
    raise AssertionError("unreachable: the last band has no floor")


_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{([^{}]*)\}|(?=\[))")
"""A metric selector: a name with matchers, or a bare name followed by a range. Function names are followed by
``(`` and grouping labels sit inside ``by (...)``, so neither matches."""
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def presence_queries(promql: str) -> list[str]:
    """For every selector (``metric{...}`` or ``metric[range]``) in ``promql``, a query that has samples only when the metric exists
    with every label the selector matches on.

    A matcher on a label the series do not carry (the seed's ``status`` where starlette_exporter writes
    ``status_code``) selects nothing, and ``or vector(0)`` then hides it: the alert can never fire. Equality
    matchers are kept as they are; a regex or negative matcher is replaced by ``label!=""``, because it may
    legitimately match nothing today (no 5xx yet), while the label must exist.
    """
    queries = []
    bare = promql.strip()
    if re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare):
        return [f"count({bare})"]
    for metric, body in _SELECTOR.findall(promql):
        matchers = []
        for label, op, value in _MATCHER.findall(body):
            matchers.append(f'{label}="{value}"' if op == "=" else f'{label}!=""')
        query = f"count({metric}{{{', '.join(matchers)}}})"
        if query not in queries:
            queries.append(query)
    return queries
