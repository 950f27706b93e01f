"""Deterministic prices: one random walk per symbol, a pure function of (symbol, time).

Every data provider quotes the same walk (plus a tiny per-provider offset, as real feeds differ by a few cents), so
a failover from Alpaca to Finnhub changes the source, not the price. Stateless value noise over several time
scales stands in for a stepped walk: a restarted simulator quotes exactly what it quoted before, and any instant can
be priced without replaying the steps before it.
"""
from __future__ import annotations

import hashlib
import math
import struct

BASE_PRICES = {
    "AAPL": 190.0, "MSFT": 420.0, "NVDA": 120.0, "TSLA": 250.0, "AMZN": 180.0, "GOOGL": 170.0, "META": 500.0,
    "SPY": 560.0, "QQQ": 480.0,
}
BASE_CRYPTO_USD = {"bitcoin": 65_000.0, "ethereum": 3_400.0, "solana": 150.0, "dogecoin": 0.15}

SCALES = ((5.0, 0.0006), (60.0, 0.002), (900.0, 0.006), (21_600.0, 0.02))
"""(period in seconds, relative amplitude): seconds-scale jitter up to a slow daily drift."""
HALF_SPREAD = 0.0001
"""Half the bid/ask spread, relative: 2 cents on a 100 dollar stock."""


def unit(*parts: object) -> float:
    """A stable pseudo-random number in [-1, 1] for ``parts`` (hash(), unlike this, changes between processes)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return struct.unpack("<Q", digest)[0] / 2**63 - 1.0


def _noise(key: str, scale: int, x: float) -> float:
    """Value noise: random values at integer knots, smoothly interpolated between them."""
    knot = math.floor(x)
    frac = x - knot
    smooth = frac * frac * (3 - 2 * frac)
    return unit(key, scale, knot) * (1 - smooth) + unit(key, scale, knot + 1) * smooth


def base_price(symbol: str) -> float:
    if symbol in BASE_PRICES:
        return BASE_PRICES[symbol]
    if symbol in BASE_CRYPTO_USD:
        return BASE_CRYPTO_USD[symbol]
    return round(20 + 240 * (unit("base", symbol) + 1), 2)  # 20 .. 500


def price(symbol: str, t: float) -> float:
    """The symbol's mid price at Unix time ``t``."""
    log_move = sum(amplitude * _noise(symbol, i, t / period) for i, (period, amplitude) in enumerate(SCALES))
    return base_price(symbol) * math.exp(log_move)


def quote(symbol: str, t: float, provider: str) -> tuple[float, float, float]:
    """(bid, mid, ask) as ``provider`` would quote it: the shared walk plus a provider offset of at most 0.005 %."""
    mid = price(symbol, t) * (1 + 0.00005 * unit("offset", provider, symbol))
    return round(mid * (1 - HALF_SPREAD), 4), round(mid, 4), round(mid * (1 + HALF_SPREAD), 4)


def momentum(symbol: str, t: float, lookback: float = 300.0) -> float:
    """Relative change of the price over ``lookback`` seconds up to ``t``."""
    return price(symbol, t) / price(symbol, t - lookback) - 1.0
