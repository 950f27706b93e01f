"""API faults: a calibrated HTTP error ratio in the processor API, for burn-rate alert drills, and its heal."""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration
from chaoslib_ext.targets.base import fault_ttl

__all__ = ["inject_api_errors", "heal_api_errors"]

ALLOWED_STATUSES = (500, 503)


def _validate(ratio: Any, status: Any, ttl_seconds: Any) -> tuple[float, int, float]:
    ratio = number("ratio", ratio, at_least=0, at_most=1)
    if isinstance(status, bool) or status not in ALLOWED_STATUSES:
        raise InvalidArgument(f"status must be one of {', '.join(map(str, ALLOWED_STATUSES))}, got {status!r}")
    ttl_seconds = fault_ttl(ttl_seconds)
    return ratio, int(status), ttl_seconds


def inject_api_errors(
    ratio: float = 1.0,
    status: int = 503,
    ttl_seconds: float = 120,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Make the processor API answer ``ratio`` of its requests (all but /metrics) with ``status`` (500 or 503)
    on every replica, until healed or for ``ttl_seconds`` (the fault then clears itself, even if the rollback
    never runs). Injection is deterministic: 0.04 fails exactly every 25th request of each replica.

    Records ``fault.http_errors`` in the timeline (at the target's onset), which the alert probes measure from.
    Returns ``{"ratio", "status", "ttl_seconds", "applied_at", "expires_at", "applied_to", "pending"}``.
    Raises ``InvalidArgument`` before touching the target for a ratio outside [0, 1], another status, or a TTL
    that is not > 0.
    """
    ratio, status, ttl_seconds = _validate(ratio, status, ttl_seconds)
    with from_configuration(configuration, secrets) as target:
        fault = target.inject_http_errors(ratio, status, ttl_seconds)
    result = {
        "ratio": fault.ratio, "status": fault.status, "ttl_seconds": fault.ttl_seconds,
        "applied_at": fault.applied_at, "expires_at": fault.expires_at,
        "applied_to": list(fault.applied_to), "pending": list(fault.pending),
    }
    timeline.record("fault.http_errors", configuration, at=fault.applied_at, target=target.kind, **{
        k: v for k, v in result.items() if k != "applied_at"})
    return result


def heal_api_errors(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Remove the processor API's error fault (the rollback of ``inject_api_errors``; safe when none is active).

    Records ``fault.healed`` in the timeline when a fault was active, which the resolve probe measures from.
    Returns ``{"healed_at", "was_active", "healed": [replica names]}``.
    """
    with from_configuration(configuration, secrets) as target:
        healed = target.heal_http_errors()
    result = {"healed_at": healed.healed_at, "was_active": healed.was_active, "healed": list(healed.healed)}
    if healed.was_active:
        timeline.record("fault.healed", configuration, at=healed.healed_at, target=target.kind, fault="http_errors",
                        healed=list(healed.healed))
    return result
