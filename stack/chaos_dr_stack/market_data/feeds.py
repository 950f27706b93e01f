"""Fetching quotes from each data provider's API (through the simulator here), parsed into one shape.

Every failure becomes a FeedError whose ``outcome`` is what the metrics count: timeout, reset (the connection
failed), error_<status>, malformed (a 200 whose body is not a usable answer).
"""
from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

import httpx

QUOTE_PROVIDERS = ("alpaca", "finnhub", "polygon")
"""The seed's table: Alpaca for quotes, failing over to Finnhub, which fails over to Polygon."""
CRYPTO_PROVIDER = "coingecko"
HEADLINE_PROVIDERS = ("newsapi", "gdelt")
"""The seed's table: NewsAPI for headlines, failing over to GDELT."""


class FeedError(Exception):
    def __init__(self, provider: str, outcome: str, detail: str = ""):
        super().__init__(f"{provider}: {outcome}{' (' + detail + ')' if detail else ''}")
        self.provider = provider
        self.outcome = outcome


@dataclass(frozen=True)
class Quote:
    symbol: str
    bid: float | None
    ask: float | None
    price: float
    provider: str
    fetched_at: float
    """Unix seconds when the service received it."""
    fetched_mono: float


def _positive(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


class Feeds:
    def __init__(self, providers_url: str, timeout_s: float):
        self.base = providers_url.rstrip("/")
        self.timeout_s = timeout_s
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(timeout_s + 0.25),
                                      limits=httpx.Limits(max_connections=50, max_keepalive_connections=10))

    async def _get_json(self, provider: str, path: str, params: dict | None = None) -> object:
        try:
            async with asyncio.timeout(self.timeout_s):
                response = await self.http.get(f"{self.base}/{provider}{path}", params=params)
        except (TimeoutError, httpx.TimeoutException):
            raise FeedError(provider, "timeout", f"no answer within {self.timeout_s:g} s") from None
        except httpx.TransportError as exc:
            raise FeedError(provider, "reset", type(exc).__name__) from None
        if response.status_code != 200:
            raise FeedError(provider, f"error_{response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise FeedError(provider, "malformed", "body is not JSON") from None

    def _quote(self, symbol: str, provider: str, bid: object, ask: object, price: object = None) -> Quote:
        if price is None:
            if not (_positive(bid) and _positive(ask)):
                raise FeedError(provider, "malformed", f"no bid/ask for {symbol}")
            price = (bid + ask) / 2
        if not _positive(price):
            raise FeedError(provider, "malformed", f"no price for {symbol}")
        return Quote(symbol, bid, ask, round(float(price), 4), provider, time.time(), time.monotonic())

    async def quotes(self, provider: str, symbols: list[str]) -> tuple[list[Quote], list[FeedError]]:
        """Quotes for ``symbols`` from ``provider``: the ones it gave, and the failures (one per failed request)."""
        if provider == "alpaca":
            try:
                data = await self._get_json("alpaca", "/v2/stocks/quotes/latest", {"symbols": ",".join(symbols)})
                quotes = data["quotes"] if isinstance(data, dict) and isinstance(data.get("quotes"), dict) else None
                if quotes is None:
                    raise FeedError(provider, "malformed", "no 'quotes' object")
                out = []
                for symbol in symbols:
                    q = quotes.get(symbol)
                    if not isinstance(q, dict):
                        raise FeedError(provider, "malformed", f"no quote for {symbol}")
                    out.append(self._quote(symbol, provider, q.get("bp"), q.get("ap")))
                return out, []
            except FeedError as exc:
                return [], [exc]
        results = await asyncio.gather(*(self.one_quote(provider, s) for s in symbols), return_exceptions=True)
        good = [r for r in results if isinstance(r, Quote)]
        bad = [r for r in results if isinstance(r, FeedError)]
        unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, FeedError)]
        if unexpected:
            raise unexpected[0]
        return good, bad

    async def one_quote(self, provider: str, symbol: str) -> Quote:
        if provider == "alpaca":
            data = await self._get_json("alpaca", f"/v2/stocks/{symbol}/quotes/latest")
            q = data.get("quote") if isinstance(data, dict) else None
            if not isinstance(q, dict):
                raise FeedError(provider, "malformed", "no 'quote' object")
            return self._quote(symbol, provider, q.get("bp"), q.get("ap"))
        if provider == "finnhub":
            data = await self._get_json("finnhub", "/api/v1/quote", {"symbol": symbol})
            if not isinstance(data, dict):
                raise FeedError(provider, "malformed", "not an object")
            return self._quote(symbol, provider, None, None, data.get("c"))
        if provider == "polygon":
            data = await self._get_json("polygon", f"/v2/last/nbbo/{symbol}")
            r = data.get("results") if isinstance(data, dict) else None
            if not isinstance(r, dict):
                raise FeedError(provider, "malformed", "no 'results' object")
            return self._quote(symbol, provider, r.get("p"), r.get("P"))
        raise ValueError(f"not a quote provider: {provider!r}")

    async def crypto(self, coins: list[str]) -> dict[str, Quote]:
        data = await self._get_json(CRYPTO_PROVIDER, "/api/v3/simple/price",
                                    {"ids": ",".join(coins), "vs_currencies": "usd"})
        if not isinstance(data, dict):
            raise FeedError(CRYPTO_PROVIDER, "malformed", "not an object")
        out = {}
        for coin in coins:
            usd = data.get(coin, {}).get("usd") if isinstance(data.get(coin), dict) else None
            if not _positive(usd):
                raise FeedError(CRYPTO_PROVIDER, "malformed", f"no usd price for {coin}")
            out[coin] = Quote(coin, None, None, float(usd), CRYPTO_PROVIDER, time.time(), time.monotonic())
        return out

    async def headlines(self, provider: str, query: str, limit: int) -> list[dict]:
        """``[{"title", "url", "published_at"}]`` from NewsAPI or GDELT."""
        if provider == "newsapi":
            data = await self._get_json("newsapi", "/v2/top-headlines", {"q": query, "pageSize": limit})
            items = data.get("articles") if isinstance(data, dict) else None
            keys = ("title", "url", "publishedAt")
        elif provider == "gdelt":
            data = await self._get_json("gdelt", "/api/v2/doc/doc", {"query": query, "mode": "artlist",
                                                                     "format": "json", "maxrecords": limit})
            items = data.get("articles") if isinstance(data, dict) else None
            keys = ("title", "url", "seendate")
        else:
            raise ValueError(f"not a headline provider: {provider!r}")
        if not isinstance(items, list) or not all(isinstance(i, dict) and all(k in i for k in keys) for i in items):
            raise FeedError(provider, "malformed", "no list of articles")
        return [{"title": i[keys[0]], "url": i[keys[1]], "published_at": i[keys[2]]} for i in items[:limit]]

    async def aclose(self) -> None:
        await self.http.aclose()
