import pytest

from chaos_dr_stack.processor.runtime import CachedCheck, backoff_delay


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_cached_check_runs_at_most_once_per_ttl():
    clock, calls = FakeClock(), []
    check = CachedCheck(lambda: calls.append(clock.now) or True, ttl=1.0, clock=clock)
    assert [check() for _ in range(5)] == [True] * 5
    clock.now += 0.99
    check()
    assert calls == [100.0]
    clock.now += 0.02
    check()
    assert calls == [100.0, pytest.approx(101.01)]


def test_cached_check_reports_an_exception_as_down_and_caches_it():
    clock, calls = FakeClock(), []

    def boom() -> bool:
        calls.append(1)
        raise ConnectionError("refused")

    check = CachedCheck(boom, ttl=1.0, clock=clock)
    assert check() is False and check() is False
    assert len(calls) == 1


def test_cached_check_recovers_after_ttl():
    clock, state = FakeClock(), {"up": False}
    check = CachedCheck(lambda: state["up"], ttl=1.0, clock=clock)
    assert check() is False
    state["up"] = True
    assert check() is False
    clock.now += 1.0
    assert check() is True


def test_a_check_that_does_not_wait_answers_the_old_result_and_refreshes_once_in_the_background():
    clock, state, spawned = FakeClock(), {"up": True}, []
    check = CachedCheck(lambda: state["up"], ttl=1.0, clock=clock, wait=False, spawn=spawned.append)
    assert check() is True and spawned == []  # the first result is waited for: there is nothing older to give
    state["up"] = False
    clock.now += 1.0
    assert [check(), check()] == [True, True]  # expired: the callers get the old result at once...
    assert len(spawned) == 1  # ...and one refresh runs for all of them
    spawned.pop()()
    assert check() is False and spawned == []
    clock.now += 1.0
    check()
    assert len(spawned) == 1  # the next expiry starts the next refresh


@pytest.mark.parametrize(("attempt", "low", "high"), [(0, 0.05, 0.1), (1, 0.1, 0.2), (3, 0.4, 0.8), (10, 2.5, 5.0)])
def test_backoff_doubles_with_equal_jitter_and_caps(attempt, low, high):
    assert backoff_delay(attempt, base=0.1, cap=5.0, jitter=lambda: 0.0) == pytest.approx(low)
    assert backoff_delay(attempt, base=0.1, cap=5.0, jitter=lambda: 1.0) == pytest.approx(high)
