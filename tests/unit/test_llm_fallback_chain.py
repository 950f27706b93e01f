"""The AI decision chain (fallback order, breakers, budget, cache, cost controls) with a scripted ``ask`` and a fake
clock: each scripted call moves the clock by what it would have cost, so nothing sleeps."""
from __future__ import annotations

import asyncio
import json

import pytest

from chaos_dr_stack.ai_decision.breaker import BreakerSettings
from chaos_dr_stack.ai_decision.costs import CostLedger, CostSettings
from chaos_dr_stack.ai_decision.engine import Answer, ChainSettings, DecisionEngine, ProviderFailure


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


GOOD = json.dumps({"decision": "buy", "confidence": 0.7, "reason": "AAPL trends up"})


class ScriptedProviders:
    """Per provider, what each call does: "ok", "timeout", "reset", "503", "429:<s>", "malformed". The last entry
    repeats. Every call is recorded as (provider, model, timeout)."""

    def __init__(self, clock: FakeClock, **script: list[str]):
        self.clock = clock
        self.script = {p: list(v) for p, v in script.items()}
        self.calls: list[tuple[str, str, float]] = []

    async def ask(self, provider: str, model: str, messages: list[dict], timeout: float, max_tokens: int) -> Answer:
        self.calls.append((provider, model, timeout))
        steps = self.script.get(provider, ["ok"])
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if step == "timeout":
            self.clock.now += timeout
            raise ProviderFailure("timeout", slow=True)
        self.clock.now += 0.05
        if step == "ok":
            return Answer(GOOD, model, 40, 20)
        if step == "reset":
            raise ProviderFailure("reset", slow=True)
        if step == "503":
            raise ProviderFailure("error_503")
        if step.startswith("429:"):
            raise ProviderFailure("rate_limited", retry_after_s=float(step[4:]))
        if step == "malformed":
            return Answer('{"decision": "maybe"', model, 40, 5)
        raise AssertionError(step)


def engine(providers: ScriptedProviders, clock: FakeClock, budget: float = 9.0, cooldown: float = 10.0,
           costs: CostSettings = CostSettings(), cache_ttl: float = 300.0) -> DecisionEngine:
    return DecisionEngine(
        providers.ask,
        ChainSettings(timeouts={"openai": 4.0, "groq": 2.5, "together": 2.5}, decision_budget_s=budget,
                      cache_ttl_s=cache_ttl),
        BreakerSettings(failure_threshold=3, cooldown_s=cooldown),
        CostLedger(costs, clock=lambda: 1_800_000_000.0),
        clock=clock, wall=lambda: 1_800_000_000.0,
    )


def decide(e: DecisionEngine, symbol: str = "AAPL") -> dict:
    return asyncio.run(e.decide(symbol))


def outcomes(result: dict) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in result["attempts"]]


def test_a_healthy_primary_answers_alone():
    clock = FakeClock()
    p = ScriptedProviders(clock)
    result = decide(engine(p, clock))
    assert (result["provider"], result["model"], result["decision"], result["degraded"]) == ("openai", "gpt-4o", "buy", False)
    assert [c[0] for c in p.calls] == ["openai"]


def test_the_fallback_order_is_openai_then_groq_then_together():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["503"], groq=["503"])
    result = decide(engine(p, clock))
    assert outcomes(result) == [("openai", "error_503"), ("groq", "error_503"), ("together", "ok")]
    assert (result["provider"], result["model"]) == ("together", "meta-llama/Llama-3-70b-chat-hf")
    assert result["degraded"] is False and "fallback to together" in result["reason"]


def test_a_dead_primary_costs_one_timeout_then_is_skipped_until_the_cooldown_then_probed_once():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["timeout", "ok"])
    e = engine(p, clock, cooldown=10)
    first = decide(e)
    assert outcomes(first) == [("openai", "timeout"), ("groq", "ok")]
    assert first["latency_ms"] == pytest.approx(4050, abs=1)
    for _ in range(5):  # while open: no time lost on the primary at all
        later = decide(e)
        assert outcomes(later) == [("openai", "circuit_open"), ("groq", "ok")]
        assert later["latency_ms"] == pytest.approx(50, abs=1)
    assert [c[0] for c in p.calls].count("openai") == 1
    clock.now += 10
    back = decide(e)
    assert outcomes(back) == [("openai", "ok")] and back["provider"] == "openai"


def test_three_error_answers_in_a_row_open_the_primary():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["503"])
    e = engine(p, clock)
    for _ in range(3):
        assert outcomes(decide(e))[0] == ("openai", "error_503")
    assert outcomes(decide(e))[0] == ("openai", "circuit_open")


def test_a_malformed_answer_is_a_failure_and_the_next_provider_answers():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["malformed"])
    result = decide(engine(p, clock))
    assert outcomes(result) == [("openai", "malformed"), ("groq", "ok")]
    assert result["decision"] == "buy"


def test_429_skips_the_provider_until_retry_after_then_uses_it_again():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["429:3", "ok"])
    e = engine(p, clock)
    assert outcomes(decide(e)) == [("openai", "rate_limited"), ("groq", "ok")]
    clock.now += 2.5
    assert outcomes(decide(e)) == [("openai", "skipped_rate_limited"), ("groq", "ok")]
    clock.now += 0.5
    assert outcomes(decide(e)) == [("openai", "ok")]
    assert [c[0] for c in p.calls].count("openai") == 2


def test_every_attempt_fits_in_what_is_left_of_the_budget():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["timeout"], groq=["timeout"], together=["timeout"])
    result = decide(engine(p, clock, budget=6.0))
    assert [c[2] for c in p.calls] == [4.0, 2.0]  # groq gets the 2 s left, not its 2.5 s
    assert outcomes(result) == [("openai", "timeout"), ("groq", "timeout"), ("together", "skipped_budget")]
    assert result["latency_ms"] == pytest.approx(6000, abs=1)


def test_all_providers_down_without_cache_gives_a_conservative_hold_naming_each_failure():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["timeout"], groq=["503"], together=["reset"])
    result = decide(engine(p, clock))
    assert (result["decision"], result["confidence"], result["provider"], result["degraded"]) == ("hold", 0.0, "fallback", True)
    assert result["model"] is None
    for text in ("all LLM providers unavailable", "openai: timeout", "groq: error_503", "together: reset",
                 "conservative hold"):
        assert text in result["reason"]
    assert result["latency_ms"] <= 9000


def test_all_providers_down_with_a_fresh_cache_serves_the_last_decision_and_says_how_old():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["ok", "503"], groq=["503"], together=["503"])
    e = engine(p, clock, cache_ttl=300)
    assert decide(e)["provider"] == "openai"
    clock.now += 120
    result = decide(e)
    assert (result["provider"], result["decision"], result["degraded"], result["model"]) == ("cache", "buy", True, "gpt-4o")
    assert "cached decision from 120 s ago" in result["reason"]
    clock.now += 200  # now older than the TTL: not good enough any more
    assert decide(e)["provider"] == "fallback"


def test_a_cache_for_another_symbol_is_never_used():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["ok", "503"], groq=["503"], together=["503"])
    e = engine(p, clock)
    decide(e, "AAPL")
    assert decide(e, "MSFT")["provider"] == "fallback"


def test_past_the_daily_budget_every_provider_uses_its_cheaper_model():
    clock = FakeClock()
    p = ScriptedProviders(clock, openai=["ok", "503"])
    # 40 prompt + 20 completion tokens of gpt-4o cost $0.0003: a $0.0002 budget is spent by the first decision.
    e = engine(p, clock, costs=CostSettings(daily_budget_usd=0.0002, max_request_cost_usd=0.10))
    first = decide(e)
    assert (first["model"], first["cost_mode"]) == ("gpt-4o", "normal")
    assert e.ledger.spent_today == pytest.approx(0.0003)
    second = decide(e)
    assert second["cost_mode"] == "economy"
    assert [c[1] for c in p.calls[1:]] == ["gpt-4o-mini", "llama-3.1-8b-instant"]


def test_above_the_per_request_limit_the_cached_reasoning_is_used_else_the_cheaper_model():
    clock = FakeClock()
    p = ScriptedProviders(clock)
    # gpt-4o with 150 completion tokens is ~$0.0016 a request: a $0.001 limit is exceeded by every request.
    e = engine(p, clock, costs=CostSettings(daily_budget_usd=50, max_request_cost_usd=0.001))
    first = decide(e)
    assert (first["model"], first["cost_mode"]) == ("gpt-4o-mini", "economy")
    assert "per-request cost limit" in first["reason"]
    second = decide(e)
    assert (second["provider"], second["degraded"]) == ("cache", False)
    assert "cached reasoning" in second["reason"] and len(p.calls) == 1


def test_a_provider_that_ignores_its_timeout_is_cut_off_by_the_engine():
    clock = FakeClock()

    async def hangs(provider, model, messages, timeout, max_tokens):
        if provider == "openai":
            await asyncio.Event().wait()  # never answers, never raises
        return Answer(GOOD, model, 1, 1)

    e = DecisionEngine(hangs, ChainSettings(timeouts={"openai": 0.05, "groq": 1, "together": 1}),
                       BreakerSettings(), CostLedger(CostSettings()), clock=clock)
    result = asyncio.run(e.decide("AAPL"))
    assert outcomes(result) == [("openai", "timeout"), ("groq", "ok")]
    assert e.breakers["openai"].state == "open"
