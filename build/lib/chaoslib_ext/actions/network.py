"""Network faults: partition services from the Kafka broker, and heal the partition.

Locally the runner's fault proxy cuts the connections of the named services (attributed by Kafka ``client.id``);
on Kubernetes it is a deny NetworkPolicy labelled chaos-made with an expiry (see ``Target.partition``). Either
way the fault carries a time-to-live and ends by itself, so it never outlives its experiment.
"""
from __future__ import annotations

import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import flag, number, renamed
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import Target, from_configuration
from chaoslib_ext.targets.base import PARTITION_MODES, PARTITION_SERVICES, fault_ttl

__all__ = ["partition_kafka", "heal_kafka"]


def _validate(between: Any, ttl_seconds: Any, mode: Any, latency_ms: Any, bandwidth_kbps: Any) -> tuple[list[str], dict]:
    if isinstance(between, str):
        between = [between]
    if not isinstance(between, (list, tuple)) or not between or not all(isinstance(s, str) for s in between):
        raise InvalidArgument(f"between must be a non-empty list of {', '.join(PARTITION_SERVICES)}, got {between!r}")
    unknown = [s for s in between if s not in PARTITION_SERVICES]
    if unknown:
        raise InvalidArgument(f"between names {unknown[0]!r}, which is not one of {', '.join(PARTITION_SERVICES)}")
    fault_ttl(ttl_seconds)
    if mode not in PARTITION_MODES:
        raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(PARTITION_MODES)}")
    params: dict = {}
    for name, value, wanted in (("latency_ms", latency_ms, "latency"), ("bandwidth_kbps", bandwidth_kbps, "bandwidth")):
        if mode == wanted:
            params[name] = number(name, value, greater_than=0)
        elif value is not None:
            raise InvalidArgument(f"{name} only applies to mode {wanted!r}, not {mode!r}")
    return sorted(set(between)), params


def heal_at_expiry(target: Target, expires_at: float, configuration: Configuration) -> float:
    """Wait for a partition's expiry, heal it, record ``fault.healed``, and return when it ended."""
    time.sleep(max(0.0, expires_at - time.time()))
    healed = target.heal_partition()
    # Healed by us, or (a moment earlier) by its own expiry: either way it ended at the earlier moment.
    healed_at = min(float(healed["healed_at"]), expires_at)
    timeline.record("fault.healed", configuration, at=healed_at, target=target.kind, fault="kafka-partition",
                    was_active=bool(healed["was_active"]))
    return healed_at


def partition_kafka(
    between: list[str] | str = ("processor",),
    ttl_seconds: float = 30.0,
    mode: str = "hold",
    latency_ms: float | None = None,
    bandwidth_kbps: float | None = None,
    wait: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
    duration: float | None = None,
) -> dict:
    """Cut the services in ``between`` (``processor``, ``producers``) from the Kafka broker for ``ttl_seconds``
    seconds with ``mode``: ``hold`` (connections kept, nothing forwarded: the clean partition), ``drop`` (read
    and discarded), ``reset`` (TCP RST, new connections refused), ``latency`` (``latency_ms`` per chunk) or
    ``bandwidth`` (``bandwidth_kbps`` kB/s).

    The fault's time-to-live is ``ttl_seconds`` (at most an hour): the target heals it by itself at expiry. With
    ``wait`` (default) the action returns after healing it at the end of ``ttl_seconds``; without, it returns at
    once and the TTL ends it. ``duration`` is the old name of ``ttl_seconds``, still accepted for one release.
    Records ``fault.partition`` (and ``fault.healed`` when it heals) in the timeline.
    Returns ``{"between", "mode", "applied_at", "expires_at", "healed_at"|None}``. Raises ``InvalidArgument``
    before any side effect for a bad argument.
    """
    ttl_seconds = renamed("ttl_seconds", ttl_seconds, 30.0, "duration", duration)
    services, params = _validate(between, ttl_seconds, mode, latency_ms, bandwidth_kbps)
    flag("wait", wait)
    with from_configuration(configuration, secrets) as target:
        fault = target.partition(services, mode, float(ttl_seconds), **params)
        applied_at, expires_at = float(fault["applied_at"]), float(fault["expires_at"])
        timeline.record("fault.partition", configuration, at=applied_at, target=target.kind, between=services,
                        mode=mode, ttl_seconds=float(ttl_seconds), expires_at=expires_at, **params)
        result = {"between": services, "mode": mode, "applied_at": applied_at, "expires_at": expires_at,
                  "healed_at": None, **params}
        if wait:
            result["healed_at"] = heal_at_expiry(target, expires_at, configuration)
        return result


def heal_kafka(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Remove any Kafka partition now; the rollback of ``partition_kafka``. Healing nothing is not an error.

    Returns ``{"was_active", "healed_at"}``, and records ``fault.healed`` when a partition was in force."""
    with from_configuration(configuration, secrets) as target:
        healed = target.heal_partition()
        result = {"was_active": bool(healed["was_active"]), "healed_at": float(healed["healed_at"])}
        if result["was_active"]:
            timeline.record("fault.healed", configuration, at=result["healed_at"], target=target.kind,
                            fault="kafka-partition", was_active=True)
        return result
