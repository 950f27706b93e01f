"""Cost controls from the seed's table: a daily spend budget and a per-request cost limit.

Spend is counted from the providers' ``usage`` at list prices, per UTC day. Past the daily budget every provider is
asked for its cheaper model ("switch to cheaper model"); a request whose estimated cost is above the per-request limit
is answered from the cache if it holds a fresh decision ("use cached reasoning"), else with the cheaper model.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

PRICES_PER_MILLION = {
    # model: (USD per 1M prompt tokens, USD per 1M completion tokens); list prices.
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "mixtral-8x7b-32768": (0.24, 0.24),
    "llama-3.1-8b-instant": (0.05, 0.08),
    "meta-llama/Llama-3-70b-chat-hf": (0.88, 0.88),
    "meta-llama/Llama-3-8b-chat-hf": (0.20, 0.20),
}


def cost_usd(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    prompt_price, completion_price = PRICES_PER_MILLION[model]
    return (prompt_tokens * prompt_price + completion_tokens * completion_price) / 1_000_000


def estimate_tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True)
class CostSettings:
    daily_budget_usd: float = 50.0
    """Seed: "Daily Token Budget $50 → switch to cheaper model"."""
    max_request_cost_usd: float = 0.10
    """Seed: "Per-Request Cost $0.10 → use cached reasoning"."""


class CostLedger:
    """Spend per UTC day. ``clock`` is Unix seconds (the day boundary is a calendar fact)."""

    def __init__(self, settings: CostSettings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self._clock = clock
        self._day = self._today()
        self._spent = 0.0

    def _today(self) -> int:
        return int(self._clock() // 86400)

    @property
    def spent_today(self) -> float:
        if self._today() != self._day:
            self._day, self._spent = self._today(), 0.0
        return self._spent

    @property
    def economy(self) -> bool:
        """Past the daily budget: every provider uses its cheaper model."""
        return self.spent_today >= self.settings.daily_budget_usd

    def record(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        cost = cost_usd(model, prompt_tokens, completion_tokens)
        _ = self.spent_today  # roll the day over first
        self._spent += cost
        return cost

    def over_request_limit(self, model: str, prompt: str, max_completion_tokens: int) -> tuple[bool, float]:
        """(is the estimated cost of this request above the per-request limit, the estimate in USD)."""
        estimate = cost_usd(model, estimate_tokens(prompt), max_completion_tokens)
        return estimate > self.settings.max_request_cost_usd, estimate
