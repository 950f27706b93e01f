"""Provider faults: make an LLM or market-data provider fail in the provider simulator, and heal it.

The simulator stands in for every external provider (OpenAI, Groq, Together; Alpaca, Finnhub, Polygon,
CoinGecko, NewsAPI, GDELT). Locally the runner passes the fault to it; on Kubernetes the simulator runs in the
cluster and the target calls its fault API through its Service (see ``Target.fail_provider``). The simulator
enforces every fault's time-to-live, so a fault ends by itself even if this run dies before its rollback.

Each fault is recorded as ``fault.provider`` (at the simulator's onset, the moment failover is measured from)
and each heal as ``fault.healed`` with ``fault: provider``, in the run's timeline, where the provider probes read
them.
"""
from __future__ import annotations

import time
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import flag, number, renamed, whole_number
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import Target, from_configuration
from chaoslib_ext.targets.base import MAX_FAULT_TTL_SECONDS, PROVIDERS, validate_provider_fault

__all__ = ["fail_provider", "provider_outage_trials", "restore_provider", "restore_all_providers"]

MAX_TRIALS = 100


def _params(status: Any, retry_after_s: Any, latency_ms: Any, error_rate: Any) -> dict:
    return {k: v for k, v in (("status", status), ("retry_after_s", retry_after_s), ("latency_ms", latency_ms),
                              ("error_rate", error_rate)) if v is not None}


def _apply(target: Target, provider: str, mode: str, ttl_seconds: float, params: dict,
           configuration: Configuration, trial: int | None = None) -> dict:
    fault = target.fail_provider(provider, mode, ttl_seconds, **params)
    applied_at, expires_at = float(fault["applied_at"]), float(fault["expires_at"])
    timeline.record("fault.provider", configuration, at=applied_at, target=target.kind, provider=provider, mode=mode,
                    ttl_seconds=ttl_seconds, expires_at=expires_at, trial=trial, **params)
    return {"provider": provider, "mode": mode, "applied_at": applied_at, "expires_at": expires_at,
            "healed_at": None, "trial": trial, **params}


def _heal_at_expiry(target: Target, fault: dict, configuration: Configuration) -> dict:
    time.sleep(max(0.0, fault["expires_at"] - time.time()))
    healed = target.restore_provider(fault["provider"])
    # Healed by us, or a moment earlier by its own expiry: either way it ended at the earlier moment.
    healed_at = min(float(healed["healed_at"]), fault["expires_at"])
    timeline.record("fault.healed", configuration, at=healed_at, target=target.kind, fault="provider",
                    provider=fault["provider"], was_active=bool(healed.get("was_active")))
    return {**fault, "healed_at": healed_at}


def fail_provider(
    provider: str,
    mode: str = "error",
    ttl_seconds: float = 30.0,
    status: int | None = None,
    retry_after_s: float | None = None,
    latency_ms: float | None = None,
    error_rate: float | None = None,
    wait: bool = True,
    configuration: Configuration = None,
    secrets: Secrets = None,
    duration: float | None = None,
) -> dict:
    """Make ``provider`` (openai, groq, together, alpaca, finnhub, polygon, coingecko, newsapi, gdelt) fail for
    ``ttl_seconds`` seconds with ``mode``: ``error`` (answer ``status`` 500, 503 (default) or 429 with
    ``retry_after_s``), ``latency`` (add ``latency_ms``), ``timeout`` (accept, never answer: a blackhole),
    ``reset`` (drop the connection) or ``malformed`` (200 with a body that does not parse). ``error_rate`` in
    (0, 1] (default 1) makes it a partial fault that hits that share of the requests.

    The fault's time-to-live is ``ttl_seconds`` (at most an hour): the simulator heals it by itself at expiry.
    With ``wait`` (default) the action returns after healing it at the end of ``ttl_seconds``; without, it returns at once and the TTL (or
    the rollback ``restore_all_providers``) ends it. Records ``fault.provider`` and, when it heals,
    ``fault.healed`` in the timeline. Returns ``{"provider", "mode", "applied_at", "expires_at",
    "healed_at"|None, ...parameters}``. Raises ``InvalidArgument`` naming the argument before any side effect.
    ``duration`` is the old name of ``ttl_seconds``, still accepted for one release.
    """
    ttl_seconds = renamed("ttl_seconds", ttl_seconds, 30.0, "duration", duration)
    params = _params(status, retry_after_s, latency_ms, error_rate)
    validate_provider_fault(provider, mode, ttl_seconds, **params)
    flag("wait", wait)
    with from_configuration(configuration, secrets) as target:
        fault = _apply(target, provider, mode, float(ttl_seconds), params, configuration)
        return _heal_at_expiry(target, fault, configuration) if wait else fault


def provider_outage_trials(
    provider: str,
    mode: str = "error",
    trials: int = 3,
    ttl_seconds: float = 8.0,
    recover_seconds: float = 10.0,
    status: int | None = None,
    retry_after_s: float | None = None,
    latency_ms: float | None = None,
    error_rate: float | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
    outage_seconds: float | None = None,
) -> dict:
    """``trials`` outages of ``provider`` in a row, so failover can be reported as p50, p95 and max: each applies
    the fault (as ``fail_provider``, with a time-to-live of ``ttl_seconds``), heals it when it expires, then
    leaves the provider healthy for ``recover_seconds`` so the service can return to it before the next trial.

    Every outage is a ``fault.provider`` (with its ``trial`` number) and a ``fault.healed`` in the timeline.
    Returns ``{"provider", "mode", "trials": [{"trial", "applied_at", "expires_at", "healed_at"}]}``. Raises
    ``InvalidArgument`` naming the argument before any side effect. ``outage_seconds`` is the old name of
    ``ttl_seconds``, still accepted for one release.
    """
    ttl_seconds = renamed("ttl_seconds", ttl_seconds, 8.0, "outage_seconds", outage_seconds)
    params = _params(status, retry_after_s, latency_ms, error_rate)
    validate_provider_fault(provider, mode, ttl_seconds, **params)
    whole_number("trials", trials, at_least=1, at_most=MAX_TRIALS)
    recover_seconds = number("recover_seconds", recover_seconds, at_least=0, at_most=MAX_FAULT_TTL_SECONDS)
    done = []
    with from_configuration(configuration, secrets) as target:
        for trial in range(1, trials + 1):
            fault = _apply(target, provider, mode, float(ttl_seconds), params, configuration, trial)
            done.append(_heal_at_expiry(target, fault, configuration))
            time.sleep(recover_seconds)
        return {"provider": provider, "mode": mode, **params,
                "trials": [{k: t[k] for k in ("trial", "applied_at", "expires_at", "healed_at")} for t in done]}


def restore_provider(provider: str, configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """End ``provider``'s fault now (healing a healthy provider is not an error). Records ``fault.healed`` when
    a fault was active. Returns ``{"provider", "was_active", "healed_at"}``."""
    if provider not in PROVIDERS:
        raise InvalidArgument(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    with from_configuration(configuration, secrets) as target:
        healed = target.restore_provider(provider)
    result = {"provider": provider, "was_active": bool(healed["was_active"]), "healed_at": float(healed["healed_at"])}
    if result["was_active"]:
        timeline.record("fault.healed", configuration, at=result["healed_at"], target=target.kind, fault="provider",
                        provider=provider, was_active=True)
    return result


def restore_all_providers(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """End every provider fault now: the rollback of ``fail_provider`` and ``provider_outage_trials``. Records one
    ``fault.healed`` per provider that still had a fault. Returns ``{"healed_at", "healed": [providers]}``."""
    with from_configuration(configuration, secrets) as target:
        healed = target.restore_all_providers()
    healed_at = float(healed["healed_at"])
    providers = [p if isinstance(p, str) else p.get("provider") for p in healed.get("healed", [])]
    for provider in providers:
        timeline.record("fault.healed", configuration, at=healed_at, target=target.kind, fault="provider",
                        provider=provider, was_active=True)
    return {"healed_at": healed_at, "healed": providers}
