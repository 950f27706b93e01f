"""The provider simulator's fault API: validation naming the field, the token, the deterministic error rate and the
TTL (fake clock). The fault modes themselves are exercised over real sockets in tests/integration."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from chaos_dr_stack.providers.app import create_app
from chaos_dr_stack.providers.faults import FaultArgumentError, FaultBook, UnknownProvider, parse_fault

TOKEN = "s3cret"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("body", "field", "text"), [
    ({"mode": "error"}, "ttl_seconds", "is required"),
    ({"mode": "explode", "ttl_seconds": 5}, "mode", "must be one of error, latency, timeout, reset, malformed"),
    ({"ttl_seconds": 5}, "mode", "got None"),
    ({"mode": "error", "status": 404, "ttl_seconds": 5}, "status", "500, 503, 429"),
    ({"mode": "error", "status": True, "ttl_seconds": 5}, "status", "got True"),
    ({"mode": "latency", "ttl_seconds": 5}, "latency_ms", "is required with mode 'latency'"),
    ({"mode": "latency", "latency_ms": 0, "ttl_seconds": 5}, "latency_ms", "1..600000"),
    ({"mode": "latency", "latency_ms": 2.5, "ttl_seconds": 5}, "latency_ms", "whole number"),
    ({"mode": "timeout", "latency_ms": 100, "ttl_seconds": 5}, "latency_ms", "only applies to mode 'latency'"),
    ({"mode": "timeout", "status": 503, "ttl_seconds": 5}, "status", "only applies to mode 'error'"),
    ({"mode": "error", "status": 503, "retry_after_s": 3, "ttl_seconds": 5}, "retry_after_s", "status 429"),
    ({"mode": "error", "status": 429, "retry_after_s": -1, "ttl_seconds": 5}, "retry_after_s", "0..3600"),
    ({"mode": "error", "error_rate": 0, "ttl_seconds": 5}, "error_rate", "(0, 1]"),
    ({"mode": "error", "error_rate": 1.5, "ttl_seconds": 5}, "error_rate", "(0, 1]"),
    ({"mode": "error", "error_rate": "half", "ttl_seconds": 5}, "error_rate", "must be a number"),
    ({"mode": "error", "ttl_seconds": 0}, "ttl_seconds", "> 0 and <= 3600"),
    ({"mode": "error", "ttl_seconds": 3601}, "ttl_seconds", "> 0 and <= 3600"),
    ({"mode": "error", "ttl_seconds": 5, "ratio": 1}, "ratio", "unknown field"),
    (["error"], "body", "must be a JSON object"),
])
def test_a_bad_fault_is_refused_naming_the_field(body, field, text):
    with pytest.raises(FaultArgumentError) as caught:
        parse_fault("openai", body, 0.0)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ") and text in str(caught.value)


def test_defaults_status_503_error_rate_1_and_retry_after_1_for_429():
    assert parse_fault("alpaca", {"mode": "error", "ttl_seconds": 5}, 0).status == 503
    fault = parse_fault("alpaca", {"mode": "error", "status": 429, "ttl_seconds": 5}, 0)
    assert (fault.retry_after_s, float(fault.error_rate)) == (1, 1.0)


def test_an_unknown_provider_is_refused_listing_the_known_ones():
    with pytest.raises(UnknownProvider, match="unknown provider 'bing'; providers are: openai, groq, together, alpaca"):
        parse_fault("bing", {"mode": "error", "ttl_seconds": 5}, 0)


@pytest.mark.parametrize(("rate", "n", "expected"), [(0.5, 10, 5), (0.1, 100, 10), (0.33, 100, 33), (1, 7, 7)])
def test_the_error_rate_faults_exactly_floor_n_p_requests_spread_evenly(rate, n, expected):
    book = FaultBook(FakeClock())
    book.set(parse_fault("alpaca", {"mode": "error", "error_rate": rate, "ttl_seconds": 60}, book.clock()))
    faulted = [book.decide("alpaca") is not None for _ in range(n)]
    assert sum(faulted) == expected
    if rate == 0.5:
        assert faulted == [False, True] * 5  # never two in a row
    assert book.decide("finnhub") is None  # other providers are untouched


def test_a_fault_heals_itself_at_its_ttl():
    clock = FakeClock()
    book = FaultBook(clock)
    fault = parse_fault("groq", {"mode": "timeout", "ttl_seconds": 30}, clock())
    book.set(fault)
    clock.now += 29.99
    assert book.decide("groq") is fault and book.is_current(fault)
    clock.now += 0.01
    assert book.decide("groq") is None and not book.is_current(fault) and book.listing() == []


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(TOKEN, FaultBook(FakeClock())))


def auth() -> dict:
    return {"X-Gameday-Token": TOKEN}


def test_the_fault_api_needs_the_token_and_changes_nothing_without_it(client):
    for headers in ({}, {"X-Gameday-Token": "wrong"}):
        response = client.put("/_faults/openai", json={"mode": "error", "ttl_seconds": 5}, headers=headers)
        assert response.status_code == 403 and "X-Gameday-Token" in response.json()["detail"]
        assert client.get("/_faults", headers=headers).status_code == 403
        assert client.delete("/_faults", headers=headers).status_code == 403
    assert client.get("/_faults", headers=auth()).json() == {"faults": []}


def test_without_a_configured_token_the_fault_api_is_off():
    response = TestClient(create_app(None)).put("/_faults/openai", json={"mode": "error", "ttl_seconds": 5},
                                                 headers=auth())
    assert response.status_code == 403 and "no token configured" in response.json()["detail"]


def test_put_get_delete_round_trip(client):
    applied = client.put("/_faults/openai", json={"mode": "error", "status": 429, "retry_after_s": 4,
                                                  "error_rate": 0.5, "ttl_seconds": 60}, headers=auth())
    assert applied.status_code == 200
    body = applied.json()
    assert {k: body[k] for k in ("provider", "mode", "status", "retry_after_s", "error_rate", "ttl_seconds")} == {
        "provider": "openai", "mode": "error", "status": 429, "retry_after_s": 4, "error_rate": 0.5, "ttl_seconds": 60.0}
    assert body["expires_at"] == body["applied_at"] + 60 and body["expires_in"] == 60
    client.put("/_faults/alpaca", json={"mode": "latency", "latency_ms": 200, "ttl_seconds": 60}, headers=auth())
    listed = client.get("/_faults", headers=auth()).json()["faults"]
    assert [(f["provider"], f["mode"]) for f in listed] == [("openai", "error"), ("alpaca", "latency")]
    assert client.delete("/_faults/openai", headers=auth()).json()["was_active"] is True
    assert client.delete("/_faults/openai", headers=auth()).json()["was_active"] is False
    healed = client.delete("/_faults", headers=auth()).json()
    assert healed["healed"] == ["alpaca"] and isinstance(healed["healed_at"], float)


def test_bad_requests_name_the_field_or_the_provider(client):
    response = client.put("/_faults/openai", json={"mode": "latency", "ttl_seconds": 5}, headers=auth())
    assert response.status_code == 400 and response.json()["detail"].startswith("latency_ms:")
    response = client.put("/_faults/openai", content=b"{not json", headers=auth())
    assert response.status_code == 400 and response.json()["detail"].startswith("body: not JSON")
    response = client.put("/_faults/yahoo", json={"mode": "error", "ttl_seconds": 5}, headers=auth())
    assert response.status_code == 404 and "unknown provider 'yahoo'" in response.json()["detail"]
    assert client.delete("/_faults/yahoo", headers=auth()).status_code == 404


def test_faults_never_touch_health_metrics_or_other_providers(client):
    client.put("/_faults/finnhub", json={"mode": "error", "status": 500, "ttl_seconds": 60}, headers=auth())
    assert client.get("/health").status_code == 200
    assert client.get("/metrics").status_code == 200
    assert client.get("/polygon/v2/last/nbbo/AAPL").status_code == 200
    failed = client.get("/finnhub/api/v1/quote", params={"symbol": "AAPL"})
    assert failed.status_code == 500 and "error" in failed.json()
    metrics = client.get("/metrics").text
    assert 'provider_sim_requests_total{outcome="error",provider="finnhub"} 1.0' in metrics
    assert 'provider_sim_requests_total{outcome="ok",provider="polygon"} 1.0' in metrics
