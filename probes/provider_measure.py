"""Pure measurement logic behind the provider probes: responses in, numbers out. No I/O, no clocks.

A *sample* is one black-box request to a service (AI decision or market data) as the sampler saw it: when it was
sent, how long the answer took (None: no answer before the client gave up), the HTTP status, and what the answer
says (which provider served it, whether it was degraded, how old the data was). A sample is *ok* when the caller
got what it asked for: a well-formed answer from a live provider (not a cached or conservative fallback), and for
market data, data fresher than the 5 s freshness SLO.

An *outage* is one provider fault from the timeline: ``[applied_at, ended_at)``, ended by its heal or its expiry.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from probes.measure import quantile

SERVICES = ("ai_decision", "market_data")
DECISIONS = ("buy", "sell", "hold")
NOT_A_PROVIDER = ("cache", "fallback")
"""What the AI decision service names as ``provider`` when no model answered."""
SKIPPED = ("circuit_open", "skipped_rate_limited")
"""Attempt outcomes for which the AI decision service did not call the provider at all."""
FRESHNESS_SLO_SECONDS = 5.0
"""Seed: market data freshness < 5 s."""


@dataclass(frozen=True)
class Sample:
    sent_at: float
    """Unix seconds when the request was sent."""
    latency_s: float | None
    """Seconds until the full answer arrived; None when none came before the client's timeout (a hang)."""
    status: int | None
    """HTTP status; None with no answer (timeout, refused, reset)."""
    provider: str | None = None
    degraded: bool = False
    valid: bool = False
    """The body had every field the contract promises, with sane values."""
    age_seconds: float | None = None
    """Market data only: how old the quote was when served."""
    reason: str | None = None
    error: str | None = None
    """Why there was no usable answer (transport error or what was wrong with the body)."""
    fetched_at: float | None = None
    """Market data only: when the service got this quote from ``provider`` (its own clock, Unix seconds)."""
    called: tuple[str, ...] = ()
    """AI decision only: the providers the service actually called for this answer (from its ``attempts``; those
    it skipped for an open circuit or a Retry-After are left out)."""

    @property
    def received_at(self) -> float | None:
        return None if self.latency_s is None else self.sent_at + self.latency_s

    @property
    def answered(self) -> bool:
        return self.status is not None

    @property
    def ok(self) -> bool:
        if self.status != 200 or not self.valid or self.degraded or self.provider in NOT_A_PROVIDER:
            return False
        return self.age_seconds is None or self.age_seconds < FRESHNESS_SLO_SECONDS

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Sample:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__}
        fields["called"] = tuple(data.get("called") or ())
        fields["degraded"] = bool(data.get("degraded"))
        fields["valid"] = bool(data.get("valid"))
        return cls(**fields)


def _number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def decision_sample(sent_at: float, latency_s: float | None, status: int | None, body: Any,
                    error: str | None = None) -> Sample:
    """Classify one ``POST /decision`` answer (docs/local-stack-contract.md)."""
    if status is None or not isinstance(body, dict):
        return Sample(sent_at, latency_s, status, error=error or (None if status is None else "body is not a JSON object"))
    problems = []
    if body.get("decision") not in DECISIONS:
        problems.append(f"decision {body.get('decision')!r} is not one of {', '.join(DECISIONS)}")
    if not _number(body.get("confidence")) or not 0 <= body["confidence"] <= 1:
        problems.append(f"confidence {body.get('confidence')!r} is not within [0, 1]")
    if not isinstance(body.get("provider"), str):
        problems.append("no provider")
    if not isinstance(body.get("degraded"), bool):
        problems.append("degraded is not true/false")
    if body.get("degraded") and not body.get("reason"):
        problems.append("a degraded answer without a reason")
    attempts = body.get("attempts") if isinstance(body.get("attempts"), list) else []
    called = tuple(a["provider"] for a in attempts if isinstance(a, dict) and isinstance(a.get("provider"), str)
                   and a.get("outcome") not in SKIPPED)
    return Sample(sent_at, latency_s, status, provider=body.get("provider") if isinstance(body.get("provider"), str) else None,
                  degraded=bool(body.get("degraded")), valid=status == 200 and not problems,
                  reason=body.get("reason") if isinstance(body.get("reason"), str) else None,
                  error="; ".join(problems) or error, called=called)


def quote_sample(sent_at: float, latency_s: float | None, status: int | None, body: Any,
                 error: str | None = None) -> Sample:
    """Classify one ``GET /quote/{symbol}`` or ``GET /crypto/{coin}`` answer."""
    if status is None or not isinstance(body, dict):
        return Sample(sent_at, latency_s, status, error=error or (None if status is None else "body is not a JSON object"))
    problems = []
    price_field = "price" if "price" in body or "usd" not in body else "usd"  # /crypto answers in "usd"
    if not _number(body.get(price_field)) or body[price_field] <= 0:
        problems.append(f"{price_field} {body.get(price_field)!r} is not a positive number")
    age = body.get("age_seconds")
    if not _number(age) or age < 0:
        problems.append(f"age_seconds {age!r} is not a number >= 0")
    if not isinstance(body.get("provider"), str):
        problems.append("no provider")
    degraded = bool(body.get("critical")) or bool(body.get("degraded"))
    return Sample(sent_at, latency_s, status, provider=body.get("provider") if isinstance(body.get("provider"), str) else None,
                  degraded=degraded, valid=status == 200 and not problems,
                  age_seconds=float(age) if _number(age) else None,
                  fetched_at=float(body["fetched_at"]) if _number(body.get("fetched_at")) else None,
                  reason=body.get("reason") if isinstance(body.get("reason"), str) else None,
                  error="; ".join(problems) or error)


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


def success_rate(samples: Sequence[Sample]) -> float | None:
    """The share of samples that got an ok answer; None for no samples."""
    return sum(1 for s in samples if s.ok) / len(samples) if samples else None


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
