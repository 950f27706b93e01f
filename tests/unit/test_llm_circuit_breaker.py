"""The AI decision service's circuit breaker, on a fake clock: no sleeping."""
from chaos_dr_stack.ai_decision.breaker import CLOSED, HALF_OPEN, OPEN, RATE_LIMITED, BreakerSettings, CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(threshold: int = 3, cooldown: float = 10.0) -> tuple[CircuitBreaker, FakeClock]:
    clock = FakeClock()
    return CircuitBreaker(BreakerSettings(failure_threshold=threshold, cooldown_s=cooldown), clock), clock


def test_one_slow_failure_opens_the_circuit_at_once():
    b, _ = breaker()
    assert b.try_acquire() is None
    b.record_failure(slow=True)
    assert b.state == OPEN
    assert b.try_acquire() == "circuit_open"


def test_fast_failures_open_it_only_after_the_threshold_in_a_row():
    b, _ = breaker(threshold=3)
    for _ in range(2):
        b.record_failure(slow=False)
        assert b.state == CLOSED
    b.record_success()  # a success in between restarts the count
    for _ in range(2):
        b.record_failure(slow=False)
    assert b.state == CLOSED and b.consecutive_failures == 2
    b.record_failure(slow=False)
    assert b.state == OPEN


def test_after_the_cooldown_exactly_one_caller_probes_and_its_success_closes_the_circuit():
    b, clock = breaker(cooldown=10)
    b.record_failure(slow=True)
    clock.now += 9.99
    assert b.state == OPEN and b.try_acquire() == "circuit_open"
    clock.now += 0.01
    assert b.state == HALF_OPEN
    assert b.try_acquire() is None  # the probe
    assert b.try_acquire() == "circuit_open"  # everyone else skips it meanwhile
    b.record_success()
    assert b.state == CLOSED and b.try_acquire() is None and b.consecutive_failures == 0


def test_a_failed_probe_opens_the_circuit_for_another_full_cooldown_even_when_fast():
    b, clock = breaker(threshold=3, cooldown=10)
    b.record_failure(slow=True)
    clock.now += 10
    assert b.try_acquire() is None
    b.record_failure(slow=False)  # one fast failure is enough in half-open
    assert b.state == OPEN and b.open_until == clock.now + 10


def test_a_probe_abandoned_without_outcome_lets_the_next_caller_probe():
    b, clock = breaker(cooldown=5)
    b.record_failure(slow=True)
    clock.now += 5
    assert b.try_acquire() is None
    b.release()
    assert b.try_acquire() is None


def test_429_skips_the_provider_until_retry_after_without_opening_the_circuit():
    b, clock = breaker(cooldown=10)
    b.record_rate_limited(3)
    assert b.state == RATE_LIMITED and b.try_acquire() == "rate_limited" and b.open_until == clock.now + 3
    clock.now += 2.999
    assert b.try_acquire() == "rate_limited"
    clock.now += 0.001
    assert b.state == CLOSED and b.try_acquire() is None and b.consecutive_failures == 0


def test_429_without_retry_after_waits_the_cooldown():
    b, clock = breaker(cooldown=7)
    b.record_rate_limited(None)
    clock.now += 6.9
    assert b.state == RATE_LIMITED
    clock.now += 0.1
    assert b.state == CLOSED
