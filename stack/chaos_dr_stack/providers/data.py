"""The data providers' APIs: Alpaca, Finnhub, Polygon (quotes), CoinGecko (crypto), NewsAPI and GDELT (headlines).

Shapes follow the real APIs closely enough that a client written against the real one parses these; only the
fields the stack's services read are guaranteed to carry meaningful values.
"""
from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from chaos_dr_stack.providers import market

SYMBOL = re.compile(r"^[A-Z][A-Z0-9.\-]{0,9}$")
COIN = re.compile(r"^[a-z0-9][a-z0-9\-]{0,63}$")
MAX_BARS = 1000
HEADLINES = (
    "{symbol} shares move as traders weigh the Fed's next step",
    "Chipmakers lead a broad rally; {symbol} among the gainers",
    "Analysts revise {symbol} price targets after earnings",
    "Markets steady as bond yields ease; {symbol} flat",
    "Crypto rebounds while equities pause; {symbol} in focus",
)


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def data_router(clock: Callable[[], float] = time.time) -> APIRouter:
    router = APIRouter()

    def bad_symbol(provider: str, value: str | None, name: str = "symbol") -> JSONResponse | None:
        if value is not None and SYMBOL.match(value):
            return None
        message = f"invalid {name}: {value!r:.40}" if value else f"missing {name}"
        shapes = {
            "alpaca": {"code": 42210000, "message": message},
            "finnhub": {"error": message},
            "polygon": {"status": "ERROR", "request_id": uuid.uuid4().hex, "error": message},
        }
        return JSONResponse(shapes[provider], status_code=422 if provider == "alpaca" else 400)

    # Alpaca (market data API v2).
    def alpaca_quote(symbol: str, now: float) -> dict:
        bid, _, ask = market.quote(symbol, now, "alpaca")
        return {"t": iso(now), "ax": "V", "ap": ask, "as": 2, "bx": "V", "bp": bid, "bs": 3, "c": ["R"], "z": "C"}

    @router.get("/alpaca/v2/stocks/quotes/latest")
    async def alpaca_latest_quotes(symbols: str | None = Query(None)):
        wanted = [s for s in (symbols or "").split(",") if s]
        for symbol in wanted or [None]:
            if (error := bad_symbol("alpaca", symbol, "symbols")) is not None:
                return error
        now = clock()
        return {"quotes": {s: alpaca_quote(s, now) for s in wanted}}

    @router.get("/alpaca/v2/stocks/{symbol}/quotes/latest")
    async def alpaca_latest_quote(symbol: str):
        if (error := bad_symbol("alpaca", symbol)) is not None:
            return error
        return {"symbol": symbol, "quote": alpaca_quote(symbol, clock())}

    @router.get("/alpaca/v2/stocks/{symbol}/bars")
    async def alpaca_bars(symbol: str, timeframe: str = "1Min", limit: int = Query(100, ge=1, le=MAX_BARS)):
        if (error := bad_symbol("alpaca", symbol)) is not None:
            return error
        seconds = {"1Min": 60, "5Min": 300, "15Min": 900, "1Hour": 3600, "1Day": 86400}.get(timeframe)
        if seconds is None:
            return JSONResponse({"code": 42210000, "message": f"invalid timeframe: {timeframe!r:.20}"}, status_code=422)
        end = math.floor(clock() / seconds) * seconds
        bars = []
        for start in range(int(end - seconds * limit), int(end), seconds):
            path = [market.price(symbol, start + seconds * k / 4) for k in range(5)]
            bars.append({
                "t": iso(start), "o": round(path[0], 4), "h": round(max(path), 4), "l": round(min(path), 4),
                "c": round(path[-1], 4), "v": 1000 + int(500 * (market.unit("vol", symbol, start) + 1)),
                "n": 40, "vw": round(sum(path) / len(path), 4),
            })
        return {"bars": bars, "symbol": symbol, "next_page_token": None}

    # Finnhub.
    @router.get("/finnhub/api/v1/quote")
    async def finnhub_quote(symbol: str | None = Query(None)):
        if (error := bad_symbol("finnhub", symbol)) is not None:
            return error
        now = clock()
        _, price, _ = market.quote(symbol, now, "finnhub")
        day_start = math.floor(now / 86400) * 86400
        previous_close = market.price(symbol, day_start - 1)
        opened = market.price(symbol, day_start)
        samples = [market.price(symbol, day_start + k * 900) for k in range(int((now - day_start) // 900) + 1)] + [price]
        return {
            "c": round(price, 4), "d": round(price - previous_close, 4),
            "dp": round((price / previous_close - 1) * 100, 4), "h": round(max(samples), 4),
            "l": round(min(samples), 4), "o": round(opened, 4), "pc": round(previous_close, 4), "t": int(now),
        }

    @router.get("/finnhub/api/v1/stock/metric")
    async def finnhub_metric(symbol: str | None = Query(None), metric: str = "all"):
        if (error := bad_symbol("finnhub", symbol)) is not None:
            return error
        price = market.price(symbol, clock())
        u = market.unit
        return {"metric": {
            "52WeekHigh": round(price * 1.25, 2), "52WeekLow": round(price * 0.75, 2),
            "beta": round(1 + 0.4 * u("beta", symbol), 3), "peTTM": round(25 + 10 * u("pe", symbol), 2),
            "marketCapitalization": round(price * (2_000 + 1_500 * u("shares", symbol)), 1),
            "dividendYieldIndicatedAnnual": round(max(0.0, 1 + u("div", symbol)), 3),
        }, "metricType": metric, "symbol": symbol}

    # Polygon.
    @router.get("/polygon/v2/last/nbbo/{ticker}")
    async def polygon_nbbo(ticker: str):
        if (error := bad_symbol("polygon", ticker, "ticker")) is not None:
            return error
        now = clock()
        bid, _, ask = market.quote(ticker, now, "polygon")
        ns = int(now * 1e9)
        return {"request_id": uuid.uuid4().hex, "status": "OK", "results": {
            "T": ticker, "P": ask, "S": 1, "p": bid, "s": 2, "t": ns, "y": ns, "q": ns // 1000 % 10**9,
            "x": 11, "X": 11, "c": [1], "z": 3,
        }}

    # CoinGecko.
    @router.get("/coingecko/api/v3/simple/price")
    async def coingecko_price(ids: str | None = Query(None), vs_currencies: str | None = Query(None)):
        coins = [c for c in (ids or "").split(",") if c]
        currencies = [c for c in (vs_currencies or "").split(",") if c]
        if not coins or not all(COIN.match(c) for c in coins):
            return JSONResponse({"error": "Missing or invalid parameter: ids"}, status_code=400)
        if not currencies:
            return JSONResponse({"error": "Missing parameter: vs_currencies"}, status_code=400)
        rates = {"usd": 1.0, "eur": 0.92, "gbp": 0.79}
        now = clock()
        return {coin: {cur: round(market.price(coin, now) * rates[cur], 6) for cur in currencies if cur in rates}
                for coin in coins}

    # Headlines.
    def articles(topic: str, n: int, now: float) -> list[tuple[str, str, float]]:
        return [(HEADLINES[(k + int(now // 3600)) % len(HEADLINES)].format(symbol=topic), f"sim-{k}", now - 600 * k)
                for k in range(n)]

    @router.get("/newsapi/v2/top-headlines")
    async def newsapi(q: str | None = None, category: str | None = None, pageSize: int = Query(5, ge=1, le=100)):  # noqa: N803 - the API's name
        now = clock()
        items = articles(q or "AAPL", pageSize, now)
        return {"status": "ok", "totalResults": len(items), "articles": [{
            "source": {"id": None, "name": "Simulated Wire"}, "author": "Sim Reporter", "title": title,
            "description": title, "url": f"https://news.example/{slug}", "urlToImage": None,
            "publishedAt": iso(at).replace(".000Z", "Z"), "content": title,
        } for title, slug, at in items]}

    @router.get("/gdelt/api/v2/doc/doc")
    async def gdelt(query: str | None = None, mode: str = "artlist", format: str = "json",  # noqa: A002
                    maxrecords: int = Query(5, ge=1, le=250)):
        if not query:
            return JSONResponse({"error": "Your query was too short or too long."}, status_code=400)
        now = clock()
        return {"articles": [{
            "url": f"https://gdelt.example/{slug}", "url_mobile": "", "title": title,
            "seendate": datetime.fromtimestamp(at, timezone.utc).strftime("%Y%m%dT%H%M%SZ"), "socialimage": "",
            "domain": "gdelt.example", "language": "English", "sourcecountry": "United States",
        } for title, slug, at in articles(query, maxrecords, now)]}

    return router
