"""Pure arithmetic behind the fault-window probes (probes.cuj1): which window a run's timeline says its faults were
in force, and what the API's availability and p95 were over it, from the load generator's outcomes (client side)
and from Prometheus' raw counter and histogram samples (server side). No I/O and no clocks: tested without a stack.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from probes.measure import quantile

HEALED_FAULT = {
    "fault.partition": "kafka-partition",
    "fault.database_outage": "database-outage",
    "fault.http_errors": "http_errors",
    "fault.provider": "provider",
}
"""Faults that end with a ``fault.healed`` event naming them (or, failing one, at their ``expires_at``)."""
NOT_USER_FACING = frozenset({"fault.corrupt_backup"})
"""Faults that start no window of their own: a corrupt backup harms nobody until a restore reads it, and the
disaster that needs the restore is a fault of its own."""
GOOD_STATUS = re.compile(r"2\d\d")
"""SLO-1's good events: 2xx (docs/slos.md keeps the seed's choice: 4xx count as errors)."""


@dataclass(frozen=True)
class FaultWindow:
    start: float
    end: float
    faults: tuple[str, ...]
    """The fault kinds in the window, oldest first."""
    ended_by: str
    """What closed the window: ``fault.healed``, ``expires_at``, ``observation.recovered``,
    ``observation.group_settled``, ``action.restore``, or ``open`` (nothing has said the fault ended: ends now)."""

    @property
    def seconds(self) -> float:
        return self.end - self.start

    def as_dict(self) -> dict:
        return {"start": round(self.start, 3), "end": round(self.end, 3), "seconds": round(self.seconds, 3),
                "faults": list(self.faults), "ended_by": self.ended_by}


def fault_ended(fault: dict, later: Sequence[dict]) -> tuple[float | None, str]:
    """When one fault stopped hurting, from the events after it, and what said so; (None, "open") if nothing has."""
    kind, at = fault["kind"], float(fault["at"])
    if kind in NOT_USER_FACING:
        return at, kind
    if kind in HEALED_FAULT:
        healed = next((e for e in later if e.get("kind") == "fault.healed" and e.get("fault") == HEALED_FAULT[kind]),
                      None)
        if healed is not None:
            return float(healed["at"]), "fault.healed"
        if fault.get("expires_at") is not None:
            return float(fault["expires_at"]), "expires_at"
        return None, "open"
    if kind == "fault.kill":
        recovered = next((e for e in later if e.get("kind") == "observation.recovered"
                          and e.get("instance") == fault.get("instance") and e.get("seconds") is not None), None)
        if recovered is not None:
            return at + float(recovered["seconds"]), "observation.recovered"
        settled = next((e for e in later if e.get("kind") == "observation.group_settled"), None)
        if settled is not None:
            return float(settled["at"]), "observation.group_settled"
        return None, "open"
    if kind == "fault.destroy_data":
        restored = next((e for e in later if e.get("kind") == "action.restore" and e.get("finished_at") is not None),
                        None)
        if restored is not None:
            return float(restored["finished_at"]), "action.restore"
        return None, "open"
    return None, "open"


def fault_window(run: Iterable[dict], now: float, min_seconds: float = 0.0) -> FaultWindow | None:
    """The window in which this run's faults were in force: from the first ``fault.*`` (not ``fault.healed``) to
    the latest moment any of them ended, but at least ``min_seconds`` long (``ended_by: min_seconds``). None when
    the run has no fault. A fault nothing has ended yet keeps the window open until ``now`` (``ended_by: open``)."""
    events = sorted(run, key=lambda e: float(e["at"]))
    faults = [e for e in events if str(e.get("kind", "")).startswith("fault.") and e["kind"] != "fault.healed"]
    if not faults:
        return None
    start, end, ended_by = float(faults[0]["at"]), float(faults[0]["at"]), faults[0]["kind"]
    for fault in faults:
        later = [e for e in events if float(e["at"]) >= float(fault["at"]) and e is not fault]
        fault_end, why = fault_ended(fault, later)
        if fault_end is None:
            fault_end, why = now, "open"
        if fault_end >= end:
            end, ended_by = fault_end, why
    if end - start < min_seconds:
        end, ended_by = start + min_seconds, "min_seconds"
    return FaultWindow(start=start, end=max(end, start), faults=tuple(f["kind"] for f in faults), ended_by=ended_by)


def baseline_window(now: float, run_started: float | None, seconds: float, settle: float,
                    minimum: float) -> tuple[FaultWindow, float]:
    """The window a baseline is judged over, and the moment it can be read: the last ``seconds`` that have settled
    (``settle`` before now), never reaching back before this run started (an earlier experiment's fault is not this
    one's baseline), and at least ``minimum`` long, which may mean waiting. Returns ``(window, read_at)``."""
    end = now - settle
    start = end - seconds
    if run_started is not None and run_started > start:
        start = run_started
    if end - start < minimum:
        end = start + minimum
    return FaultWindow(start=start, end=end, faults=(), ended_by="baseline"), end + settle


# ---- client side: the load generator's outcomes --------------------------------------------------------------------

MAX_FAILED_LISTED = 10


def client_view(outcomes: Iterable[Sequence], start: float, end: float, q: float = 0.95) -> dict:
    """Availability and the q-quantile latency of the requests started in [start, end], from the load generator's
    ``[started_at, path, status, seconds]`` outcomes. A request with no HTTP answer (``status "error"``: refused,
    reset, timed out) is unavailable; ``errors`` counts those by the fifth element the load generator gives them (why).
    The latency quantile is over answered requests, as the load generator's own histogram is. ``by_path`` gives the
    same per path. ``failed_requests`` lists the first MAX_FAILED_LISTED that failed, with when they started (seconds
    into the window), so a report shows where in a fault they fell. No request: ``availability`` and ``p95_s`` are
    None."""
    chosen = [o for o in outcomes if start <= float(o[0]) <= end]
    by_path: dict[str, list[Sequence]] = {}
    for o in chosen:
        by_path.setdefault(str(o[1]), []).append(o)
    result = _client_figures(chosen, q)
    result["by_path"] = {path: _client_figures(rows, q) for path, rows in sorted(by_path.items())}
    failed = [o for o in chosen if not GOOD_STATUS.fullmatch(str(o[2]))]
    result["failed_requests"] = [
        {"at_s": round(float(o[0]) - start, 3), "path": str(o[1]), "status": str(o[2]), "seconds": float(o[3]),
         **({"kind": str(o[4])} if len(o) > 4 else {})}
        for o in failed[:MAX_FAILED_LISTED]]
    return result


def _client_figures(rows: Sequence[Sequence], q: float) -> dict:
    ok = sum(1 for o in rows if GOOD_STATUS.fullmatch(str(o[2])))
    answered = [float(o[3]) for o in rows if str(o[2]) != "error"]
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for o in rows:
        statuses[str(o[2])] = statuses.get(str(o[2]), 0) + 1
        if str(o[2]) == "error":
            kind = str(o[4]) if len(o) > 4 else "unknown"
            errors[kind] = errors.get(kind, 0) + 1
    return {
        "requests": len(rows), "ok": ok, "unanswered": statuses.get("error", 0),
        "availability": round(ok / len(rows), 6) if rows else None,
        "p95_s": round(quantile(answered, q), 6) if answered else None,
        "statuses": dict(sorted(statuses.items())), "errors": dict(sorted(errors.items())),
    }


# ---- server side: Prometheus' raw samples --------------------------------------------------------------------------

def counter_increase(samples: Sequence[tuple[float, float]], start: float, end: float) -> float:
    """How much a counter grew over (start, end], from its raw ``(t, value)`` samples (any order).

    The base is the last sample at or before ``start``; with none, the series was born in the window and started
    from 0 (a status code's first error creates its series: PromQL's ``increase`` would drop that first count). A
    value lower than the previous one is a reset (a restarted replica): it counts from 0. Resolution: one scrape
    interval at each edge."""
    ordered = sorted((float(t), float(v)) for t, v in samples)
    before = [v for t, v in ordered if t <= start]
    previous = before[-1] if before else 0.0
    grown = 0.0
    for t, value in ordered:
        if start < t <= end:
            grown += value - previous if value >= previous else value
            previous = value
    return grown


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """Prometheus' ``histogram_quantile`` over cumulative ``{le: count}`` (``math.inf`` for +Inf): linear
    interpolation inside the bucket holding rank q·total, from 0 for the first bucket; a rank in +Inf answers the
    highest finite bound. None when nothing was observed."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"quantile q must be within [0, 1], got {q}")
    edges = sorted(buckets.items())
    if not edges or edges[-1][0] != math.inf:
        raise ValueError(f"a histogram needs a +Inf bucket, got bounds {[le for le, _ in edges]}")
    total = edges[-1][1]
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for le, count in edges:
        if count >= rank:
            if le == math.inf:
                return lower
            if count == below:
                return le
            return lower + (le - lower) * (rank - below) / (count - below)
        lower, below = le, count
    return lower


def _series(result: Iterable[Mapping]) -> list[tuple[dict, list[tuple[float, float]]]]:
    return [(dict(r.get("metric", {})), [(float(t), float(v)) for t, v in r.get("values", [])]) for r in result]


def server_view(requests: Iterable[Mapping], buckets: Iterable[Mapping], start: float, end: float,
                q: float = 0.95) -> dict:
    """Availability (2xx share of ``starlette_requests_total``'s growth) and the q-quantile latency (from the
    growth of ``starlette_request_duration_seconds_bucket``, summed by ``le``) over (start, end], from the raw
    samples of Prometheus matrix results (``[{"metric": {...}, "values": [[t, "v"], ...]}]``)."""
    total = ok = 0.0
    for labels, samples in _series(requests):
        grown = counter_increase(samples, start, end)
        total += grown
        if GOOD_STATUS.fullmatch(labels.get("status_code", "")):
            ok += grown
    by_le: dict[float, float] = {}
    for labels, samples in _series(buckets):
        le = float(labels["le"])  # "+Inf" parses to inf
        by_le[le] = by_le.get(le, 0.0) + counter_increase(samples, start, end)
    latency = histogram_quantile(q, by_le) if by_le else None
    return {
        "requests": round(total, 3), "ok": round(ok, 3),
        "availability": round(ok / total, 6) if total > 0 else None,
        "p95_s": None if latency is None else round(latency, 6),
    }


# ---- the judgement ------------------------------------------------------------------------------------------------

def judge(views: Mapping[str, Mapping], min_availability: float, max_p95_seconds: float | Mapping[str, float],
          min_requests: int = 1) -> tuple[str, list[str]]:
    """PASS, FAIL or NO_DATA for each view's availability (>= ``min_availability``) and p95 (<=
    ``max_p95_seconds``: one bound for every view, or one per view name), with one message per failure naming the
    view, the value and the bound. Any failure is FAIL; otherwise a view with fewer than ``min_requests`` requests,
    or no latency, is NO_DATA: no samples is never a pass."""
    failures, missing = [], []
    for name, view in views.items():
        bound = max_p95_seconds[name] if isinstance(max_p95_seconds, Mapping) else max_p95_seconds
        requests, availability, p95 = view.get("requests") or 0, view.get("availability"), view.get("p95_s")
        if requests < min_requests or availability is None:
            missing.append(f"{name}: {requests:g} requests in the window, fewer than the {min_requests} needed")
            continue
        if availability < min_availability:
            why = ", ".join(f"{n} {kind}" for kind, n in (view.get("errors") or {}).items())
            failures.append(f"{name} availability {availability:.4%} is below {min_availability:.2%} "
                            f"({requests - (view.get('ok') or 0):g} of {requests:g} requests failed"
                            + (f"; no answer: {why})" if why else ")"))
        if p95 is None:
            missing.append(f"{name}: no latency was measured")
        elif p95 > bound:
            failures.append(f"{name} p95 latency {p95:.3f} s is above {bound:g} s")
    if failures:
        return "FAIL", failures
    if missing:
        return "NO_DATA", missing
    return "PASS", []
