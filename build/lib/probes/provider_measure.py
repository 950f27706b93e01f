"""Pure measurement logic behind the provider probes: responses in, numbers out. No I/O, no clocks.

A *sample* (``chaoslib_ext.samples``) is one black-box request to a service as the load generator saw it.

An *outage* is one provider fault from the timeline: ``[applied_at, ended_at)``, ended by its heal or its expiry.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chaoslib_ext.samples import (
    DECISIONS, FRESHNESS_SLO_SECONDS, NOT_A_PROVIDER, SERVICES, SKIPPED, Sample, decision_sample, quote_sample,
    success_rate,
)
from probes.measure import quantile

__all__ = [
    "DECISIONS",
    "FRESHNESS_SLO_SECONDS",
    "NOT_A_PROVIDER",
    "SERVICES",
    "SKIPPED",
    "Sample",
    "decision_sample",
    "quote_sample",
    "success_rate",
    "Outage",
    "outages",
    "in_window",
    "serving_before",
    "failover_seconds",
    "recovered_seconds",
    "switches",
    "latency_quantile",
    "staleness",
    "calls_to",
]


@dataclass(frozen=True)
class Outage:
    provider: str
    mode: str
    applied_at: float
    ended_at: float
    """When the fault was healed, or expired by itself, whichever came first."""
    trial: int | None = None
    error_rate: float = 1.0


def outages(events: Iterable[Mapping[str, Any]]) -> list[Outage]:
    """Provider outages from a run's timeline: each ``fault.provider`` ends at the first ``fault.healed`` of that
    provider (or of all providers) after it, or at its ``expires_at``, whichever is earlier."""
    ordered = sorted(events, key=lambda e: e["at"])
    found = []
    for i, event in enumerate(ordered):
        if event.get("kind") != "fault.provider":
            continue
        ended = float(event["expires_at"])
        for later in ordered[i + 1:]:
            if later.get("kind") == "fault.provider" and later.get("provider") == event["provider"]:
                ended = min(ended, float(later["at"]))  # a new fault replaces this one
                break
            if later.get("kind") == "fault.healed" and later.get("fault") == "provider" and (
                    later.get("provider") in (None, event["provider"])):
                ended = min(ended, float(later["at"]))
                break
        found.append(Outage(event["provider"], event["mode"], float(event["at"]), ended, event.get("trial"),
                            float(event.get("error_rate") or 1.0)))
    return found


def in_window(samples: Iterable[Sample], start: float, end: float) -> list[Sample]:
    """Samples sent within ``[start, end)``, oldest first."""
    return sorted((s for s in samples if start <= s.sent_at < end), key=lambda s: s.sent_at)


def serving_before(samples: Iterable[Sample], at: float, lookback: float = 5.0) -> str | None:
    """The provider that served the last ok answer received in the ``lookback`` seconds before ``at``."""
    before = [s for s in samples if s.ok and s.received_at is not None and at - lookback <= s.received_at <= at]
    return max(before, key=lambda s: s.received_at).provider if before else None


def failover_seconds(samples: Iterable[Sample], outage: Outage) -> float | None:
    """Seconds from the fault's onset to the first ok answer, received during the outage, that another provider
    served. None when no other provider answered before the outage ended (the service never failed over).

    The answer must have been *sent* after the onset, so a request already on its way to the next provider for
    an unrelated reason does not count; its resolution is the sampler's period."""
    for sample in sorted(samples, key=lambda s: s.sent_at):
        received = sample.received_at
        if (sample.sent_at >= outage.applied_at and received is not None and received < outage.ended_at
                and sample.ok and sample.provider != outage.provider):
            return received - outage.applied_at
    return None


def recovered_seconds(samples: Iterable[Sample], outage: Outage, primary: str | None = None) -> float | None:
    """Seconds from the end of the outage to the first ok answer served by ``primary`` (default: the provider
    that failed) that was sent after it ended. None while it has not come back."""
    primary = primary or outage.provider
    for sample in sorted(samples, key=lambda s: s.sent_at):
        if sample.sent_at >= outage.ended_at and sample.ok and sample.provider == primary:
            return sample.received_at - outage.ended_at
    return None


def switches(samples: Iterable[Sample]) -> list[tuple[float, str, str]]:
    """Every change of serving provider among consecutive ok answers: ``(sent_at, from, to)``."""
    changes, current = [], None
    for sample in sorted(samples, key=lambda s: s.sent_at):
        if not sample.ok:
            continue
        if current is not None and sample.provider != current:
            changes.append((sample.sent_at, current, sample.provider))
        current = sample.provider
    return changes


def latency_quantile(samples: Sequence[Sample], q: float, hang_seconds: float) -> float | None:
    """The q-quantile of latency, counting a request that never got an answer as ``hang_seconds`` (the client's
    timeout: a lower bound of what the caller waited). None for no samples."""
    if not samples:
        return None
    return quantile([s.latency_s if s.latency_s is not None else hang_seconds for s in samples], q)


def staleness(samples: Sequence[Sample]) -> dict:
    """The oldest data served (``max_age_seconds``), and how many answers were at or past the freshness SLO."""
    ages = [s.age_seconds for s in samples if s.status == 200 and s.age_seconds is not None]
    return {"answers": len(ages), "max_age_seconds": round(max(ages), 3) if ages else None,
            "stale_answers": sum(1 for a in ages if a >= FRESHNESS_SLO_SECONDS)}


def calls_to(samples: Iterable[Sample], provider: str) -> int:
    """How many answers involved an actual call to ``provider`` (a client honouring Retry-After makes few)."""
    return sum(1 for s in samples if provider in s.called)
