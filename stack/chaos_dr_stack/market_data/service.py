"""The quote cache and the loops that keep it fresh: stock quotes from the serving provider, probes of the providers
above it, crypto from CoinGecko."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter

from chaos_dr_stack.market_data.failover import FailoverSettings, Move, ProviderSelector
from chaos_dr_stack.market_data.feeds import CRYPTO_PROVIDER, HEADLINE_PROVIDERS, QUOTE_PROVIDERS, FeedError, Feeds, Quote

log = logging.getLogger(__name__)

MAX_WATCHED = 50
"""Symbols (and coins) the refresh loop keeps fresh: the configured ones plus those asked for since."""
RETRY_PAUSE_S = 0.05
"""Pause before retrying a failed poll: "at once", without spinning when a provider refuses instantly."""


@dataclass(frozen=True)
class MarketDataSettings:
    symbols: tuple[str, ...] = ("AAPL", "MSFT", "NVDA")
    coins: tuple[str, ...] = ("bitcoin", "ethereum")
    refresh_s: float = 1.0
    """Refresh period: with the SLO's 5 s freshness bound, a 1 s period leaves room for a failover."""
    fetch_timeout_s: float = 1.0
    """A quote API answers in ~100 ms at p99; a second is an outage, not a slow answer."""
    stale_after_s: float = 5.0
    """Seed: data freshness < 5 seconds."""
    critical_after_s: float = 30.0
    """Seed: critical when data staleness > 30 seconds."""
    failover: FailoverSettings = field(default_factory=FailoverSettings)


class MarketData:
    def __init__(self, feeds: Feeds, settings: MarketDataSettings, registry: CollectorRegistry,
                 clock: Callable[[], float] = time.monotonic):
        self.feeds = feeds
        self.settings = settings
        self.clock = clock
        self.selector = ProviderSelector(QUOTE_PROVIDERS, settings.failover, clock)
        self.quotes: dict[str, Quote] = {}
        self.crypto: dict[str, Quote] = {}
        self.watched = list(settings.symbols)
        self.watched_coins = list(settings.coins)
        self.moves: list[dict] = []
        self._tasks: list[asyncio.Task] = []
        self.requests = Counter("market_data_provider_requests", "Requests to each data provider by outcome",
                                ["provider", "outcome"], registry=registry)
        self.failovers = Counter("market_data_failovers", "Moves of the serving quote provider",
                                 ["from_provider", "to_provider"], registry=registry)

    # Life.
    def start(self) -> None:
        self._tasks = [asyncio.create_task(loop(), name=loop.__name__)
                       for loop in (self._quote_loop, self._probe_loop, self._crypto_loop)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.feeds.aclose()

    # Reads.
    def age(self, quote: Quote) -> float:
        return max(0.0, self.clock() - quote.fetched_mono)

    def describe(self, quote: Quote, cached: bool) -> dict:
        age = self.age(quote)
        return {"bid": quote.bid, "ask": quote.ask, "price": quote.price, "provider": quote.provider,
                "fetched_at": quote.fetched_at, "age_seconds": round(age, 3),
                "stale": age > self.settings.stale_after_s, "critical": age > self.settings.critical_after_s,
                "cached": cached}

    async def quote(self, symbol: str) -> tuple[Quote, bool]:
        """(the quote, whether it came from the cache). A miss asks the serving provider, then the ones below it;
        raises FeedError naming every failure when none answers."""
        cached = self.quotes.get(symbol)
        if cached is not None:
            return cached, True
        errors = []
        start = QUOTE_PROVIDERS.index(self.selector.serving)
        for provider in QUOTE_PROVIDERS[start:]:
            try:
                quote = await self.feeds.one_quote(provider, symbol)
            except FeedError as exc:
                self.requests.labels(provider, exc.outcome).inc()
                errors.append(str(exc))
                continue
            self.requests.labels(provider, "ok").inc()
            self.quotes[symbol] = quote
            if symbol not in self.watched and len(self.watched) < MAX_WATCHED:
                self.watched.append(symbol)
            return quote, False
        raise FeedError(self.selector.serving, "unavailable", "; ".join(errors))

    async def coin(self, coin: str) -> tuple[Quote, bool]:
        cached = self.crypto.get(coin)
        if cached is not None:
            return cached, True
        try:
            got = await self.feeds.crypto([coin])
        except FeedError as exc:
            self.requests.labels(CRYPTO_PROVIDER, exc.outcome).inc()
            raise
        self.requests.labels(CRYPTO_PROVIDER, "ok").inc()
        self.crypto.update(got)
        if coin not in self.watched_coins and len(self.watched_coins) < MAX_WATCHED:
            self.watched_coins.append(coin)
        return got[coin], False

    async def headlines(self, query: str, limit: int) -> tuple[list[dict], str]:
        """(articles, the provider that gave them): NewsAPI, else GDELT. Not cached: headlines are asked for
        rarely and a minute-old list is as good as a fresh one to nobody's SLO."""
        errors = []
        for provider in HEADLINE_PROVIDERS:
            try:
                articles = await self.feeds.headlines(provider, query, limit)
            except FeedError as exc:
                self.requests.labels(provider, exc.outcome).inc()
                errors.append(str(exc))
                continue
            self.requests.labels(provider, "ok").inc()
            return articles, provider
        raise FeedError(HEADLINE_PROVIDERS[0], "unavailable", "; ".join(errors))

    # Loops.
    async def _quote_loop(self) -> None:
        while True:
            started = self.clock()
            provider = self.selector.serving
            try:
                good, bad = await self.feeds.quotes(provider, list(self.watched))
            except Exception:  # a bug must not end the loop: log it and count it as a failed poll
                log.exception("poll of %s failed unexpectedly", provider)
                good, bad = [], [FeedError(provider, "malformed", "unexpected error")]
            for quote in good:
                self.quotes[quote.symbol] = quote
            self.requests.labels(provider, "ok").inc(len(good) if provider != "alpaca" else int(bool(good)))
            for error in bad:
                self.requests.labels(provider, error.outcome).inc()
            ok = not bad
            if not ok:
                log.warning("poll of %s failed: %s", provider, "; ".join(map(str, bad[:3])))
            self._moved(self.selector.record_poll(ok))
            if ok or (self.selector.at_bottom() and provider == self.selector.serving):
                await asyncio.sleep(max(0.0, self.settings.refresh_s - (self.clock() - started)))
            else:
                await asyncio.sleep(RETRY_PAUSE_S)  # retry at once, on the next provider if the rule moved

    async def _probe_loop(self) -> None:
        while True:
            started = self.clock()
            above = self.selector.above_serving()
            if above and self.watched:
                symbol = self.watched[0]
                results = await asyncio.gather(*(self._probe(p, symbol) for p in above))
                for provider, ok in zip(above, results):
                    self._moved(self.selector.record_probe(provider, ok))
            await asyncio.sleep(max(0.0, self.settings.refresh_s - (self.clock() - started)))

    async def _probe(self, provider: str, symbol: str) -> bool:
        try:
            await self.feeds.one_quote(provider, symbol)
        except FeedError as exc:
            self.requests.labels(provider, exc.outcome).inc()
            return False
        self.requests.labels(provider, "ok").inc()
        return True

    async def _crypto_loop(self) -> None:
        while True:
            started = self.clock()
            if self.watched_coins:
                try:
                    self.crypto.update(await self.feeds.crypto(list(self.watched_coins)))
                    self.requests.labels(CRYPTO_PROVIDER, "ok").inc()
                except FeedError as exc:
                    self.requests.labels(CRYPTO_PROVIDER, exc.outcome).inc()
            await asyncio.sleep(max(0.0, self.settings.refresh_s - (self.clock() - started)))

    def _moved(self, move: Move | None) -> None:
        if move is None:
            return
        self.failovers.labels(move.from_provider, move.to_provider).inc()
        self.moves.append({"at": time.time(), "from": move.from_provider, "to": move.to_provider,
                           "reason": move.reason})
        del self.moves[:-100]
        log.warning("serving provider %s → %s (%s)", move.from_provider, move.to_provider, move.reason)
