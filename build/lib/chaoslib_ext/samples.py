"""What one black-box request to a service (AI decision or market data) returned, as the load generator saw it:
when it was sent, how long the answer took (None: no answer before the client gave up), the HTTP status, and what
the answer says (which provider served it, whether it was degraded, how old the data was). A sample is *ok* when
the caller got what it asked for: a well-formed answer from a live provider (not a cached or conservative
fallback), and for market data, data fresher than the 5 s freshness SLO. Pure: no I/O, no clocks.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

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


def success_rate(samples: Sequence[Sample]) -> float | None:
    """The share of samples that got an ok answer; None for no samples."""
    return sum(1 for s in samples if s.ok) / len(samples) if samples else None
