"""The market data service's HTTP API and metrics (docs/local-stack-contract.md, "Market data service")."""
from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator

from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from chaos_dr_stack.market_data.feeds import QUOTE_PROVIDERS, FeedError
from chaos_dr_stack.market_data.service import MarketData

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
COIN = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.08, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
"""Edges at the seed's quote latency bound (p95 < 100 ms) and its warning threshold (80 ms)."""


class _StateCollector:
    def __init__(self, service: MarketData):
        self._service = service

    def collect(self) -> Iterator:
        serving = GaugeMetricFamily("market_data_provider_serving", "1 for the quote provider now serving",
                                    labels=["provider"])
        for provider in QUOTE_PROVIDERS:
            serving.add_metric([provider], 1.0 if provider == self._service.selector.serving else 0.0)
        yield serving
        staleness = GaugeMetricFamily("market_data_staleness_seconds", "Age of the cached quote (coins by id)",
                                      labels=["symbol"])
        for key, quote in [*self._service.quotes.items(), *self._service.crypto.items()]:
            staleness.add_metric([key], self._service.age(quote))
        yield staleness


def create_app(service: MarketData, registry: CollectorRegistry) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title="market data", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    latency = Histogram("market_data_quote_latency_seconds", "Time to answer GET /quote", buckets=LATENCY_BUCKETS,
                        registry=registry)
    hits = Counter("market_data_cache_hits", "Quotes served from the cache", registry=registry)
    misses = Counter("market_data_cache_misses", "Quotes fetched because the cache had none", registry=registry)
    registry.register(_StateCollector(service))

    @app.get("/quote/{symbol}")
    async def quote(symbol: str) -> JSONResponse:
        started = time.perf_counter()
        try:
            symbol = symbol.upper()
            if not SYMBOL.match(symbol):
                return JSONResponse({"detail": f"symbol: must be 1-10 characters of [A-Z0-9.-] starting with a "
                                               f"letter, got {symbol[:40]!r}"}, status_code=400)
            try:
                found, cached = await service.quote(symbol)
            except FeedError as exc:
                misses.inc()
                return JSONResponse({"detail": f"no quote for {symbol}: every provider failed: {exc}"},
                                    status_code=503)
            (hits if cached else misses).inc()
            return JSONResponse({"symbol": symbol, **service.describe(found, cached)})
        finally:
            latency.observe(time.perf_counter() - started)

    @app.get("/crypto/{coin}")
    async def crypto(coin: str) -> JSONResponse:
        coin = coin.lower()
        if not COIN.match(coin):
            return JSONResponse({"detail": f"coin: must be a CoinGecko id like 'bitcoin', got {coin[:40]!r}"},
                                status_code=400)
        try:
            found, cached = await service.coin(coin)
        except FeedError as exc:
            misses.inc()
            return JSONResponse({"detail": f"no price for {coin}: {exc}"}, status_code=503)
        (hits if cached else misses).inc()
        described = service.describe(found, cached)
        return JSONResponse({"coin": coin, "usd": found.price, **{k: v for k, v in described.items()
                                                                   if k not in ("bid", "ask", "price")}})

    @app.get("/headlines")
    async def headlines(q: str = "markets", limit: int = 5) -> JSONResponse:
        if not 1 <= len(q) <= 100:
            return JSONResponse({"detail": "q: must be 1-100 characters"}, status_code=400)
        if not 1 <= limit <= 50:
            return JSONResponse({"detail": f"limit: must be within 1..50, got {limit}"}, status_code=400)
        try:
            articles, provider = await service.headlines(q, limit)
        except FeedError as exc:
            return JSONResponse({"detail": f"no headlines: every provider failed: {exc}"}, status_code=503)
        return JSONResponse({"query": q, "provider": provider, "articles": articles, "fetched_at": time.time()})

    @app.get("/providers")
    async def providers() -> dict:
        selector = service.selector
        now = selector.clock()
        return {
            "serving": selector.serving,
            "chain": [{"provider": p, "consecutive_failures": h.consecutive_failures,
                       "healthy_for_s": None if h.healthy_since is None else round(now - h.healthy_since, 3)}
                      for p, h in selector.health.items()],
            "failovers": list(service.moves),
        }

    @app.get("/health")
    async def health() -> dict:
        fresh = any(service.age(q) <= service.settings.stale_after_s for q in service.quotes.values())
        return {"status": "ok" if fresh else "degraded", "serving": service.selector.serving}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
