"""The AI decision service's HTTP API and metrics (docs/local-stack-contract.md, "AI decision service")."""
from __future__ import annotations

import json
import re
from collections.abc import Iterator

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from chaos_dr_stack.ai_decision.breaker import STATE_CODES
from chaos_dr_stack.ai_decision.engine import PRIMARY, DecisionEngine
from chaos_dr_stack.providers.catalogue import LLM_PROVIDERS

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
SERVED_BY = (*LLM_PROVIDERS, "cache", "fallback")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 2.5, 5.0, 8.0, 10.0, 15.0)
"""Edges at the seed's p50 (2 s), p95 (5 s) and p99 (10 s) bounds and its alert thresholds (4 s, 8 s)."""


class _StateCollector:
    def __init__(self, engine: DecisionEngine):
        self._engine = engine

    def collect(self) -> Iterator:
        circuit = GaugeMetricFamily("ai_decision_circuit_state",
                                    "Circuit per provider: 0 closed, 1 open, 2 half-open, 3 rate-limited", labels=["provider"])
        for provider, breaker in self._engine.breakers.items():
            circuit.add_metric([provider], STATE_CODES[breaker.state])
        yield circuit
        yield GaugeMetricFamily("ai_decision_spend_usd_today", "LLM spend today (UTC) at list prices",
                                value=self._engine.ledger.spent_today)
        yield GaugeMetricFamily("ai_decision_cost_mode_economy", "1 when past the daily budget (cheaper models)",
                                value=1.0 if self._engine.ledger.economy else 0.0)


def symbol_error(body: object) -> str | None:
    if not isinstance(body, dict):
        return f'body: must be a JSON object like {{"symbol": "AAPL"}}, got {str(body)[:80]!r}'
    if "symbol" not in body or body["symbol"] is None:
        return "symbol: is required"
    symbol = body["symbol"]
    if not isinstance(symbol, str) or not SYMBOL.match(symbol.upper()):
        return f"symbol: must be 1-10 characters of [A-Z0-9.-] starting with a letter, got {str(symbol)[:40]!r}"
    return None


def create_app(engine: DecisionEngine) -> FastAPI:
    app = FastAPI(title="ai decision", docs_url=None, redoc_url=None, openapi_url=None)
    registry = CollectorRegistry(auto_describe=False)
    latency = Histogram("ai_decision_latency_seconds", "Time to answer POST /decision", buckets=LATENCY_BUCKETS,
                        registry=registry)
    decisions = Counter("ai_decision_decisions", "Decisions by who served them", ["provider"], registry=registry)
    fallbacks = Counter("ai_decision_fallbacks", "Decisions served by anything but the primary, by who served",
                        ["provider"], registry=registry)
    primary = Gauge("ai_decision_primary_provider", "1 for the provider that served the latest decision",
                    ["provider"], registry=registry)
    calls = Counter("ai_decision_provider_requests", "Calls to each LLM provider by outcome", ["provider", "outcome"],
                    registry=registry)
    tokens = Counter("ai_decision_tokens", "Tokens used", ["provider", "model", "kind"], registry=registry)
    registry.register(_StateCollector(engine))
    for served_by in SERVED_BY:
        decisions.labels(served_by)
        primary.labels(served_by).set(1 if served_by == PRIMARY else 0)
        if served_by != PRIMARY:
            fallbacks.labels(served_by)

    @app.post("/decision")
    async def decision(request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            return JSONResponse({"detail": f"body: not JSON: {raw[:80]!r}"}, status_code=422)
        if (error := symbol_error(body)) is not None:
            return JSONResponse({"detail": error}, status_code=422)
        result = await engine.decide(body["symbol"].upper())
        served_by = result["provider"]
        latency.observe(result["latency_ms"] / 1000)
        decisions.labels(served_by).inc()
        if served_by != PRIMARY:
            fallbacks.labels(served_by).inc()
        for name in SERVED_BY:
            primary.labels(name).set(1 if name == served_by else 0)
        for attempt in result["attempts"]:
            if attempt["outcome"] not in ("circuit_open", "skipped_rate_limited", "skipped_budget"):
                calls.labels(attempt["provider"], attempt["outcome"]).inc()
        if result["usage"]:
            tokens.labels(served_by, result["model"], "prompt").inc(result["usage"]["prompt_tokens"])
            tokens.labels(served_by, result["model"], "completion").inc(result["usage"]["completion_tokens"])
        return JSONResponse(result)

    @app.get("/providers")
    async def providers() -> dict:
        economy = engine.ledger.economy
        return {
            "providers": [{
                "provider": p, "model": engine.model_for(p, economy), "circuit": b.state,
                "open_for_s": None if b.open_until is None else round(b.open_until - engine.clock(), 3),
                "consecutive_failures": b.consecutive_failures,
            } for p, b in engine.breakers.items()],
            "spend_usd_today": round(engine.ledger.spent_today, 6),
            "cost_mode": "economy" if economy else "normal",
        }

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
