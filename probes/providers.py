"""Provider failover as numbers, measured from outside: what callers of the AI decision and market data services
actually got while a provider was down.

How the measurement is taken. A failover can only be seen *while* the fault is in force, so the experiment's
method runs ``chaoslib_ext.actions.load.sample_service`` as a Chaos Toolkit ``background: true`` action next to
the fault actions: it calls the service open-loop at ``rate_hz`` (≥ 10 Hz; a slow answer never delays the next
request) and writes every response (sent_at, latency, status, provider, degraded, age) to a JSON-lines file
beside the run's timeline, then records ``observation.sampling`` naming that file. The fault actions record
``fault.provider`` / ``fault.healed`` in the same timeline. The probes below only *read* those records after the
method, and the raw samples stay in the run directory as evidence. (``sample_service`` and ``stop_sampling`` are
still importable from here for one release, with a deprecation warning.)

Phase-aware like the other probes: before the method they return a live baseline (or zeros where nothing can be
measured before a fault); after it, NoData when this run recorded no matching fault or no samples.
Pure logic: ``probes.provider_measure``.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import deprecated
from chaoslib_ext.arguments import number as checked_number  # `number` names loop variables here
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData
from chaoslib_ext.load import DEFAULT_HANG_SECONDS, MIN_RATE_HZ, live_samples, service_name, ticker
from chaoslib_ext.load import sample_service as load_sample_service
from chaoslib_ext.load import stop_sampling as load_stop_sampling
from chaoslib_ext.targets.base import LLM_PROVIDERS, PROVIDER_FAULT_MODES, PROVIDERS
from probes.measure import distribution
from probes.provider_measure import (
    Outage, Sample, calls_to, failover_seconds, in_window, latency_quantile, outages, recovered_seconds,
    serving_before, staleness, success_rate, switches,
)

__all__ = [
    "provider_failover", "fallback_success_rate", "staleness_during_failover",
    "recovery_to_primary", "all_providers_down", "provider_switches", "calls_during_outages",
]

FAILOVER_BUDGET_SECONDS = 10.0
"""Seed: provider failover time < 10 s."""
DECISION_P99_SECONDS = 10.0
"""Seed: AI decision generation p99 < 10 s."""
BASELINE_SECONDS = 2.0


def _provider(provider: Any, name: str = "provider", optional: bool = False) -> str | None:
    if optional and provider is None:
        return None
    if provider not in PROVIDERS:
        raise InvalidArgument(f"{name} {provider!r} is not one of {', '.join(PROVIDERS)}")
    return provider


def _mode(mode: Any) -> str | None:
    if mode is not None and mode not in PROVIDER_FAULT_MODES:
        raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(PROVIDER_FAULT_MODES)}")
    return mode


def _run(configuration: Configuration) -> tuple[list[dict], bool]:
    run = timeline.current_run(configuration)
    return run, timeline.method_started(run)


def _samples(run: Sequence[dict], service: str) -> list[Sample]:
    files = [e["samples_file"] for e in run if e.get("kind") == "observation.sampling" and e.get("service") == service]
    if not files:
        raise NoData(f"no {service} samples were recorded in this run: run probes.providers.sample_service "
                     "with background: true in the method")
    samples = []
    for name in files:
        for line in Path(name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                samples.append(Sample.from_json(json.loads(line)))
    return sorted(samples, key=lambda s: s.sent_at)


def _outages(run: Sequence[dict], provider: str | None, mode: str | None) -> list[Outage]:
    return [o for o in outages(run) if provider in (None, o.provider) and mode in (None, o.mode)]


def _what(provider: str | None, mode: str | None) -> str:
    return f"{provider or 'provider'} fault{f' ({mode})' if mode else ''}"


def _outages_of_this_run(configuration: Configuration, provider: str | None,
                         mode: str | None) -> tuple[list[dict], list[Outage]]:
    """This run's events, and its outages of ``provider`` (any, if None; of ``mode`` only, if given). None of them
    before the method, when the caller measures a baseline; NoData when the method ran and recorded none."""
    run, method_ran = _run(configuration)
    matching = _outages(run, provider, mode)
    if not matching and method_ran:
        raise NoData(f"the method ran but recorded no {_what(provider, mode)}")
    return run, matching


def _covered(samples: Sequence[Sample], outage: Outage) -> None:
    if not in_window(samples, outage.applied_at, outage.ended_at):
        raise NoData(f"no sample was sent during the {outage.provider} {outage.mode} outage at {outage.applied_at:.3f}: "
                     "the sampler did not cover it (make its duration_seconds longer)")


def _during(samples: Sequence[Sample], matching: Sequence[Outage]) -> list[list[Sample]]:
    """The samples sent during each outage; NoData when the sampler did not cover one of them."""
    for outage in matching:
        _covered(samples, outage)
    return [in_window(samples, o.applied_at, o.ended_at) for o in matching]


def provider_failover(
    service: str = "ai_decision",
    provider: str = "openai",
    mode: str | None = None,
    budget_seconds: float = FAILOVER_BUDGET_SECONDS,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Failover seconds per outage of ``provider`` (of ``mode`` only, if given) in this run: from the fault's
    onset (``applied_at`` in the timeline) to the first ok answer, sent after it, that another provider served.
    Returns ``{"phase", "n", "p50", "p95", "max", "seconds": [...], "budget_seconds", "finding"}``; judge it
    with a range tolerance on ``target: p95`` (or ``max``) against the 10 s budget.

    Before the method: zeros, ``"phase": "before"``. After it: NoData without a matching fault or samples, or
    when ``provider`` was not serving just before a trial (then nothing failed over *from* it);
    BudgetExceeded, naming the trial, when no other provider answered before the outage ended."""
    service, provider, mode = service_name(service), _provider(provider), _mode(mode)
    budget_seconds = checked_number("budget_seconds", budget_seconds, greater_than=0)
    run, matching = _outages_of_this_run(configuration, provider, mode)
    if not matching:
        return {"phase": "before", "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "seconds": [],
                "budget_seconds": budget_seconds}
    samples = _samples(run, service)
    measured = []
    for number, outage in enumerate(matching, start=1):
        label = f"trial {outage.trial or number} ({outage.provider} {outage.mode} at {outage.applied_at:.3f})"
        _covered(samples, outage)
        before = serving_before(samples, outage.applied_at)
        if before != provider:
            raise NoData(f"{label}: {provider} was not serving just before the fault ({before or 'nothing ok'} was), "
                         "so no failover from it can be measured; give the service longer to return to it")
        seconds = failover_seconds(samples, outage)
        if seconds is None:
            raise BudgetExceeded(f"{label}: no other provider answered during the "
                                 f"{outage.ended_at - outage.applied_at:.1f} s outage")
        measured.append(round(seconds, 3))
    result = {"phase": "after", "provider": provider, "mode": mode, **distribution(measured), "seconds": measured,
              "budget_seconds": budget_seconds}
    over = result["p95"] > budget_seconds
    result["finding"] = (f"{service} failover from {provider} p95 {result['p95']} s "
                         f"{'EXCEEDS' if over else 'is within'} the {budget_seconds:g} s budget over {result['n']} trial(s)")
    timeline.record("observation.provider_failover", configuration, service=service, provider=provider, mode=mode,
                    **{k: result[k] for k in ("n", "p50", "p95", "max", "seconds")})
    return result


def fallback_success_rate(
    service: str = "ai_decision",
    provider: str | None = None,
    mode: str | None = None,
    symbol: str = "AAPL",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """The share of requests sent during this run's outages of ``provider`` (any, if None; of ``mode`` only, if
    given) that still got an ok answer: well formed, from a live provider, not degraded, fresh (market data).
    The seed's target is ≥ 0.999. Returns ``{"phase", "rate", "n", "failed", "failures": {reason: count}}``.

    Before the method it measures a live baseline (``BASELINE_SECONDS`` at 10 Hz on ``symbol``): the service
    must work before it is broken. After it: NoData without a matching fault or samples."""
    service, provider, mode, symbol = service_name(service), _provider(provider, optional=True), _mode(mode), ticker(symbol)
    run, matching = _outages_of_this_run(configuration, provider, mode)
    if not matching:
        chosen = live_samples(service, symbol, False, BASELINE_SECONDS, MIN_RATE_HZ, DEFAULT_HANG_SECONDS, configuration, secrets)
        phase = "before"
    else:
        chosen = sorted({id(s): s for window in _during(_samples(run, service), matching) for s in window}.values(),
                        key=lambda s: s.sent_at)
        phase = "after"
    failures: dict[str, int] = {}
    for sample in chosen:
        if not sample.ok:
            why = (sample.error or (f"degraded: {sample.reason}" if sample.degraded else None)
                   or (f"served by {sample.provider}" if sample.status == 200 else f"status {sample.status}"))
            failures[why[:120]] = failures.get(why[:120], 0) + 1
    rate = success_rate(chosen)
    if rate is None:
        raise NoData(f"no {service} request was sent during the {_what(provider, mode)}")
    return {"phase": phase, "rate": round(rate, 5), "n": len(chosen), "failed": sum(failures.values()),
            "failures": failures}


def staleness_during_failover(
    provider: str = "alpaca",
    mode: str | None = None,
    after_seconds: float = 5.0,
    symbol: str = "AAPL",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """The oldest market data served while ``provider`` was down and for ``after_seconds`` after each outage
    ended, from the answers' ``age_seconds``. Seed: freshness < 5 s (critical past 30 s). Returns ``{"phase",
    "max_age_seconds", "stale_answers", "answers"}``: judge ``max_age_seconds`` with a range tolerance.

    Before the method: a live baseline of quotes for ``symbol``. After it: NoData without a matching fault,
    samples, or any answer carrying an age."""
    provider, mode, symbol = _provider(provider), _mode(mode), ticker(symbol)
    after_seconds = checked_number("after_seconds", after_seconds, greater_than=0, at_most=3600)
    run, matching = _outages_of_this_run(configuration, provider, mode)
    if not matching:
        result = {"phase": "before", **staleness(live_samples("market_data", symbol, False, BASELINE_SECONDS, MIN_RATE_HZ,
                                                        DEFAULT_HANG_SECONDS, configuration, secrets))}
    else:
        samples = _samples(run, "market_data")
        chosen = {id(s): s for o in matching for s in in_window(samples, o.applied_at, o.ended_at + after_seconds)}
        result = {"phase": "after", **staleness(list(chosen.values()))}
    if result["max_age_seconds"] is None:
        raise NoData(f"no market data answer with an age was served ({result['phase']} the method)")
    return result


def recovery_to_primary(
    service: str = "ai_decision",
    provider: str = "openai",
    mode: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Seconds from the end of each outage of ``provider`` until it served an ok answer again (its circuit
    breaker's cool-down, plus the sampler's period). Returns ``{"phase", "n", "p50", "p95", "max", "seconds"}``.
    Before the method: zeros. After it: NoData without a matching fault or samples; BudgetExceeded, naming the
    outage, when the provider never served again while the sampler ran."""
    service, provider, mode = service_name(service), _provider(provider), _mode(mode)
    run, matching = _outages_of_this_run(configuration, provider, mode)
    if not matching:
        return {"phase": "before", "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "seconds": []}
    samples = _samples(run, service)
    measured = []
    for number, outage in enumerate(matching, start=1):
        seconds = recovered_seconds(samples, outage)
        if seconds is None:
            last = samples[-1].sent_at if samples else outage.ended_at
            raise BudgetExceeded(f"trial {outage.trial or number}: {provider} served no ok answer in the "
                                 f"{max(0.0, last - outage.ended_at):.1f} s sampled after its outage ended")
        measured.append(round(seconds, 3))
    return {"phase": "after", "provider": provider, **distribution(measured), "seconds": measured}


def all_providers_down(
    service: str = "ai_decision",
    providers: list[str] | None = None,
    hang_seconds: float = DEFAULT_HANG_SECONDS,
    symbol: str = "AAPL",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """How ``service`` answered while every one of ``providers`` (default: the whole LLM chain) was down at once:
    ``{"phase", "n", "answered", "hangs", "explained_share", "degraded_share", "p99_latency_s", "bad_answers",
    "reasons"}``. ``explained_share`` is the share of requests that got a well-formed answer which is either a
    live decision or a degraded one that gives its reason. The seed's bar: every answer explained (judge
    ``explained_share`` ≥ 0.999), no hangs, decision p99 < 10 s (a hang counts as ``hang_seconds``).

    Before the method: the same figures on a live baseline. After it: NoData when the providers were never all
    down at the same time in this run, or nothing was sampled then; BudgetExceeded when a live provider answered
    inside that window (then the faults did not take, and a pass would be a lie)."""
    service, symbol = service_name(service), ticker(symbol)
    providers = list(LLM_PROVIDERS if providers is None else providers)
    if not providers:
        raise InvalidArgument("providers must name at least one provider")
    for name in providers:
        _provider(name, "providers entry")
    hang_seconds = checked_number("hang_seconds", hang_seconds, greater_than=0, at_most=300)
    run, method_ran = _run(configuration)
    found = [o for o in outages(run) if o.provider in providers and o.error_rate >= 1.0]
    if not found:
        if method_ran:
            raise NoData(f"the method ran but recorded no fault of {', '.join(providers)}")
        chosen, phase = live_samples(service, symbol, False, BASELINE_SECONDS, MIN_RATE_HZ, hang_seconds,
                              configuration, secrets), "before"
    else:
        # The window when every provider was down: the intersection of each provider's outages.
        spans = {p: [o for o in found if o.provider == p] for p in providers}
        missing = [p for p, found_for in spans.items() if not found_for]
        if missing:
            raise NoData(f"{', '.join(missing)} had no fault in this run, so not all providers were down")
        start = max(min(o.applied_at for o in spans[p]) for p in providers)
        end = min(max(o.ended_at for o in spans[p]) for p in providers)
        if not start < end:
            raise NoData(f"{', '.join(providers)} were never all down at the same time in this run")
        chosen, phase = in_window(_samples(run, service), start, end), "after"
        if not chosen:
            raise NoData(f"no {service} request was sent while {', '.join(providers)} were all down")
        # Only an answer that *arrived* inside the window proves a fault did not take: one sent inside it may have
        # waited in the service until a provider healed.
        live = [s for s in chosen if s.ok and s.provider in providers and s.received_at is not None
                and s.received_at < end]
        if live:
            raise BudgetExceeded(f"{live[0].provider} answered at {live[0].sent_at:.3f} while every provider was "
                                 f"meant to be down ({len(live)} live answers): the faults did not take effect")
    answered = [s for s in chosen if s.status is not None]
    degraded = [s for s in answered if s.status == 200 and s.valid and s.degraded and s.reason]
    explained = [s for s in answered if s.ok or s in degraded]
    return {
        "phase": phase, "n": len(chosen), "answered": len(answered), "hangs": len(chosen) - len(answered),
        "explained_share": round(len(explained) / len(chosen), 5),
        "degraded_share": round(len(degraded) / len(chosen), 5),
        "p99_latency_s": round(latency_quantile(chosen, 0.99, hang_seconds), 3),
        "bad_answers": sum(1 for s in answered if not s.valid),
        "reasons": sorted({s.reason for s in degraded})[:3],
    }


def provider_switches(
    service: str = "market_data",
    provider: str = "alpaca",
    mode: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """How often the serving provider changed, among consecutive ok answers, during this run's outages of
    ``provider``: a partial fault (error_rate 0.5) must not make the service flap. Returns ``{"phase",
    "switches", "per_minute", "serving": {provider: answers}, "first": [(at, from, to), ...]}``.
    Before the method: the switches in a live baseline. After it: NoData without a matching fault or samples."""
    service, provider, mode = service_name(service), _provider(provider), _mode(mode)
    run, matching = _outages_of_this_run(configuration, provider, mode)
    if not matching:
        windows = [live_samples(service, "AAPL", False, BASELINE_SECONDS, MIN_RATE_HZ, DEFAULT_HANG_SECONDS,
                         configuration, secrets)]
        seconds, phase = BASELINE_SECONDS, "before"
    else:
        windows = _during(_samples(run, service), matching)
        seconds, phase = sum(o.ended_at - o.applied_at for o in matching), "after"
    changes = [c for window in windows for c in switches(window)]
    serving: dict[str, int] = {}
    for sample in (s for window in windows for s in window if s.ok):
        serving[sample.provider] = serving.get(sample.provider, 0) + 1
    return {"phase": phase, "switches": len(changes), "per_minute": round(len(changes) * 60 / seconds, 2),
            "serving": serving, "first": [[round(at, 3), a, b] for at, a, b in changes[:10]]}


def calls_during_outages(
    provider: str = "openai",
    mode: str | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """How many sampled decisions made the AI decision service actually call ``provider`` during each of its
    outages (of ``mode``, if given), from each answer's ``attempts``: a client honouring a 429's Retry-After, or
    an open circuit, calls a failing provider a few times per outage, not on every request. Returns ``{"phase",
    "max_per_outage", "per_outage": [...], "requests_per_outage": [...]}``.
    Before the method: zeros. After it: NoData without a matching fault or samples."""
    provider, mode = _provider(provider), _mode(mode)
    run, matching = _outages_of_this_run(configuration, provider, mode)
    if not matching:
        return {"phase": "before", "max_per_outage": 0, "per_outage": [], "requests_per_outage": []}
    windows = _during(_samples(run, "ai_decision"), matching)
    calls = [calls_to(window, provider) for window in windows]
    return {"phase": "after", "provider": provider, "max_per_outage": max(calls), "per_outage": calls,
            "requests_per_outage": [len(window) for window in windows]}


def _moved(name: str) -> None:
    deprecated(f"probes.providers.{name} is deprecated and will be removed in the next release: it generates "
               f"load, so it is an action now, chaoslib_ext.actions.load.{name} (type: action, background: true)")


def sample_service(
    service: str = "ai_decision",
    duration_seconds: float = 60.0,
    rate_hz: float = 10.0,
    symbol: str = "AAPL",
    crypto: bool = False,
    hang_seconds: float = DEFAULT_HANG_SECONDS,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Deprecated: ``chaoslib_ext.actions.load.sample_service``, run as a background action."""
    _moved("sample_service")
    return load_sample_service(service, duration_seconds, rate_hz, symbol, crypto, hang_seconds, configuration,
                               secrets)


def stop_sampling(service: str | None = None, configuration: Configuration = None) -> dict:
    """Deprecated: ``chaoslib_ext.actions.load.stop_sampling``."""
    _moved("stop_sampling")
    return load_stop_sampling(service, configuration)

