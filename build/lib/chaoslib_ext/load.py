"""Load for experiments: call the AI decision or market data service open-loop and keep every answer as evidence.

A failover can only be seen *while* the fault is in force, so an experiment runs ``sample_service`` as a Chaos
Toolkit ``background: true`` action beside its fault actions (``chaoslib_ext.actions.load``), and ends the method
with ``stop_sampling``. The samples go to a JSON-lines file beside the run's timeline, named by the
``observation.sampling`` record that the provider probes read after the method.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import flag, number
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.samples import SERVICES, Sample, decision_sample, quote_sample, success_rate
from chaoslib_ext.targets import from_configuration

__all__ = ["sample_service", "stop_sampling"]

MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 100.0
DEFAULT_HANG_SECONDS = 15.0
"""The sampler's client timeout: longer than the decision p99 bound (10 s), so a slow answer is measured, not cut
off; an answer that has not come by then counts as a hang."""


def service_name(service: Any) -> str:
    """``service`` if it is one the load can call; InvalidArgument listing them if not."""
    if service not in SERVICES:
        raise InvalidArgument(f"service {service!r} is not one of {', '.join(SERVICES)}")
    return service


def ticker(symbol: Any) -> str:
    """``symbol`` if it is a ticker (AAPL) or a coin (bitcoin); InvalidArgument naming it if not."""
    if not isinstance(symbol, str) or not symbol or not symbol.replace("-", "").replace(".", "").isalnum():
        raise InvalidArgument(f"symbol must be a ticker such as AAPL or a coin such as bitcoin, got {symbol!r}")
    return symbol


def _request(service: str, symbol: str, crypto: bool) -> tuple[str, str, dict | None]:
    if service == "ai_decision":
        return "POST", "/decision", {"symbol": symbol}
    return "GET", f"/{'crypto' if crypto else 'quote'}/{symbol}", None


async def _sample_once(client: httpx.AsyncClient, method: str, path: str, body: dict | None, service: str) -> Sample:
    classify = decision_sample if service == "ai_decision" else quote_sample
    sent_at, started = time.time(), time.perf_counter()
    try:
        response = await client.request(method, path, json=body)
    except httpx.TimeoutException:
        return classify(sent_at, None, None, None, error="no answer before the client timeout")
    except httpx.HTTPError as exc:
        return classify(sent_at, time.perf_counter() - started, None, None, error=f"{type(exc).__name__}: {exc}")
    latency = time.perf_counter() - started
    try:
        payload = response.json()
    except ValueError:
        payload = None
    return classify(sent_at, latency, response.status_code, payload)


STOP_CHECK_SECONDS = 0.5


async def _sample(base_url: str, service: str, symbol: str, crypto: bool, duration: float, rate_hz: float,
                  hang_seconds: float, stop_requested: Callable[[], bool] = lambda: False) -> list[Sample]:
    """Open loop: request k is sent at start + k/rate_hz whatever happened to the earlier ones, until
    ``duration`` has passed or ``stop_requested()`` (asked every ``STOP_CHECK_SECONDS``) says so."""
    method, path, body = _request(service, symbol, crypto)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=20)
    async with httpx.AsyncClient(base_url=base_url, timeout=hang_seconds, limits=limits) as client:
        start, tasks, checked = time.monotonic(), [], 0
        for k in range(int(duration * rate_hz)):
            delay = start + k / rate_hz - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if k / rate_hz >= checked * STOP_CHECK_SECONDS:
                checked += 1
                if stop_requested():
                    break
            tasks.append(asyncio.create_task(_sample_once(client, method, path, body, service)))
        return list(await asyncio.gather(*tasks))


def _endpoint(service: str, configuration: Configuration, secrets: Secrets) -> str:
    with from_configuration(configuration, secrets) as target:
        return target.endpoint(service)


def live_samples(service: str, symbol: str, crypto: bool, duration: float, rate_hz: float, hang_seconds: float,
                 configuration: Configuration, secrets: Secrets) -> list[Sample]:
    """``duration`` seconds of samples of ``service``, taken now: the probes' baselines before the method."""
    base_url = _endpoint(service, configuration, secrets)
    return asyncio.run(_sample(base_url, service, symbol, crypto, duration, rate_hz, hang_seconds))


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
    """Call ``service`` (``ai_decision``: ``POST /decision {"symbol"}``; ``market_data``: ``GET /quote/{symbol}``,
    or ``/crypto/{symbol}`` with ``crypto``) open-loop at ``rate_hz`` (10–100) for at most ``duration_seconds``,
    and record every response. Run it with ``background: true`` first in the method, beside the fault actions,
    and end the method with ``stop_sampling`` so it stops when the faults are done.

    Writes the samples to ``samples-<service>-<ms>.jsonl`` beside the timeline and records
    ``observation.sampling`` (with the file) for the probes that read them. Returns ``{"service", "n",
    "rate_hz", "ok_share", "started_at", "ended_at", "samples_file"}``. A request with no answer within
    ``hang_seconds`` is recorded as a hang (no latency, no status)."""
    service = service_name(service)
    duration_seconds = number("duration_seconds", duration_seconds, greater_than=0, at_most=3600)
    rate_hz = number("rate_hz", rate_hz, greater_than=0, at_most=MAX_RATE_HZ)
    if rate_hz < MIN_RATE_HZ:
        raise InvalidArgument(f"rate_hz must be >= {MIN_RATE_HZ:g} to resolve a failover to 100 ms, got {rate_hz!r}")
    symbol = ticker(symbol)
    hang_seconds = number("hang_seconds", hang_seconds, greater_than=0, at_most=300)
    flag("crypto", crypto)
    started_at = time.time()

    def stop_requested() -> bool:
        return any(e.get("kind") == "sampling.stop" and e.get("service") in (None, service) and e["at"] >= started_at
                   for e in timeline.read(configuration))

    base_url = _endpoint(service, configuration, secrets)
    samples = asyncio.run(_sample(base_url, service, symbol, crypto, duration_seconds, rate_hz, hang_seconds,
                                  stop_requested))
    ended_at = time.time()
    path = timeline.timeline_path(configuration).parent / f"samples-{service}-{int(started_at * 1000)}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(s.to_json(), sort_keys=True) + "\n" for s in samples), encoding="utf-8")
    sent = [s.sent_at for s in samples]
    achieved = (len(sent) - 1) / (max(sent) - min(sent)) if len(sent) > 1 and max(sent) > min(sent) else 0.0
    summary = {"service": service, "n": len(samples), "rate_hz": round(achieved, 2),
               "ok_share": round(success_rate(samples) or 0.0, 5), "started_at": started_at, "ended_at": ended_at,
               "samples_file": str(path.resolve())}
    timeline.record("observation.sampling", configuration, at=started_at, symbol=symbol, crypto=crypto, **summary)
    return summary


def stop_sampling(service: str | None = None, configuration: Configuration = None) -> dict:
    """Tell the running ``sample_service`` (of ``service``, or every one) to stop: put it last in the method,
    after the fault actions, so the sampler covers them all however long they took. Records ``sampling.stop``
    in the timeline (nothing else is touched). Returns ``{"service", "at"}``."""
    if service is not None:
        service_name(service)
    event = timeline.record("sampling.stop", configuration, service=service)
    return {"service": service, "at": event["at"]}
