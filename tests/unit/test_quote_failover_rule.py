"""The market data service's failover rule (hysteresis), on a fake clock."""
import pytest

from chaos_dr_stack.market_data.failover import FailoverSettings, ProviderSelector

CHAIN = ("alpaca", "finnhub", "polygon")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def selector(failover_after: int = 2, window: float = 10.0) -> tuple[ProviderSelector, FakeClock]:
    clock = FakeClock()
    return ProviderSelector(CHAIN, FailoverSettings(failover_after, window), clock), clock


def test_two_failed_polls_in_a_row_move_to_the_next_provider():
    s, _ = selector()
    assert s.record_poll(False) is None and s.serving == "alpaca"
    move = s.record_poll(False)
    assert (move.from_provider, move.to_provider, s.serving) == ("alpaca", "finnhub", "finnhub")
    assert s.above_serving() == ("alpaca",)


def test_an_even_50_percent_error_rate_never_moves():
    s, _ = selector()
    moves = [s.record_poll(ok) for ok in [False, True] * 500]
    assert moves == [None] * 1000 and s.serving == "alpaca"


def test_the_chain_continues_past_the_fallback_and_stops_at_its_end():
    s, _ = selector()
    for _ in range(2):
        s.record_poll(False)
    for _ in range(2):
        s.record_poll(False)
    assert s.serving == "polygon" and s.at_bottom()
    assert [s.record_poll(False) for _ in range(10)] == [None] * 10 and s.serving == "polygon"


def test_return_to_the_primary_only_after_a_full_window_of_successful_probes():
    s, clock = selector(window=10)
    s.record_poll(False), s.record_poll(False)
    assert s.record_probe("alpaca", True) is None  # window starts
    clock.now = 9.9
    assert s.record_probe("alpaca", True) is None and s.serving == "finnhub"
    clock.now = 10.0
    move = s.record_probe("alpaca", True)
    assert (move.from_provider, move.to_provider, s.serving) == ("finnhub", "alpaca", "alpaca")


def test_one_failed_probe_restarts_the_window_so_a_flaky_primary_is_not_returned_to():
    s, clock = selector(window=10)
    s.record_poll(False), s.record_poll(False)
    moves = []
    for second in range(120):  # the primary fails every other probe for two minutes
        clock.now = float(second)
        moves.append(s.record_probe("alpaca", second % 2 == 0))
    assert moves == [None] * 120 and s.serving == "finnhub"


def test_from_the_bottom_it_returns_to_the_highest_recovered_provider():
    s, clock = selector(window=5)
    for _ in range(4):
        s.record_poll(False)
    assert s.serving == "polygon" and s.above_serving() == ("alpaca", "finnhub")
    s.record_probe("finnhub", True)
    clock.now = 2
    s.record_probe("alpaca", True)
    clock.now = 5
    move = s.record_probe("finnhub", True)  # finnhub's window is complete; alpaca's is not yet
    assert move.to_provider == "finnhub"
    clock.now = 7
    move = s.record_probe("alpaca", True)
    assert move.to_provider == "alpaca" and s.serving == "alpaca"


def test_probes_of_providers_below_the_serving_one_are_ignored():
    s, _ = selector()
    assert s.record_probe("finnhub", True) is None and s.serving == "alpaca"


def test_an_empty_chain_is_refused():
    with pytest.raises(ValueError, match="empty"):
        ProviderSelector((), FailoverSettings(), FakeClock())
