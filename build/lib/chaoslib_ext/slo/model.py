"""The validated SLO model: what the rule generator, the predictor and the checks work on.

Users write the versioned spec (``deploy/monitoring/slos.yaml``); ``chaoslib_ext.slo.spec`` turns it into these
frozen objects or fails naming the field. Nothing here reads files, so every object can be built in a test.
Numbers that end up in PromQL are ``Decimal`` so that ``(1 - 0.995) * 14.4`` is printed as ``0.072``, not
``0.07200000000000007``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Iterable, Union

from chaoslib_ext.slo.durations import Duration

WINDOW_PLACEHOLDER = "{{.window}}"
"""Where a query takes its range. Spelled like sloth's, so sloth specs port by copy and paste."""

SEVERITIES = ("critical", "warning", "info")
"""The AI Active Trader escalation matrix: critical pages (< 5 min), warning goes to Slack (< 30 min), info is
next business day."""

OPERATORS = (">", ">=", "<", "<=")


def fmt_number(value: Decimal) -> str:
    """Shortest plain decimal text: ``Decimal('0.0720')`` → ``0.072``, ``Decimal('3')`` → ``3``."""
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Condition:
    """A comparison of a value with a constant, as PromQL writes it."""

    op: str
    """One of ``OPERATORS``."""
    value: Decimal
    """The constant, in the unit of the compared series (seconds, restarts, ...)."""

    def promql(self) -> str:
        return f"{self.op} {fmt_number(self.value)}"

    def holds(self, observed: float) -> bool:
        value = float(self.value)
        return {
            ">": observed > value,
            ">=": observed >= value,
            "<": observed < value,
            "<=": observed <= value,
        }[self.op]


@dataclass(frozen=True)
class BurnWindow:
    """One burn-rate alert of an alerting policy."""

    suffix: str
    """Appended to the SLO's alert name prefix to name the alert."""
    long: Duration
    """The window whose error ratio is compared with the threshold."""
    short: Duration | None
    """Multiwindow only: a second, shorter window that must also exceed the threshold, so the alert resolves
    soon after the errors stop instead of when the long window forgets them."""
    burn_rate: Decimal
    """Multiple of the error budget: 1 spends exactly the budget over the SLO period."""
    for_: Duration
    """How long the condition must hold before the alert fires."""
    severity: str
    """One of ``SEVERITIES``."""

    @property
    def windows(self) -> tuple[Duration, ...]:
        return (self.long,) if self.short is None else (self.long, self.short)

    def threshold(self, error_budget: Decimal) -> Decimal:
        return self.burn_rate * error_budget


_m = Duration.parse

SEED_POLICY = (
    # The seed's example alert: ProcessorAvailabilityBurnRateHigh, 5m window, 14.4x, for 5m, critical.
    BurnWindow("BurnRateHigh", _m("5m"), None, Decimal("14.4"), _m("5m"), "critical"),
    # "Sustained degradation": someone should look within the warning response time (30 min), so 15 min of
    # confirmation costs little and filters a single slow spike.
    BurnWindow("BurnRateHigh1h", _m("1h"), None, Decimal("6"), _m("15m"), "warning"),
    # "Near violation of the monthly target": 1x is on course to spend exactly the budget (the trader seed calls
    # 1x "normal"), so it is information for the next business day, confirmed for an hour.
    BurnWindow("BurnRate24h", _m("24h"), None, Decimal("1"), _m("1h"), "info"),
)
"""CA3 seed, section 4: 5m at 14.4x, 1h at 6x, 24h at 1x."""

MULTIWINDOW_POLICY = (
    # SRE Workbook, "Alerting on SLOs", recommended multiwindow parameters: two pages and a ticket, each with a
    # short window at 1/12 of the long one.
    # No `for:`: the short window already proves the burn is still going on.
    BurnWindow("BurnRateHigh", _m("1h"), _m("5m"), Decimal("14.4"), _m("0s"), "critical"),
    BurnWindow("BurnRateHigh6h", _m("6h"), _m("30m"), Decimal("6"), _m("0s"), "critical"),
    BurnWindow("BurnRate3d", _m("3d"), _m("6h"), Decimal("1"), _m("0s"), "warning"),
)
"""SRE Workbook multiwindow, multi-burn-rate alerts (1h&5m 14.4x, 6h&30m 6x, 3d&6h 1x)."""

POLICIES = {"seed": SEED_POLICY, "multiwindow": MULTIWINDOW_POLICY}


@dataclass(frozen=True)
class EventsSLI:
    """Bad events over all events, both counted by counters (sloth's ``events`` SLI)."""

    error_query: str
    """PromQL for the rate of bad events, with ``{{.window}}`` where the range goes."""
    total_query: str
    """PromQL for the rate of all events, with ``{{.window}}``."""

    def error_ratio_query(self, window: Duration) -> str:
        errors = self.error_query.replace(WINDOW_PLACEHOLDER, str(window))
        total = self.total_query.replace(WINDOW_PLACEHOLDER, str(window))
        return f"({errors})\n/\n({total})"


@dataclass(frozen=True)
class LatencyTarget:
    """One quantile objective: the ``quantile`` of request latency stays at or below ``max_seconds``."""

    quantile: Decimal
    """In (0, 1), e.g. 0.95."""
    max_seconds: Decimal

    @property
    def label(self) -> str:
        """``p95`` for 0.95, ``p99_9`` for 0.999: usable inside a metric name."""
        return "p" + fmt_number(self.quantile * 100).replace(".", "_")


@dataclass(frozen=True)
class LatencySLI:
    """Quantiles of a Prometheus histogram, compared with fixed targets."""

    bucket_query: str
    """Selector of the ``_bucket`` series, e.g. ``starlette_request_duration_seconds_bucket{job="processor"}``."""
    window: Duration
    """Rate window the quantile is computed over."""
    targets: tuple[LatencyTarget, ...]

    def quantile_query(self, quantile: Decimal, window: Duration | None = None) -> str:
        selector = f"{self.bucket_query}[{window or self.window}]"
        return f"histogram_quantile({fmt_number(quantile)}, sum by (le) (rate({selector})))"

    def target(self, quantile: Decimal) -> LatencyTarget | None:
        return next((t for t in self.targets if t.quantile == quantile), None)


@dataclass(frozen=True)
class ThresholdSLI:
    """A value (a gauge, or an increase over a window) that must satisfy ``target``."""

    query: str
    """PromQL for the value; contains ``{{.window}}`` exactly when ``window`` is set."""
    window: Duration | None
    """Range substituted into the query, e.g. 24h for restarts a day. Scaled in the drill profile."""
    target: Condition
    """The SLO itself, e.g. ``< 3`` restarts a day."""
    measure: str = "value"
    """What the value is, for alert texts: e.g. ``restarts per pod``."""

    def value_query(self) -> str:
        return self.query if self.window is None else self.query.replace(WINDOW_PLACEHOLDER, str(self.window))


SLI = Union[EventsSLI, LatencySLI, ThresholdSLI]


@dataclass(frozen=True)
class BurnRateAlerting:
    """How an events SLO alerts: one alert per window of ``policy``."""

    name_prefix: str
    """Alert names are ``name_prefix + BurnWindow.suffix``, e.g. ``ProcessorAvailabilityBurnRateHigh``."""
    mode: str
    """``seed`` or ``multiwindow``: the key of ``policy`` in ``POLICIES``."""
    policy: tuple[BurnWindow, ...]


@dataclass(frozen=True)
class ThresholdAlert:
    """An alert on a latency quantile or a threshold value."""

    name: str
    severity: str
    condition: Condition
    for_: Duration
    quantile: Decimal | None = None
    """Latency SLIs only: which target's quantile the condition reads."""
    summary: str = ""


@dataclass(frozen=True)
class Fixture:
    """Series the generated promtool tests write to drive the SLO's alerts. Not part of the SLO itself."""

    good: str | None = None
    """Events SLI: counter of good events (e.g. status_code 200, or messages processed)."""
    bad: str | None = None
    """Events SLI: counter of bad events. It appears only with the first bad event, as client libraries do."""
    total: str | None = None
    """Events SLI: counter of all events, when the SLI counts total and good separately (produced/processed)."""
    counter: str | None = None
    """Threshold SLI: a counter that increases once per event (e.g. a restart)."""
    gauge: str | None = None
    """Threshold SLI: a gauge set to the value under test."""
    labels: tuple[tuple[str, str], ...] = ()
    """Labels of the fixture series that the SLI query keeps (its ``by (...)``): they appear on the alert."""
    ignored: tuple[str, ...] = ()
    """Series the SLI must not count; the tests make them loud (10x the rate, or far above the threshold)."""
    rate: Decimal = Decimal(10)
    """Events per second in the synthetic traffic."""


@dataclass(frozen=True)
class SLO:
    """One service level objective."""

    name: str
    """Unique, lowercase with dashes; the ``slo`` label of every generated series."""
    title: str
    """Human name used in alert summaries, e.g. ``Processor API``."""
    service: str
    """The deployable that must run for the SLI to have data; checks skip SLOs whose service is not deployed."""
    served: bool
    """Whether the local stack exports this SLI's metrics today. False means the metric names are the names the
    service is expected to export when it lands."""
    sli: SLI
    objective: Decimal | None
    """Percent in (0, 100). For events SLIs the share of good events; for latency, the share of good periods."""
    period: Duration
    """Compliance period the objective is stated over (30d)."""
    ref: str = ""
    """Where the SLO comes from, e.g. ``CA3 SLO-1``."""
    description: str = ""
    burn_rate: BurnRateAlerting | None = None
    """Events SLIs only."""
    alerts: tuple[ThresholdAlert, ...] = ()
    """Latency and threshold SLIs only."""
    fixture: Fixture | None = None

    @property
    def error_budget(self) -> Decimal | None:
        """Allowed share of bad events: 1 - objective/100 (0.005 for 99.5%)."""
        return None if self.objective is None else 1 - self.objective / 100


@dataclass(frozen=True)
class Profile:
    """Timings of one deployment of the rules, and how the rules are scaled for it."""

    name: str
    """``production`` (rules as specified) or ``drill`` (scaled copy)."""
    scrape_interval: Duration
    evaluation_interval: Duration
    group_wait: Duration
    """Alertmanager's wait before the first notification of a new group."""
    group_interval: Duration
    """Alertmanager's wait before notifying changes (such as "resolved") of an existing group."""
    time_scale: Decimal = Decimal(1)
    """Every window and ``for:`` is divided by this. 60 turns a minute into a second."""
    min_duration: Duration = field(default_factory=lambda: Duration.parse("1s"))
    """Floor for scaled windows and ``for:``; a rate window needs at least two scrapes to have a value."""


@dataclass(frozen=True)
class Catalog:
    """Every SLO of a spec, plus the profile the rules are generated for."""

    version: str
    slos: tuple[SLO, ...]
    profile: Profile
    """The profile these SLOs are in: ``production`` as loaded, ``drill`` after ``rules.drill_copy``."""
    production: Profile
    drill: Profile

    def slo(self, name: str) -> SLO:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(f"no SLO named {name!r}; known: {', '.join(s.name for s in self.slos)}")

    def for_services(self, deployed: Iterable[str]) -> tuple[SLO, ...]:
        """The SLOs a check can judge when only ``deployed`` services run."""
        deployed = set(deployed)
        return tuple(slo for slo in self.slos if slo.service in deployed)

    @property
    def served(self) -> tuple[SLO, ...]:
        """The SLOs whose metrics the local stack exports today."""
        return tuple(slo for slo in self.slos if slo.served)

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(slo.service for slo in self.slos))
