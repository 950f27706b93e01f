"""The decision chain: which provider to ask, for how long, and what to answer when none can.

Pure logic around an injected ``ask`` coroutine and clocks, so the fallback order, the breakers and the budget are
tested without a network and without sleeping. ``ask(provider, model, timeout_s)`` returns an ``Answer`` or raises
``ProviderFailure``; the engine bounds each call with ``asyncio.timeout`` as well, so a client that ignores its own
timeout still cannot hold a decision past the budget.
"""
from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from chaos_dr_stack.ai_decision.breaker import BreakerSettings, CircuitBreaker
from chaos_dr_stack.ai_decision.costs import CostLedger
from chaos_dr_stack.providers.catalogue import LLM_PROVIDERS, MODELS

DECISIONS = ("buy", "sell", "hold")
PRIMARY = LLM_PROVIDERS[0]
MIN_ATTEMPT_S = 0.05
"""Less budget than this left: not worth starting another call."""


@dataclass(frozen=True)
class ChainSettings:
    timeouts: dict[str, float] = field(default_factory=lambda: {"openai": 4.0, "groq": 2.5, "together": 2.5})
    """Per provider, seconds. The seed wants decisions at p95 < 5 s and p99 < 10 s: a healthy GPT-4o answers well
    inside 4 s; Groq and Together (fast inference) inside 2.5 s. Together they fit the budget below."""
    decision_budget_s: float = 9.0
    """Bound on one decision, every attempt included: under the seed's p99 of 10 s, with room to answer."""
    cache_ttl_s: float = 300.0
    """How old a cached decision may be and still stand in for the models: one trading-cycle's worth (5 min)."""
    max_completion_tokens: int = 150
    """A decision is a short JSON object; the cap also bounds the per-request cost estimate."""


@dataclass(frozen=True)
class Answer:
    content: str
    model: str
    prompt_tokens: int
    completion_tokens: int


class ProviderFailure(Exception):
    """``outcome``: timeout, reset, error_<status>, rate_limited, malformed. ``slow``: it cost the caller its time
    (timeout, connection failure). ``retry_after_s``: from a 429's Retry-After."""

    def __init__(self, outcome: str, slow: bool = False, retry_after_s: float | None = None, detail: str = ""):
        super().__init__(f"{outcome}{': ' + detail if detail else ''}")
        self.outcome = outcome
        self.slow = slow
        self.retry_after_s = retry_after_s


Ask = Callable[[str, str, list[dict], float, int], Awaitable[Answer]]


def prompt(symbol: str) -> list[dict]:
    return [
        {"role": "system", "content": "You are a trading assistant. Answer only with a JSON object "
                                      '{"decision": "buy"|"sell"|"hold", "confidence": 0..1, "reason": "..."}.'},
        {"role": "user", "content": f"Symbol: {symbol}. Decide: buy, sell or hold."},
    ]


def parse_decision(content: str) -> dict:
    """The model's JSON decision, validated; raises ProviderFailure("malformed") otherwise."""
    try:
        data = json.loads(content)
    except (TypeError, ValueError):
        raise ProviderFailure("malformed", detail=f"content is not JSON: {str(content)[:60]!r}") from None
    if not isinstance(data, dict) or data.get("decision") not in DECISIONS:
        raise ProviderFailure("malformed", detail=f"no valid decision in {str(content)[:60]!r}")
    confidence = data.get("confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise ProviderFailure("malformed", detail=f"confidence {confidence!r} is not within [0, 1]")
    return {"decision": data["decision"], "confidence": float(confidence), "reason": str(data.get("reason", ""))[:300]}


class DecisionEngine:
    def __init__(
        self,
        ask: Ask,
        settings: ChainSettings,
        breaker_settings: BreakerSettings,
        ledger: CostLedger,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ):
        self.ask = ask
        self.settings = settings
        self.ledger = ledger
        self.clock = clock
        self.wall = wall
        self.breakers = {p: CircuitBreaker(breaker_settings, clock) for p in LLM_PROVIDERS}
        self._cache: dict[str, tuple[dict, float]] = {}

    def model_for(self, provider: str, economy: bool) -> str:
        normal, cheaper = MODELS[provider]
        return cheaper if economy else normal

    def cached(self, symbol: str) -> tuple[dict, float] | None:
        """(the last decision for ``symbol``, its age in seconds) if younger than the cache TTL."""
        entry = self._cache.get(symbol)
        if entry is None:
            return None
        age = self.clock() - entry[1]
        return (entry[0], age) if age < self.settings.cache_ttl_s else None

    async def decide(self, symbol: str) -> dict:
        started = self.clock()
        messages = prompt(symbol)
        economy = self.ledger.economy
        cost_reason = "daily budget reached: cheaper models" if economy else ""
        if not economy:
            over, estimate = self.ledger.over_request_limit(
                self.model_for(PRIMARY, False), "".join(m["content"] for m in messages),
                self.settings.max_completion_tokens,
            )
            if over:
                limit = self.ledger.settings.max_request_cost_usd
                hit = self.cached(symbol)
                if hit is not None:
                    decision, age = hit
                    return self._result(symbol, decision, "cache", decision["model"], False, started, [], False,
                                        f"per-request cost limit: estimated ${estimate:.4f} > ${limit:.2f}; "
                                        f"cached reasoning from {age:.0f} s ago")
                economy = True
                cost_reason = f"per-request cost limit: estimated ${estimate:.4f} > ${limit:.2f}: cheaper model"

        attempts: list[dict] = []
        failures: list[str] = []
        for provider in LLM_PROVIDERS:
            remaining = self.settings.decision_budget_s - (self.clock() - started)
            if remaining < MIN_ATTEMPT_S:
                attempts.append({"provider": provider, "outcome": "skipped_budget", "latency_ms": 0.0})
                failures.append(f"{provider}: decision budget spent")
                continue
            breaker = self.breakers[provider]
            refused = breaker.try_acquire()
            if refused is not None:
                outcome = "circuit_open" if refused == "circuit_open" else "skipped_rate_limited"
                attempts.append({"provider": provider, "outcome": outcome, "latency_ms": 0.0})
                failures.append(f"{provider}: {'circuit open' if refused == 'circuit_open' else 'rate limited'}")
                continue
            model = self.model_for(provider, economy)
            timeout = min(self.settings.timeouts[provider], remaining)
            t0 = self.clock()
            try:
                try:
                    async with asyncio.timeout(timeout):
                        answer = await self.ask(provider, model, messages, timeout,
                                                self.settings.max_completion_tokens)
                except TimeoutError:
                    raise ProviderFailure("timeout", slow=True, detail=f"no answer within {timeout:.2f} s") from None
                decision = parse_decision(answer.content)
            except ProviderFailure as failure:
                latency = (self.clock() - t0) * 1000
                attempts.append({"provider": provider, "outcome": failure.outcome, "latency_ms": round(latency, 1)})
                failures.append(f"{provider}: {failure}")
                if failure.outcome == "rate_limited":
                    breaker.record_rate_limited(failure.retry_after_s)
                else:
                    breaker.record_failure(failure.slow)
                continue
            except BaseException:
                breaker.release()
                raise
            breaker.record_success()
            attempts.append({"provider": provider, "outcome": "ok",
                             "latency_ms": round((self.clock() - t0) * 1000, 1)})
            self.ledger.record(answer.model, answer.prompt_tokens, answer.completion_tokens)
            decision = {**decision, "model": answer.model, "prompt_tokens": answer.prompt_tokens,
                        "completion_tokens": answer.completion_tokens}
            self._cache[symbol] = (decision, self.clock())
            return self._result(symbol, decision, provider, answer.model, False, started, attempts, economy,
                                cost_reason)

        why = "; ".join(failures)
        hit = self.cached(symbol)
        if hit is not None:
            decision, age = hit
            return self._result(symbol, decision, "cache", decision["model"], True, started, attempts, economy,
                                f"all LLM providers unavailable ({why}); cached decision from {age:.0f} s ago")
        hold = {"decision": "hold", "confidence": 0.0, "reason": ""}
        return self._result(symbol, hold, "fallback", None, True, started, attempts, economy,
                            f"all LLM providers unavailable ({why}); conservative hold")

    def _result(self, symbol: str, decision: dict, provider: str, model: str | None, degraded: bool, started: float,
                attempts: list[dict], economy: bool, note: str) -> dict:
        reason = decision["reason"] if provider in LLM_PROVIDERS else note
        if provider in LLM_PROVIDERS and note:
            reason = f"{reason} [{note}]"
        if provider in LLM_PROVIDERS and provider != PRIMARY:
            reason = f"{reason} [fallback to {provider}]"
        return {
            "symbol": symbol,
            "decision": decision["decision"],
            "confidence": decision["confidence"],
            "provider": provider,
            "model": model,
            "reason": reason,
            "degraded": degraded,
            "cost_mode": "economy" if economy else "normal",
            "attempts": attempts,
            "latency_ms": round((self.clock() - started) * 1000, 1),
            "served_at": self.wall(),
            "usage": {"prompt_tokens": decision.get("prompt_tokens", 0),
                      "completion_tokens": decision.get("completion_tokens", 0)} if provider in LLM_PROVIDERS else None,
        }
