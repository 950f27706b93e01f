"""The pure provider measurements: classification of answers, failover, recovery, success rate, flapping."""
import pytest

from probes.provider_measure import (
    Outage, Sample, calls_to, decision_sample, failover_seconds, in_window, latency_quantile, outages, quote_sample,
    recovered_seconds, serving_before, staleness, success_rate, switches,
)

DECISION = {"symbol": "AAPL", "decision": "buy", "confidence": 0.7, "provider": "openai", "model": "gpt-4o",
            "reason": "momentum", "degraded": False, "latency_ms": 40, "served_at": 1.0}
QUOTE = {"symbol": "AAPL", "bid": 1.0, "ask": 1.1, "price": 1.05, "provider": "alpaca", "fetched_at": 1.0,
         "age_seconds": 0.3, "stale": False, "critical": False, "cached": False}


def ok(at: float, provider: str, latency: float = 0.05, **extra) -> Sample:
    return Sample(at, latency, 200, provider=provider, valid=True, **extra)


def failed(at: float, latency: float | None = 0.05, status: int | None = 503) -> Sample:
    return Sample(at, latency, status, error="boom")


def test_a_well_formed_decision_from_a_model_is_ok():
    sample = decision_sample(10.0, 0.2, 200, DECISION)
    assert sample.ok and sample.provider == "openai" and sample.received_at == pytest.approx(10.2)


@pytest.mark.parametrize("change, error", [
    ({"decision": "maybe"}, "decision 'maybe' is not one of buy, sell, hold"),
    ({"confidence": 1.5}, "confidence 1.5 is not within [0, 1]"),
    ({"degraded": True, "reason": ""}, "a degraded answer without a reason"),
])
def test_a_malformed_decision_is_not_ok_and_says_why(change, error):
    sample = decision_sample(10.0, 0.2, 200, {**DECISION, **change})
    assert not sample.ok and sample.error == error


def test_a_fallback_hold_is_valid_but_not_a_success():
    sample = decision_sample(1.0, 0.1, 200, {**DECISION, "decision": "hold", "provider": "fallback",
                                             "degraded": True, "reason": "all models unavailable"})
    assert sample.valid and sample.degraded and not sample.ok
    cached = decision_sample(1.0, 0.1, 200, {**DECISION, "provider": "cache", "degraded": False})
    assert cached.valid and not cached.ok


def test_no_answer_is_a_hang_with_no_latency():
    sample = decision_sample(1.0, None, None, None, error="no answer before the client timeout")
    assert not sample.answered and sample.received_at is None and not sample.ok


def test_a_quote_is_ok_only_while_fresh():
    assert quote_sample(1.0, 0.01, 200, QUOTE).ok
    stale = quote_sample(1.0, 0.01, 200, {**QUOTE, "age_seconds": 5.0, "stale": True})
    assert stale.valid and not stale.ok
    assert not quote_sample(1.0, 0.01, 200, {**QUOTE, "critical": True}).ok
    broken = quote_sample(1.0, 0.01, 200, {**QUOTE, "price": None})
    assert broken.error == "price None is not a positive number" and not broken.ok


def test_sample_round_trips_through_json():
    sample = quote_sample(1.0, 0.01, 200, QUOTE)
    assert Sample.from_json(sample.to_json()) == sample


def test_outages_end_at_the_heal_or_the_expiry_whichever_is_first():
    events = [
        {"at": 10.0, "kind": "fault.provider", "provider": "openai", "mode": "error", "expires_at": 18.0, "trial": 1},
        {"at": 15.0, "kind": "fault.healed", "fault": "provider", "provider": "openai"},
        {"at": 20.0, "kind": "fault.provider", "provider": "openai", "mode": "timeout", "expires_at": 24.0},
        {"at": 30.0, "kind": "fault.healed", "fault": "provider", "provider": "openai"},
        {"at": 31.0, "kind": "fault.provider", "provider": "alpaca", "mode": "error", "expires_at": 40.0,
         "error_rate": 0.5},
        {"at": 35.0, "kind": "fault.healed", "fault": "kafka-partition"},
    ]
    assert outages(events) == [
        Outage("openai", "error", 10.0, 15.0, 1),
        Outage("openai", "timeout", 20.0, 24.0),
        Outage("alpaca", "error", 31.0, 40.0, None, 0.5),
    ]


def test_a_new_fault_on_the_same_provider_ends_the_old_one():
    events = [
        {"at": 1.0, "kind": "fault.provider", "provider": "groq", "mode": "error", "expires_at": 60.0},
        {"at": 5.0, "kind": "fault.provider", "provider": "groq", "mode": "timeout", "expires_at": 9.0},
    ]
    assert [(o.mode, o.applied_at, o.ended_at) for o in outages(events)] == [("error", 1.0, 5.0), ("timeout", 5.0, 9.0)]


def test_failover_is_the_first_answer_from_another_provider_sent_after_the_onset():
    outage = Outage("openai", "error", 100.0, 110.0)
    samples = [ok(99.8, "openai"), ok(99.9, "groq", latency=0.5),  # sent before the fault: does not count
               failed(100.0), failed(100.1), ok(100.2, "openai"),  # a partial answer from the primary
               ok(100.3, "groq", latency=0.4), ok(100.4, "groq")]
    assert failover_seconds(samples, outage) == pytest.approx(0.7)


def test_no_failover_when_nobody_else_answered_during_the_outage():
    outage = Outage("openai", "timeout", 100.0, 105.0)
    samples = [failed(100.0 + i / 10, latency=None, status=None) for i in range(50)] + [ok(105.5, "groq")]
    assert failover_seconds(samples, outage) is None


def test_a_degraded_or_cached_answer_is_not_a_failover():
    outage = Outage("openai", "error", 100.0, 110.0)
    samples = [Sample(100.1, 0.1, 200, provider="fallback", degraded=True, valid=True, reason="all down"),
               Sample(100.2, 0.1, 200, provider="cache", valid=True), ok(102.0, "together")]
    assert failover_seconds(samples, outage) == pytest.approx(2.05)


def test_serving_before_is_the_last_ok_provider():
    samples = [ok(1.0, "groq"), ok(2.0, "openai"), failed(2.5)]
    assert serving_before(samples, 3.0) == "openai"
    assert serving_before(samples, 30.0) is None


def test_recovery_to_the_primary_counts_from_the_end_of_the_outage():
    outage = Outage("openai", "error", 100.0, 110.0)
    samples = [ok(109.0, "openai"), ok(110.0, "groq"), ok(112.0, "groq"), ok(115.0, "openai", latency=0.25)]
    assert recovered_seconds(samples, outage) == pytest.approx(5.25)
    assert recovered_seconds(samples[:3], outage) is None


def test_success_rate_and_window():
    samples = [ok(1.0, "groq"), failed(1.1), ok(1.2, "groq"), ok(5.0, "groq")]
    window = in_window(samples, 1.0, 2.0)
    assert [s.sent_at for s in window] == [1.0, 1.1, 1.2]
    assert success_rate(window) == pytest.approx(2 / 3)
    assert success_rate([]) is None


def test_switches_ignore_failures_between_answers_of_one_provider():
    samples = [ok(1, "alpaca"), failed(2), ok(3, "alpaca"), ok(4, "finnhub"), failed(5), ok(6, "finnhub"),
               ok(7, "alpaca"), ok(8, "finnhub")]
    assert switches(samples) == [(4, "alpaca", "finnhub"), (7, "finnhub", "alpaca"), (8, "alpaca", "finnhub")]
    assert switches([ok(1, "alpaca"), failed(2), ok(3, "alpaca")]) == []


def test_a_hang_counts_as_the_client_timeout_in_the_latency_quantile():
    samples = [ok(i, "fallback", latency=0.1) for i in range(99)] + [failed(100, latency=None, status=None)]
    assert latency_quantile(samples, 0.99, hang_seconds=15.0) == pytest.approx(0.1 + 0.01 * (15.0 - 0.1))
    assert latency_quantile([], 0.99, 15.0) is None


def test_staleness_reports_the_oldest_answer_and_how_many_broke_the_slo():
    samples = [quote_sample(1, 0.01, 200, {**QUOTE, "age_seconds": a}) for a in (0.2, 4.9, 5.0, 7.5)]
    samples.append(failed(2))
    assert staleness(samples) == {"answers": 4, "max_age_seconds": 7.5, "stale_answers": 2}
    assert staleness([]) == {"answers": 0, "max_age_seconds": None, "stale_answers": 0}


def test_a_crypto_answer_is_priced_in_usd():
    coin = {"coin": "bitcoin", "usd": 60000.0, "provider": "coingecko", "fetched_at": 1.0, "age_seconds": 0.5,
            "stale": False, "critical": False, "cached": True}
    assert quote_sample(1.0, 0.01, 200, coin).ok
    assert quote_sample(1.0, 0.01, 200, {**coin, "usd": 0}).error == "usd 0 is not a positive number"


def test_calls_count_only_providers_actually_called():
    attempts = [{"provider": "openai", "outcome": "skipped_rate_limited", "latency_ms": 0},
                {"provider": "groq", "outcome": "ok", "latency_ms": 30}]
    skipped = decision_sample(1.0, 0.1, 200, {**DECISION, "provider": "groq", "attempts": attempts})
    called = decision_sample(1.1, 0.1, 200, {**DECISION, "provider": "groq", "attempts": [
        {"provider": "openai", "outcome": "rate_limited", "latency_ms": 3}, attempts[1]]})
    assert skipped.called == ("groq",) and called.called == ("openai", "groq")
    assert calls_to([skipped, called], "openai") == 1
    assert Sample.from_json(called.to_json()) == called
