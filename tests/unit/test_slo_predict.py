"""Predicted alert times, with numbers worked by hand."""
from pathlib import Path

import pytest

from chaoslib_ext.slo import burn_alerts, drill_copy, load
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import Profile
from chaoslib_ext.slo.predict import (
    Bounds,
    crossing_seconds,
    time_to_fire,
    time_to_fire_on_change,
    time_to_forget,
    time_to_resolve,
)

D = Duration.parse
SPEC = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "slos.yaml"
PRODUCTION = Profile("production", scrape_interval=D("30s"), evaluation_interval=D("30s"), group_wait=D("30s"),
                     group_interval=D("5m"))
DRILL = Profile("drill", scrape_interval=D("1s"), evaluation_interval=D("1s"), group_wait=D("1s"),
                group_interval=D("1s"))


def seconds(bounds: Bounds | None) -> tuple[float, float] | None:
    return None if bounds is None else (bounds.lower, bounds.upper)


@pytest.mark.parametrize("window, threshold, e, seconds", [
    ("5m", 0.072, 1.0, 21.6),      # 300 s * 0.072 / 1
    ("5m", 0.072, 0.5, 43.2),      # half the errors: twice as long
    ("1h", 0.03, 1.0, 108.0),
    ("24h", 0.005, 1.0, 432.0),
    ("24h", 0.005, 0.01, 43_200.0),  # 2x the budget: half a day
])
def test_crossing_is_window_times_threshold_over_error_ratio(window, threshold, e, seconds):
    assert crossing_seconds(D(window), threshold, e) == pytest.approx(seconds)


@pytest.mark.parametrize("e", [0.0, 0.05, 0.072])
def test_an_error_ratio_at_or_below_the_threshold_never_crosses(e):
    assert crossing_seconds(D("5m"), 0.072, e) is None
    assert time_to_fire([D("5m")], 0.072, D("5m"), e, PRODUCTION) is None


def test_seed_critical_alert_in_production():
    # 21.6 s to cross + 300 s for: + 30 s group_wait = 351.6 s; + 30 s scrape + 30 s evaluation = 411.6 s.
    assert seconds(time_to_fire([D("5m")], 0.072, D("5m"), 1.0, PRODUCTION)) == pytest.approx((351.6, 411.6))


def test_seed_critical_alert_in_the_drill_profile_matches_the_measured_drill():
    # 5 s window * 0.072 = 0.36 s, + 5 s for: + 1 s group_wait = 6.36 s; + 1 s + 1 s = 8.36 s.
    # docs/LOCAL-PARTS measured the webhook 6.7 s after onset for this very setup.
    assert seconds(time_to_fire([D("5s")], 0.072, D("5s"), 1.0, DRILL)) == pytest.approx((6.36, 8.36))


def test_multiwindow_waits_for_the_slower_window():
    # 1h & 5m at 0.072: the 1h window crosses at 259.2 s, the 5m one at 21.6 s; no for:.
    assert seconds(time_to_fire([D("1h"), D("5m")], 0.072, D("0s"), 1.0, PRODUCTION)) == pytest.approx((289.2, 349.2))


def test_partial_outage():
    # 20% errors against the 1h/6x alert (0.03): 3600 * 0.03 / 0.2 = 540 s, + 900 s for:, + 30 s.
    assert seconds(time_to_fire([D("1h")], 0.03, D("15m"), 0.2, PRODUCTION)) == pytest.approx((1470, 1530))


def test_resolution_after_recovery():
    # The 5m window falls to 0.072 once 300 * (1 - 0.072) = 278.4 s of clean traffic are in it; + group_interval.
    assert seconds(time_to_resolve([D("5m")], 0.072, 1.0, PRODUCTION)) == pytest.approx((578.4, 638.4))
    # Multiwindow: the short window lets go first.
    assert seconds(time_to_resolve([D("1h"), D("5m")], 0.072, 1.0, DRILL)) == pytest.approx((279.4, 281.4))


def test_value_alerts():
    assert seconds(time_to_fire_on_change(D("0s"), PRODUCTION)) == pytest.approx((30, 90))
    assert seconds(time_to_fire_on_change(D("1m"), DRILL)) == pytest.approx((61, 63))
    # A restart leaves the 24h window 24 h after it (up to one scrape earlier), then one evaluation.
    assert seconds(time_to_forget(D("24h"), DRILL)) == pytest.approx((86_400, 86_402))


def test_predictions_from_the_catalogue_in_both_profiles():
    catalog = load(SPEC)
    production = {a.name: a for a in burn_alerts(catalog.slo("processor-availability"))}
    drill = {a.name: a for a in burn_alerts(drill_copy(catalog).slo("processor-availability"))}

    def fire(alert, profile):
        return seconds(time_to_fire(alert.windows, float(alert.threshold), alert.for_, 1.0, profile))

    # 24h window: 86400 * 0.005 = 432 s + 3600 s for: + 30 s group_wait.
    assert fire(production["ProcessorAvailabilityBurnRate24h"], catalog.production) == pytest.approx((4062, 4122))
    # The same alert in the drill: 1440 * 0.005 = 7.2 s + 60 s + 1 s.
    assert fire(drill["ProcessorAvailabilityBurnRate24h"], catalog.drill) == pytest.approx((68.2, 70.2))
