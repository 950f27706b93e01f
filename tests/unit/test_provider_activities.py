"""Provider actions and probes: arguments checked before any side effect (the control URL points at a closed
port, so reaching for the target would raise TargetUnreachable), and the probes' phases and findings read from a
planted timeline and samples file."""
import json

import pytest

from chaoslib_ext import timeline
from chaoslib_ext.actions.load import sample_service, stop_sampling
from chaoslib_ext.actions.providers import fail_provider, provider_outage_trials, restore_all_providers, restore_provider
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData, TargetUnreachable
from chaoslib_ext.targets.base import validate_provider_fault
from probes.provider_measure import Sample
from probes.providers import (
    all_providers_down, calls_during_outages, fallback_success_rate, provider_failover, provider_switches, recovery_to_primary,
)

NOWHERE = {"target": "local", "local_control_url": "http://127.0.0.1:9"}


@pytest.mark.parametrize("kwargs, message", [
    ({"provider": "anthropic"}, "provider 'anthropic' is not one of openai, groq, together, alpaca"),
    ({"mode": "explode"}, "mode 'explode' is not one of error, latency, timeout, reset, malformed"),
    ({"ttl_seconds": 0}, r"ttl_seconds must be a number > 0 and <= 3600, got 0"),
    ({"ttl_seconds": "30"}, "ttl_seconds must be a number > 0 and <= 3600, got '30'"),
    ({"status": 404}, "status must be one of 500, 503, 429, got 404"),
    ({"status": 503, "retry_after_s": 5}, "retry_after_s only applies to status 429, not 503"),
    ({"status": 429, "retry_after_s": -1}, r"retry_after_s must be a whole number within \[0, 3600\], got -1"),
    ({"status": 429, "retry_after_s": 1.5}, r"retry_after_s must be a whole number within \[0, 3600\], got 1.5"),
    ({"mode": "latency"}, r"latency_ms must be a number within \[1, 600000\], got None"),
    ({"mode": "latency", "latency_ms": 0}, r"latency_ms must be a number within \[1, 600000\], got 0"),
    ({"mode": "timeout", "latency_ms": 100}, "latency_ms only applies to mode 'latency', not 'timeout'"),
    ({"mode": "timeout", "status": 503}, "status only applies to mode 'error', not 'timeout'"),
    ({"error_rate": 0}, r"error_rate must be a number > 0 and <= 1, got 0"),
    ({"error_rate": 1.5}, r"error_rate must be a number > 0 and <= 1, got 1.5"),
    ({"wait": "yes"}, "wait must be true or false, got 'yes'"),
])
def test_fail_provider_rejects_a_bad_argument_before_reaching_the_target(kwargs, message):
    arguments = {"provider": "openai", "mode": "error", "ttl_seconds": 10, **kwargs}
    with pytest.raises(InvalidArgument, match=message):
        fail_provider(configuration=NOWHERE, **arguments)


def test_trials_reject_bad_counts_and_pauses():
    with pytest.raises(InvalidArgument, match=r"trials must be a whole number within \[1, 100\], got 0"):
        provider_outage_trials("alpaca", trials=0, configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match=r"recover_seconds must be a number within \[0, 3600\], got -1"):
        provider_outage_trials("alpaca", recover_seconds=-1, configuration=NOWHERE)
    with pytest.raises(InvalidArgument, match="provider None is not one of"):
        restore_provider(None, configuration=NOWHERE)


def test_good_arguments_reach_for_the_target():
    with pytest.raises(TargetUnreachable, match="did not answer PUT /faults/providers/openai"):
        fail_provider("openai", "error", 5, status=429, retry_after_s=2, configuration=NOWHERE)
    with pytest.raises(TargetUnreachable, match="did not answer DELETE /faults/providers"):
        restore_all_providers(configuration=NOWHERE)


def test_the_validated_fault_body_carries_defaults_and_only_what_applies():
    assert validate_provider_fault("openai", "error", 5) == {"mode": "error", "ttl_seconds": 5.0, "status": 503}
    assert validate_provider_fault("alpaca", "error", 5, status=500, error_rate=0.5) == {
        "mode": "error", "ttl_seconds": 5.0, "status": 500, "error_rate": 0.5}
    assert validate_provider_fault("groq", "latency", 5, latency_ms=800) == {
        "mode": "latency", "ttl_seconds": 5.0, "latency_ms": 800.0}
    with pytest.raises(InvalidArgument, match="ratio is not a provider fault parameter"):
        validate_provider_fault("groq", "error", 5, ratio=0.5)


@pytest.mark.parametrize("call, message", [
    (lambda: sample_service(service="gateway", configuration=NOWHERE), "service 'gateway' is not one of"),
    (lambda: sample_service(rate_hz=5, configuration=NOWHERE), "rate_hz must be >= 10 to resolve"),
    (lambda: sample_service(duration_seconds=-1, configuration=NOWHERE), "duration_seconds must be a number > 0 and <= 3600, got -1"),
    (lambda: sample_service(symbol="AA PL", configuration=NOWHERE), "symbol must be a ticker"),
    (lambda: provider_failover(provider="ibm", configuration=NOWHERE), "provider 'ibm' is not one of"),
    (lambda: provider_failover(mode="down", configuration=NOWHERE), "mode 'down' is not one of"),
    (lambda: all_providers_down(providers=[], configuration=NOWHERE), "providers must name at least one"),
    (lambda: all_providers_down(providers=["openai", "x"], configuration=NOWHERE), "providers entry 'x'"),
])
def test_probe_arguments_are_checked_first(call, message):
    with pytest.raises(InvalidArgument, match=message):
        call()


@pytest.fixture
def run(tmp_path):
    """A planted run: the timeline's run markers, one fault per trial, and a samples file."""
    configuration = {**NOWHERE, "gameday_timeline": str(tmp_path / "timeline.jsonl")}

    def plant(events: list[dict], samples: list[Sample], service: str = "ai_decision") -> dict:
        timeline.record("run.started", configuration, at=1.0)
        timeline.record("run.method_started", configuration, at=2.0)
        path = tmp_path / f"samples-{service}-1.jsonl"
        path.write_text("".join(json.dumps(s.to_json()) + "\n" for s in samples))
        timeline.record("observation.sampling", configuration, at=2.0, service=service,
                        samples_file=str(path))
        for event in events:
            timeline.record(event.pop("kind"), configuration, **event)
        return configuration

    return plant


def ok(at, provider, latency=0.05):
    return Sample(at, latency, 200, provider=provider, valid=True)


def primary_outage(start, end, trial):
    return [{"kind": "fault.provider", "at": start, "provider": "openai", "mode": "error", "expires_at": end,
             "trial": trial},
            {"kind": "fault.healed", "at": end, "fault": "provider", "provider": "openai"}]


def test_before_the_method_the_failover_probe_reports_zeros():
    configuration = {**NOWHERE, "gameday_timeline": "/nonexistent/timeline.jsonl"}
    assert provider_failover(configuration=configuration)["phase"] == "before"


def test_failover_distribution_over_trials(run):
    samples, events = [], []
    for trial, (start, switch) in enumerate([(10.0, 0.5), (30.0, 1.5), (50.0, 3.0)], start=1):
        events += primary_outage(start, start + 8, trial)
        samples += [ok(start - 0.5 + i / 10, "openai") for i in range(5)]
        samples += [ok(start + switch + i / 10, "groq") for i in range(10)]
        samples += [ok(start + 9 + i / 10, "openai") for i in range(5)]
    configuration = run(events, samples)
    result = provider_failover(provider="openai", configuration=configuration)
    assert result["seconds"] == [0.55, 1.55, 3.05] and result["p50"] == 1.55 and result["max"] == 3.05
    assert "p95 2.9 s is within the 10 s budget over 3 trial(s)" in result["finding"]
    recovery = recovery_to_primary(provider="openai", configuration=configuration)
    assert recovery["seconds"] == [1.05, 1.05, 1.05]
    rate = fallback_success_rate(provider="openai", configuration=configuration)
    assert rate == {"phase": "after", "rate": 1.0, "n": 30, "failed": 0, "failures": {}}


def test_a_trial_that_never_fails_over_is_a_blown_budget_naming_it(run):
    samples = [ok(9.5, "openai")] + [Sample(10 + i / 10, None, None, error="no answer") for i in range(50)]
    configuration = run(primary_outage(10.0, 15.0, 1), samples)
    with pytest.raises(BudgetExceeded, match=r"trial 1 \(openai error at 10.000\): no other provider answered "
                                             r"during the 5.0 s outage"):
        provider_failover(configuration=configuration)
    rate = fallback_success_rate(provider="openai", configuration=configuration)
    assert rate["rate"] == 0.0 and rate["failures"] == {"no answer": 50}


def test_after_the_method_no_fault_is_no_data(run):
    configuration = run([], [ok(3.0, "openai")])
    with pytest.raises(NoData, match="the method ran but recorded no openai fault"):
        provider_failover(configuration=configuration)


def test_a_primary_that_was_not_serving_cannot_fail_over(run):
    configuration = run(primary_outage(10.0, 15.0, 1), [ok(9.5, "groq"), ok(10.5, "groq")])
    with pytest.raises(NoData, match="openai was not serving just before the fault \\(groq was\\)"):
        provider_failover(configuration=configuration)


def test_all_down_reports_hangs_reasons_and_p99(run):
    events = []
    for provider in ("openai", "groq", "together"):
        events.append({"kind": "fault.provider", "at": 10.0, "provider": provider, "mode": "error",
                       "expires_at": 20.0})
    hold = [Sample(10 + i / 10, 0.2, 200, provider="fallback", degraded=True, valid=True, reason="all models down")
            for i in range(99)]
    configuration = run(events, hold + [Sample(19.95, None, None, error="no answer")])
    result = all_providers_down(hang_seconds=15, configuration=configuration)
    assert result["n"] == 100 and result["hangs"] == 1 and result["answered"] == 99
    assert result["degraded_share"] == 0.99 and result["explained_share"] == 0.99
    assert result["p99_latency_s"] == pytest.approx(0.348)
    assert result["reasons"] == ["all models down"]


def test_flapping_counts_switches_within_the_outage(run):
    events = [{"kind": "fault.provider", "at": 10.0, "provider": "alpaca", "mode": "error", "expires_at": 16.0,
               "error_rate": 0.5}]
    samples = [ok(10 + i, "alpaca" if i % 2 else "finnhub") for i in range(6)]
    configuration = run(events, samples, service="market_data")
    result = provider_switches(service="market_data", provider="alpaca", configuration=configuration)
    assert result["switches"] == 5 and result["per_minute"] == 50.0
    assert result["serving"] == {"finnhub": 3, "alpaca": 3}


def test_a_live_answer_while_all_are_down_means_the_faults_did_not_take(run):
    events = [{"kind": "fault.provider", "at": 10.0, "provider": p, "mode": "timeout", "expires_at": 20.0}
              for p in ("openai", "groq", "together")]
    configuration = run(events, [ok(12.0, "together")])
    with pytest.raises(BudgetExceeded, match="together answered at 12.000 while every provider was meant to be down"):
        all_providers_down(configuration=configuration)


def test_all_down_needs_every_provider_down_at_once(run):
    events = [{"kind": "fault.provider", "at": 10.0, "provider": "openai", "mode": "timeout", "expires_at": 20.0},
              {"kind": "fault.provider", "at": 10.0, "provider": "groq", "mode": "timeout", "expires_at": 20.0},
              {"kind": "fault.provider", "at": 21.0, "provider": "together", "mode": "timeout", "expires_at": 30.0}]
    configuration = run(events, [ok(12.0, "together")])
    with pytest.raises(NoData, match="openai, groq, together were never all down at the same time"):
        all_providers_down(configuration=configuration)


def test_stop_sampling_marks_the_timeline(tmp_path):
    configuration = {"gameday_timeline": str(tmp_path / "t.jsonl")}
    stop_sampling("market_data", configuration=configuration)
    assert timeline.read(configuration)[0]["kind"] == "sampling.stop"
    with pytest.raises(InvalidArgument, match="service 'x' is not one of"):
        stop_sampling("x", configuration=configuration)


def test_calls_during_outages_count_real_calls_per_outage(run):
    events = primary_outage(10.0, 15.0, 1) + primary_outage(20.0, 25.0, 2)
    called = Sample(10.0, 0.05, 200, provider="groq", valid=True, called=("openai", "groq"))
    skipped = Sample(10.1, 0.05, 200, provider="groq", valid=True, called=("groq",))
    samples = [called, skipped, Sample(20.5, 0.05, 200, provider="groq", valid=True, called=("openai", "groq")),
               Sample(21.0, 0.05, 200, provider="groq", valid=True, called=("openai", "groq"))]
    result = calls_during_outages(configuration=run(events, samples))
    assert result["per_outage"] == [1, 2] and result["max_per_outage"] == 2
    assert result["requests_per_outage"] == [2, 2]


def test_an_answer_that_arrives_after_the_window_is_not_proof_of_a_live_provider(run):
    events = [{"kind": "fault.provider", "at": 10.0, "provider": p, "mode": "timeout", "expires_at": 20.0}
              for p in ("openai", "groq", "together")]
    hold = Sample(11.0, 0.1, 200, provider="fallback", degraded=True, valid=True, reason="all down")
    waited = Sample(19.8, 0.5, 200, provider="openai", valid=True)  # sent inside, answered after the heal at 20.0
    result = all_providers_down(configuration=run(events, [hold, waited]))
    assert result["n"] == 2 and result["explained_share"] == 1.0 and result["degraded_share"] == 0.5


def test_the_samplers_old_probe_path_still_works_for_a_release_and_says_where_it_went(tmp_path):
    from probes import providers

    configuration = {"gameday_timeline": str(tmp_path / "t.jsonl")}
    with pytest.warns(DeprecationWarning, match="probes.providers.stop_sampling is deprecated .* "
                                                "chaoslib_ext.actions.load.stop_sampling"):
        providers.stop_sampling("ai_decision", configuration=configuration)
    assert timeline.read(configuration)[0]["kind"] == "sampling.stop"
    with pytest.warns(DeprecationWarning, match="probes.providers.sample_service is deprecated"):
        with pytest.raises(InvalidArgument, match="rate_hz must be >= 10"):
            providers.sample_service(rate_hz=5, configuration=NOWHERE)
