"""promtool rule tests generated from the model and each SLO's ``test_fixture``.

For every alert of an SLO with a fixture, two test groups: a total outage followed by recovery (the alert fires
inside the window predicted by ``chaoslib_ext.slo.predict`` and not before its lower bound, then resolves inside
the predicted window), and traffic just below the threshold (never fires). The expected times come from the
predictor, so promtool — Prometheus' own engine — checks the predictor as much as the rules. promtool has no
Alertmanager: ``group_wait`` and ``group_interval`` are taken as 0 here.
"""
from __future__ import annotations

import dataclasses
import math
from decimal import Decimal
from typing import Iterable

from chaoslib_ext.slo import predict
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import (
    SLO,
    Catalog,
    Condition,
    EventsSLI,
    Fixture,
    Profile,
    ThresholdAlert,
    fmt_number,
)
from chaoslib_ext.slo.rules import (
    BurnAlert,
    burn_alert_annotations,
    burn_alerts,
    error_ratio_record,
    rule_file_name,
    series_labels,
    threshold_alert_annotations,
)

BELOW_FACTOR = Decimal("0.95")
"""An error ratio "just below" the threshold: 95 % of it."""

IGNORED_FACTOR = 10
"""Series the SLI must ignore run at ten times the fixture's rate, so counting them would show."""

SAMPLES_PER_WINDOW = 288
"""Tests of long windows sample more coarsely: promtool's cost is per evaluation, and 288 samples a window (5 min
in a day) resolve a crossing as well as 2880 do, relative to the window."""


def grid_factor(profile: Profile, window: Duration | None) -> int:
    """How many of the profile's scrape and evaluation intervals one test step spans, for an alert on ``window``."""
    if window is None:
        return 1
    return max(1, window.ms // (SAMPLES_PER_WINDOW * max(profile.scrape_interval.ms, profile.evaluation_interval.ms)))


def simulated_timing(profile: Profile, factor: int) -> Profile:
    """The timing promtool simulates: the profile's intervals times ``factor``, and no Alertmanager (promtool
    reports alerts as Prometheus fires them, so ``group_wait`` and ``group_interval`` are 0)."""
    return dataclasses.replace(
        profile,
        scrape_interval=Duration(profile.scrape_interval.ms * factor),
        evaluation_interval=Duration(profile.evaluation_interval.ms * factor),
        group_wait=Duration(0), group_interval=Duration(0),
    )


class _Clock:
    """Sample and evaluation grids of one test file, in milliseconds."""

    def __init__(self, timing: Profile):
        self.scrape = timing.scrape_interval.ms
        self.eval = timing.evaluation_interval.ms
        self.grid = math.lcm(self.scrape, self.eval)

    def ceil_grid(self, ms: float) -> int:
        return math.ceil(ms / self.grid) * self.grid

    def eval_at_or_after(self, ms: float) -> int:
        return math.ceil(round(ms) / self.eval) * self.eval

    def eval_before(self, ms: float) -> int:
        """Last evaluation strictly before ``ms``."""
        return (math.ceil(round(ms) / self.eval) - 1) * self.eval


def _values(samples: list[Decimal | None]) -> str:
    """promtool's expanding notation: runs of equal steps as ``a+bxn``, runs of gaps as ``_xn``."""
    tokens, i = [], 0
    while i < len(samples):
        if samples[i] is None:
            j = i
            while j < len(samples) and samples[j] is None:
                j += 1
            tokens.append("_" if j - i == 1 else f"_x{j - i}")
            i = j
            continue
        j = i + 1
        step = samples[j] - samples[i] if j < len(samples) and samples[j] is not None else None
        while j < len(samples) and samples[j] is not None and samples[j] - samples[j - 1] == step:
            j += 1
        start, count = samples[i], j - i
        if count == 1:
            tokens.append(fmt_number(start))
        else:
            sign = "-" if step < 0 else "+"
            tokens.append(f"{fmt_number(start)}{sign}{fmt_number(abs(step))}x{count - 1}")
        i = j
    return " ".join(tokens)


def _counter(increments: list[Decimal], appear_on_first: bool = False) -> str:
    """Cumulative counter from per-interval increments (index 0 is the sample at t=0, always 0).
    ``appear_on_first``: the series is absent until its first increment, as a labelled child of a client
    library counter is created by its first event."""
    total, samples = Decimal(0), []
    for inc in increments:
        total += inc
        samples.append(None if appear_on_first and total == 0 else total)
    return _values(samples)


def _alert_check(at_ms: int, name: str, labels: dict | None, annotations: dict | None) -> dict:
    expected = [] if labels is None else [{"exp_labels": labels, "exp_annotations": annotations}]
    return {"eval_time": str(Duration(at_ms)), "alertname": name, "exp_alerts": expected}


@dataclasses.dataclass
class _Builder:
    """Collects the test groups of one rules file."""

    profile: Profile
    """The profile of the rules under test (labels, annotations)."""
    timing: Profile
    """The intervals promtool simulates (``simulated_timing``)."""
    groups: list = dataclasses.field(default_factory=list)

    def __post_init__(self):
        self.clock = _Clock(self.timing)

    def add(self, name: str, series: dict[str, str], alerts: list[dict], exprs: Iterable[dict] = ()) -> None:
        if self.profile.name != "production":
            name = f"[{self.profile.name}] {name}"
        group = {"name": name, "interval": str(self.timing.scrape_interval),
                 "input_series": [{"series": s, "values": v} for s, v in series.items()],
                 "alert_rule_test": alerts}
        exprs = list(exprs)
        if exprs:
            group["promql_expr_test"] = exprs
        self.groups.append(group)

    # -- events SLIs ---------------------------------------------------------------------------------------------

    def _traffic(self, fixture: Fixture, schedule: list[tuple[int, Decimal]], end_ms: int) -> dict[str, str]:
        """Series for an error ratio that follows ``schedule`` [(from_ms, ratio), ...] until ``end_ms``."""
        per_sample = fixture.rate * self.clock.scrape / 1000
        steps = end_ms // self.clock.scrape
        ratios = [Decimal(0)]
        for k in range(1, steps + 1):
            t = k * self.clock.scrape
            # The increment reported at sample k happened during ((k-1)S, kS]: it follows the ratio in force then.
            ratios.append(next(e for start, e in reversed(schedule) if start < t))
        zero = [Decimal(0)] + [per_sample] * steps
        good = [Decimal(0)] + [per_sample * (1 - e) for e in ratios[1:]]
        bad = [Decimal(0)] + [per_sample * e for e in ratios[1:]]
        series = {fixture.good: _counter(good)}
        if fixture.bad:
            series[fixture.bad] = _counter(bad, appear_on_first=True)
        else:
            series[fixture.total] = _counter(zero)
        for ignored in fixture.ignored:
            series[ignored] = _counter([v * IGNORED_FACTOR for v in zero])
        return series

    def events_alert(self, slo: SLO, alert: BurnAlert) -> None:
        clock, fixture = self.clock, slo.fixture
        labels = {**series_labels(slo, self.profile), "severity": alert.severity}
        annotations = burn_alert_annotations(slo, alert, self.profile)
        threshold = float(alert.threshold)
        longest = max(alert.windows)

        # A full window of clean traffic, a total outage from `onset` until just after the alert must have fired,
        # then clean traffic again until it must have resolved.
        onset = clock.ceil_grid(longest.ms + clock.scrape)
        fire = predict.time_to_fire(alert.windows, threshold, alert.for_, 1.0, self.timing)
        fired_by = clock.eval_at_or_after(onset + fire.upper * 1000)
        recovery = clock.ceil_grid(fired_by + clock.eval)
        resolve = predict.time_to_resolve(alert.windows, threshold, 1.0, self.timing)
        end = clock.eval_at_or_after(recovery + resolve.upper * 1000)
        checks = []
        not_before = clock.eval_before(onset + fire.lower * 1000)
        if not_before > onset:
            checks.append(_alert_check(not_before, alert.name, None, None))
        checks += [
            _alert_check(fired_by, alert.name, labels, annotations),
            _alert_check(clock.eval_before(recovery + resolve.lower * 1000), alert.name, labels, annotations),
            _alert_check(end, alert.name, None, None),
        ]
        record_labels = series_labels(slo, self.profile)
        exprs = [
            {"expr": f'{error_ratio_record(w, self.profile)}{{slo="{slo.name}"}}', "eval_time": str(Duration(t)),
             "exp_samples": [{"labels": _series_text(error_ratio_record(w, self.profile), record_labels), "value": v}]}
            for w in alert.windows
            # Before the outage: 0 (not "no data", though the error series does not exist yet). A window after it
            # started: 1, however loud the ignored series are.
            for t, v in ((onset - clock.eval, 0), (clock.ceil_grid(onset + w.ms + clock.scrape), 1))
            if t <= recovery
        ]
        self.add(
            f"{slo.name}: {alert.name} fires {fire.lower:g}-{fire.upper:g} s after a total outage, "
            f"resolves {resolve.lower:g}-{resolve.upper:g} s after recovery",
            self._traffic(fixture, [(0, Decimal(0)), (onset, Decimal(1)), (recovery, Decimal(0))], end), checks, exprs,
        )

        # Just below the threshold: once the window is full the ratio stays at `below`; still silent `for:` later.
        below = alert.threshold * BELOW_FACTOR
        settled = longest.ms + alert.for_.ms + clock.scrape + clock.eval
        end = clock.ceil_grid(settled + 2 * (clock.scrape + clock.eval))
        checks = [_alert_check(clock.eval_at_or_after(t), alert.name, None, None) for t in (settled, end)]
        self.add(
            f"{slo.name}: {alert.name} stays silent at an error ratio of {fmt_number(below)} "
            f"({fmt_number(BELOW_FACTOR * 100)}% of its threshold {fmt_number(alert.threshold)})",
            self._traffic(fixture, [(0, below)], end), checks,
        )

    # -- threshold SLIs ------------------------------------------------------------------------------------------

    def threshold_alert(self, slo: SLO, alert: ThresholdAlert) -> None:
        if slo.fixture.counter:
            self._counter_alert(slo, alert)
        else:
            self._gauge_alert(slo, alert)

    def _labels(self, slo: SLO, alert: ThresholdAlert) -> dict[str, str]:
        return {**dict(slo.fixture.labels), **series_labels(slo, self.profile), "severity": alert.severity}

    def _counter_alert(self, slo: SLO, alert: ThresholdAlert) -> None:
        clock, fixture, window = self.clock, slo.fixture, slo.sli.window
        labels, annotations = self._labels(slo, alert), threshold_alert_annotations(slo, alert, self.profile)
        needed = _events_needed(alert.condition)
        first = clock.ceil_grid(10 * clock.scrape)
        fire = predict.time_to_fire_on_change(alert.for_, self.timing)
        forget = predict.time_to_forget(window, self.timing)

        def series(events: int, end: int) -> dict[str, str]:
            # One event a scrape interval from `first`; the ignored series get ten times as many.
            steps = end // clock.scrape
            hits = [Decimal(1) if first <= k * clock.scrape < first + events * clock.scrape else Decimal(0)
                    for k in range(steps + 1)]
            out = {fixture.counter: _counter(hits)}
            for ignored in fixture.ignored:
                out[ignored] = _counter([h * IGNORED_FACTOR for h in hits])
            return out

        last = first + (needed - 1) * clock.scrape
        fired_by = clock.eval_at_or_after(last + fire.upper * 1000)
        end = clock.eval_at_or_after(first + forget.upper * 1000)
        checks = [_alert_check(clock.eval_before(last + fire.lower * 1000), alert.name, None, None),
                  _alert_check(fired_by, alert.name, labels, annotations),
                  _alert_check(clock.eval_before(first + forget.lower * 1000), alert.name, labels, annotations),
                  _alert_check(end, alert.name, None, None)]
        self.add(f"{slo.name}: {alert.name} fires {fire.lower:g}-{fire.upper:g} s after event {needed}, "
                 f"resolves {forget.lower:g}-{forget.upper:g} s after the first", series(needed, end), checks)

        end = clock.eval_at_or_after(last + fire.upper * 1000 + 10 * clock.scrape)
        self.add(f"{slo.name}: {alert.name} stays silent after {needed - 1} events",
                 series(needed - 1, end), [_alert_check(t, alert.name, None, None) for t in (fired_by, end)])

    def _gauge_alert(self, slo: SLO, alert: ThresholdAlert) -> None:
        clock, fixture = self.clock, slo.fixture
        labels, annotations = self._labels(slo, alert), threshold_alert_annotations(slo, alert, self.profile)
        firing, near = _gauge_values(alert.condition)
        fire = predict.time_to_fire_on_change(alert.for_, self.timing)
        change = clock.ceil_grid(alert.for_.ms + 10 * clock.scrape)

        def series(schedule: list[tuple[int, Decimal]], end: int) -> dict[str, str]:
            samples = [next(v for start, v in reversed(schedule) if start <= k * clock.scrape)
                       for k in range(end // clock.scrape + 1)]
            out = {fixture.gauge: _values(samples)}
            for ignored in fixture.ignored:
                out[ignored] = _values([firing] * len(samples))
            return out

        fired_by = clock.eval_at_or_after(change + fire.upper * 1000)
        recovery = clock.ceil_grid(fired_by + clock.eval)
        end = clock.eval_at_or_after(recovery + clock.scrape + clock.eval)
        checks = [_alert_check(clock.eval_before(change + fire.lower * 1000), alert.name, None, None),
                  _alert_check(fired_by, alert.name, labels, annotations),
                  _alert_check(clock.eval_before(recovery), alert.name, labels, annotations),
                  _alert_check(end, alert.name, None, None)]
        self.add(f"{slo.name}: {alert.name} fires {fire.lower:g}-{fire.upper:g} s after the value reaches "
                 f"{fmt_number(firing)}, resolves when it is back at {fmt_number(near)}",
                 series([(0, near), (change, firing), (recovery, near)], end), checks)

        end = clock.ceil_grid(2 * change)
        self.add(f"{slo.name}: {alert.name} stays silent at {fmt_number(near)}", series([(0, near)], end),
                 [_alert_check(t, alert.name, None, None) for t in (change, end)])


def _events_needed(condition: Condition) -> int:
    """Smallest count of events that meets a ``>``/``>=`` condition."""
    value = condition.value
    return int(math.ceil(value)) if condition.op == ">=" else int(math.floor(value)) + 1


def _gauge_values(condition: Condition) -> tuple[Decimal, Decimal]:
    """(a value that meets the condition, a value at the edge that does not)."""
    v = condition.value
    return {">": (v + 1, v), ">=": (v, v - 1), "<": (v - 1, v), "<=": (v, v + 1)}[condition.op]


def _series_text(name: str, labels: dict[str, str]) -> str:
    return name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def promtool_test_files(catalog: Catalog, rules_path_from_tests: dict[str, str]) -> dict[str, dict]:
    """Test file name → promtool test document, for every SLO with a fixture. ``rules_path_from_tests`` maps a
    rules file name to the path promtool should load, relative to the test file. Alerts on long windows go to
    ``slo-<name>.grid-<interval>.yml``, simulated at a coarser interval (``grid_factor``)."""
    profile = catalog.profile
    files = {}
    for slo in catalog.slos:
        if slo.fixture is None:
            continue
        if isinstance(slo.sli, EventsSLI):
            cases = [(max(a.windows), _Builder.events_alert, a) for a in burn_alerts(slo)]
        else:
            cases = [(slo.sli.window, _Builder.threshold_alert, a) for a in slo.alerts]
        builders: dict[int, _Builder] = {}
        for window, add_cases, alert in cases:
            factor = grid_factor(profile, window)
            if factor not in builders:
                builders[factor] = _Builder(profile, simulated_timing(profile, factor))
            add_cases(builders[factor], slo, alert)

        rules_name = rule_file_name(slo)
        for factor, built in sorted(builders.items()):
            grid = "" if factor == 1 else f".grid-{built.timing.evaluation_interval}"
            files[f"slo-{slo.name}{grid}.yml"] = {
                "rule_files": [rules_path_from_tests[rules_name]],
                "evaluation_interval": str(built.timing.evaluation_interval),
                "tests": built.groups,
            }
    return files
