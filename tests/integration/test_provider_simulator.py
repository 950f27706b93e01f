"""Every fault mode of the provider simulator, over real sockets: what a client of the real provider would see."""
from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from provider_fixtures import Simulator, start_simulator
from service_fixtures import Services, metric

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Symbol: AAPL. Decide."}]}


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    with Services(tmp_path_factory.mktemp("provider-simulator")) as services:
        yield start_simulator(services, services.base + 21)


@pytest.fixture(autouse=True)
def healed(sim: Simulator):
    yield
    sim.heal()


MODEL_OF = {"/openai/v1": "gpt-4o", "/groq/openai/v1": "mixtral-8x7b-32768", "/together/v1": "meta-llama/Llama-3-70b-chat-hf"}


def chat(sim: Simulator, provider_path: str = "/openai/v1", timeout: float = 5) -> httpx.Response:
    body = {**CHAT, "model": MODEL_OF[provider_path]}
    return sim.http.post(f"{provider_path}/chat/completions", json=body, timeout=timeout)


def test_a_healthy_llm_answers_a_decision_in_openai_shape_with_usage(sim):
    for path, model in (("/openai/v1", "gpt-4o"), ("/groq/openai/v1", "mixtral-8x7b-32768"),
                        ("/together/v1", "meta-llama/Llama-3-70b-chat-hf")):
        response = sim.http.post(f"{path}/chat/completions", json={**CHAT, "model": model}, timeout=5)
        body = response.json()
        assert response.status_code == 200 and body["object"] == "chat.completion" and body["model"] == model
        decision = json.loads(body["choices"][0]["message"]["content"])
        assert decision["decision"] in ("buy", "sell", "hold") and 0 <= decision["confidence"] <= 1
        assert "AAPL" in decision["reason"]
        usage = body["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def test_an_unknown_model_is_a_404_in_openai_shape(sim):
    response = sim.http.post("/openai/v1/chat/completions", json={**CHAT, "model": "gpt-2"}, timeout=5)
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"


def test_the_quote_providers_agree_within_a_few_basis_points(sim):
    alpaca = sim.http.get(f"/alpaca/v2/stocks/AAPL/quotes/latest").json()["quote"]
    finnhub = sim.http.get(f"/finnhub/api/v1/quote", params={"symbol": "AAPL"}).json()
    polygon = sim.http.get(f"/polygon/v2/last/nbbo/AAPL").json()["results"]
    mids = [(alpaca["bp"] + alpaca["ap"]) / 2, finnhub["c"], (polygon["p"] + polygon["P"]) / 2]
    assert alpaca["bp"] < alpaca["ap"] and polygon["p"] < polygon["P"]
    assert max(mids) / min(mids) - 1 < 0.0005, mids


def test_error_mode_answers_the_status_in_the_providers_shape(sim):
    sim.fail("openai", mode="error", status=503, ttl_seconds=30)
    response = chat(sim)
    assert response.status_code == 503 and response.json()["error"]["type"] == "server_error"
    sim.fail("alpaca", mode="error", status=500, ttl_seconds=30)
    response = sim.http.get(f"/alpaca/v2/stocks/AAPL/quotes/latest")
    assert response.status_code == 500 and "message" in response.json()


def test_429_carries_retry_after(sim):
    sim.fail("groq", mode="error", status=429, retry_after_s=7, ttl_seconds=30)
    response = chat(sim, "/groq/openai/v1")
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"]["code"] == "rate_limit_exceeded"


def test_latency_mode_delays_a_correct_answer(sim):
    sim.fail("finnhub", mode="latency", latency_ms=400, ttl_seconds=30)
    t0 = time.monotonic()
    response = sim.http.get(f"/finnhub/api/v1/quote", params={"symbol": "MSFT"}, timeout=5)
    elapsed = time.monotonic() - t0
    assert response.status_code == 200 and response.json()["c"] > 0
    assert 0.4 <= elapsed < 2.0, elapsed


def test_timeout_mode_holds_the_request_without_blocking_any_other(sim):
    sim.fail("openai", mode="timeout", ttl_seconds=30)
    outcome: dict = {}

    def held() -> None:
        t0 = time.monotonic()
        try:
            chat(sim, timeout=1.5)
            outcome["error"] = None
        except httpx.TimeoutException as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=held)
    thread.start()
    time.sleep(0.2)
    t0 = time.monotonic()
    other = chat(sim, "/groq/openai/v1")
    assert other.status_code == 200 and time.monotonic() - t0 < 1.0  # served while openai's request hangs
    thread.join(5)
    assert isinstance(outcome["error"], httpx.ReadTimeout) and outcome["elapsed"] >= 1.5


def test_a_held_request_is_dropped_when_the_fault_is_healed(sim):
    sim.fail("polygon", mode="timeout", ttl_seconds=30)
    outcome: dict = {}

    def held() -> None:
        t0 = time.monotonic()
        try:
            sim.http.get(f"/polygon/v2/last/nbbo/AAPL", timeout=20)
            outcome["error"] = None
        except httpx.HTTPError as exc:
            outcome["error"] = exc
        outcome["elapsed"] = time.monotonic() - t0

    thread = threading.Thread(target=held)
    thread.start()
    time.sleep(0.5)
    sim.heal("polygon")
    thread.join(5)
    assert outcome["error"] is not None and not isinstance(outcome["error"], httpx.TimeoutException)
    assert outcome["elapsed"] < 2.0, outcome  # released within a poll (0.25 s) of the heal, not at 20 s


def test_reset_mode_closes_the_connection_with_a_tcp_rst(sim):
    sim.fail("alpaca", mode="reset", ttl_seconds=30)
    port = int(sim.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /alpaca/v2/stocks/AAPL/quotes/latest HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            data = sock.recv(1024)
        except ConnectionResetError:
            data = None
    assert data is None, f"expected a TCP reset, got {data[:80]!r} (b'' would be a plain FIN)"
    with pytest.raises(httpx.TransportError):
        sim.http.get(f"/alpaca/v2/stocks/AAPL/quotes/latest", timeout=5)


def test_malformed_mode_answers_200_with_a_body_that_does_not_parse(sim):
    sim.fail("openai", mode="malformed", ttl_seconds=30)
    response = chat(sim)
    assert response.status_code == 200 and response.text.startswith('{"id":"chatcmpl-'), response.text[:40]
    with pytest.raises(json.JSONDecodeError):
        json.loads(response.text)


def test_an_error_rate_of_half_fails_exactly_every_second_request(sim):
    sim.fail("coingecko", mode="error", status=503, error_rate=0.5, ttl_seconds=30)
    statuses = [sim.http.get(f"/coingecko/api/v3/simple/price",
                          params={"ids": "bitcoin", "vs_currencies": "usd"}).status_code for _ in range(10)]
    assert statuses == [200, 503] * 5
    listed = {f["provider"]: f for f in sim.faults()}["coingecko"]
    assert (listed["requests"], listed["injected"]) == (10, 5)


def test_a_fault_heals_itself_at_its_ttl(sim):
    applied = sim.fail("newsapi", mode="error", status=500, ttl_seconds=1)
    assert sim.http.get(f"/newsapi/v2/top-headlines").status_code == 500
    time.sleep(max(0.0, applied["expires_at"] - time.time()) + 0.05)
    assert sim.http.get(f"/newsapi/v2/top-headlines").status_code == 200
    assert sim.faults() == []


def test_every_outcome_is_counted_per_provider(sim):
    before = metric(sim.proc, "provider_sim_requests_total", {"provider": "gdelt", "outcome": "error"})
    sim.fail("gdelt", mode="error", status=503, error_rate=0.25, ttl_seconds=30)
    for _ in range(8):
        sim.http.get(f"/gdelt/api/v2/doc/doc", params={"query": "AAPL", "mode": "artlist", "format": "json"})
    assert metric(sim.proc, "provider_sim_requests_total", {"provider": "gdelt", "outcome": "error"}) == before + 2
    assert metric(sim.proc, "provider_sim_requests_total", {"provider": "gdelt", "outcome": "ok"}) >= 6
