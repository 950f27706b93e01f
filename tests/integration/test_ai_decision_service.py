"""The AI decision service against the real provider simulator: fallback order, breakers, Retry-After, malformed
answers, and degraded answers when every model is down, within a bounded time."""
from __future__ import annotations

import time

import httpx
import pytest

from provider_fixtures import Simulator, start_service, start_simulator
from service_fixtures import Proc, Services, metric
from chaos_dr_stack.local.ports import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OPENAI_TIMEOUT, FALLBACK_TIMEOUT, BUDGET, COOLDOWN = 2.0, 1.0, 4.5, 1.5
"""Shorter than the service's defaults so the module runs in seconds; generous enough for a busy CI box."""


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with Services(tmp_path_factory.mktemp("ai-decision")) as services:
        sim = start_simulator(services, services.base + 21)
        ai = start_service(
            services, "chaos_dr_stack.ai_decision", services.base + 22, sim,
            "--timeouts", f"openai={OPENAI_TIMEOUT},groq={FALLBACK_TIMEOUT},together={FALLBACK_TIMEOUT}",
            "--decision-budget-s", str(BUDGET), "--cooldown-s", str(COOLDOWN),
        )
        client = httpx.Client(base_url=ai.url, timeout=BUDGET + 5)
        # Warm up: the first call loads the LLM client; on a loaded machine that alone can take seconds.
        client.post("/decision", json={"symbol": "SPY"}, timeout=60)
        yield sim, ai, client


@pytest.fixture(autouse=True)
def recovered(stack):
    """Each test starts with every fault healed and the primary serving again."""
    sim, _, client = stack
    sim.heal()
    assert wait_until(lambda: client.post("/decision", json={"symbol": "SPY"}).json()["provider"] == "openai",
                      timeout=COOLDOWN + 10, interval=0.2), "the primary did not come back after the heal"
    yield


def decide(client: httpx.Client, symbol: str = "AAPL") -> dict:
    response = client.post("/decision", json={"symbol": symbol})
    assert response.status_code == 200, response.text
    return response.json()


def outcomes(result: dict) -> list[tuple[str, str]]:
    return [(a["provider"], a["outcome"]) for a in result["attempts"]]


def test_a_healthy_chain_answers_from_the_primary(stack):
    _, _, client = stack
    result = decide(client, "nvda")
    assert (result["symbol"], result["provider"], result["model"], result["degraded"]) == ("NVDA", "openai", "gpt-4o", False)
    assert result["decision"] in ("buy", "sell", "hold") and 0 <= result["confidence"] <= 1
    assert "NVDA" in result["reason"] and result["usage"]["prompt_tokens"] > 0


@pytest.mark.parametrize(("body", "detail"), [
    ({}, "symbol: is required"),
    ({"symbol": "  "}, "symbol: must be"),
    ({"symbol": 42}, "symbol: must be"),
    ([1, 2], "body: must be a JSON object"),
])
def test_bad_input_is_a_422_naming_the_field(stack, body, detail):
    _, _, client = stack
    response = client.post("/decision", json=body)
    assert response.status_code == 422 and response.json()["detail"].startswith(detail)


def test_a_failing_primary_falls_back_to_groq_and_is_counted(stack):
    sim, ai, client = stack
    before = metric(ai, "ai_decision_fallbacks_total", {"provider": "groq"})
    sim.fail("openai", mode="error", status=503, ttl_seconds=60)
    result = decide(client)
    assert outcomes(result) == [("openai", "error_503"), ("groq", "ok")]
    assert (result["provider"], result["model"], result["degraded"]) == ("groq", "mixtral-8x7b-32768", False)
    assert metric(ai, "ai_decision_fallbacks_total", {"provider": "groq"}) == before + 1
    assert metric(ai, "ai_decision_primary_provider", {"provider": "groq"}) == 1
    assert metric(ai, "ai_decision_primary_provider", {"provider": "openai"}) == 0


def test_a_blackholed_primary_costs_one_timeout_then_traffic_skips_it_until_the_cooldown(stack):
    sim, ai, client = stack
    sim.fail("openai", mode="timeout", ttl_seconds=60)
    first = decide(client)
    assert outcomes(first) == [("openai", "timeout"), ("groq", "ok")]
    assert OPENAI_TIMEOUT * 1000 <= first["latency_ms"] < (OPENAI_TIMEOUT + FALLBACK_TIMEOUT) * 1000
    later = [decide(client) for _ in range(5)]
    assert all(outcomes(r) == [("openai", "circuit_open"), ("groq", "ok")] for r in later)
    assert max(r["latency_ms"] for r in later) < 1000  # no timeout paid again
    assert metric(ai, "ai_decision_circuit_state", {"provider": "openai"}) in (1, 2)
    assert sim.faults()[0]["requests"] == 1  # the primary was asked once, not six times
    sim.heal("openai")
    time.sleep(COOLDOWN)
    back = decide(client)
    assert outcomes(back) == [("openai", "ok")]


def test_429_is_honoured_the_provider_is_skipped_until_retry_after(stack):
    sim, _, client = stack
    sim.fail("openai", mode="error", status=429, retry_after_s=2, ttl_seconds=60)
    first = decide(client)
    limited_at = time.monotonic()
    assert outcomes(first) == [("openai", "rate_limited"), ("groq", "ok")]
    skipped = []
    while time.monotonic() - limited_at < 1.7:
        skipped.append(outcomes(decide(client))[0])
        time.sleep(0.1)
    assert skipped and set(skipped) == {("openai", "skipped_rate_limited")}
    assert sim.faults()[0]["requests"] == 1  # no call to the rate-limited provider before Retry-After
    time.sleep(max(0.0, 2.05 - (time.monotonic() - limited_at)))
    assert outcomes(decide(client))[0] == ("openai", "rate_limited")  # asked again once the wait was over
    assert sim.faults()[0]["requests"] == 2


def test_a_malformed_answer_counts_as_a_failure(stack):
    sim, ai, client = stack
    sim.fail("openai", mode="malformed", ttl_seconds=60)
    result = decide(client)
    assert outcomes(result) == [("openai", "malformed"), ("groq", "ok")]
    assert metric(ai, "ai_decision_provider_requests_total", {"provider": "openai", "outcome": "malformed"}) >= 1


def test_a_reset_connection_falls_back(stack):
    sim, _, client = stack
    sim.fail("openai", mode="reset", ttl_seconds=60)
    assert outcomes(decide(client)) == [("openai", "reset"), ("groq", "ok")]


def test_all_models_down_the_last_decision_is_served_from_cache_else_a_conservative_hold(stack):
    sim, ai, client = stack
    known = decide(client, "MSFT")
    for provider in ("openai", "groq", "together"):
        sim.fail(provider, mode="error", status=503, ttl_seconds=60)
    cached = decide(client, "MSFT")
    assert (cached["provider"], cached["degraded"], cached["decision"]) == ("cache", True, known["decision"])
    assert cached["reason"].startswith("all LLM providers unavailable") and "cached decision from" in cached["reason"]
    fresh = decide(client, "AMZN")
    assert (fresh["provider"], fresh["decision"], fresh["confidence"], fresh["degraded"]) == ("fallback", "hold", 0.0, True)
    for text in ("openai: error_503", "groq: error_503", "together: error_503", "conservative hold"):
        assert text in fresh["reason"]
    assert metric(ai, "ai_decision_decisions_total", {"provider": "fallback"}) >= 1


def test_all_models_blackholed_every_decision_is_a_hold_within_the_budget(stack):
    sim, _, client = stack
    for provider in ("openai", "groq", "together"):
        sim.fail(provider, mode="timeout", ttl_seconds=60)
    for attempt in range(3):  # the first pays every timeout; later ones probe whatever cooled down, nothing more
        t0 = time.monotonic()
        result = decide(client, "TSLA")
        elapsed = time.monotonic() - t0
        assert (result["provider"], result["decision"], result["degraded"]) == ("fallback", "hold", True)
        assert elapsed < BUDGET + 1.0, f"decision {attempt}: a degraded answer took {elapsed:.2f} s, budget {BUDGET} s"
        assert set(o for _, o in outcomes(result)) <= {"timeout", "circuit_open", "skipped_budget"}
        if attempt == 0:
            assert [o for _, o in outcomes(result)] == ["timeout", "timeout", "timeout"]
            assert "openai: timeout" in result["reason"] and "together: timeout" in result["reason"]
