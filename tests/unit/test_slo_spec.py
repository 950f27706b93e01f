"""The SLO spec → model validation: every rule, asserted on the message a user reads."""
import copy
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from chaoslib_ext.slo import SpecError, load, parse
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import EventsSLI, LatencySLI, ThresholdSLI

SPEC = Path(__file__).resolve().parents[2] / "deploy" / "monitoring" / "slos.yaml"
COMMITTED = yaml.safe_load(SPEC.read_text())


@pytest.fixture
def doc():
    """A fresh copy of the committed spec document, to break one field at a time."""
    return copy.deepcopy(COMMITTED)


def errors_of(document) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse(document)
    return caught.value.errors


def test_the_committed_spec_loads_every_seed_slo():
    catalog = load(SPEC)
    assert [s.name for s in catalog.slos] == [
        "processor-availability", "processor-latency", "pipeline-throughput", "pipeline-end-to-end",
        "processor-restarts", "api-gateway-latency", "ai-decision-latency", "llm-fallback-success",
        "market-data-quote-latency", "market-data-staleness",
        "kafka-offline-partitions", "kafka-under-min-isr", "kafka-under-replicated-partitions",
    ]
    assert catalog.version == "gameday/v1"
    assert {s.name for s in catalog.served} == {
        "processor-availability", "processor-latency", "pipeline-throughput", "pipeline-end-to-end", "processor-restarts",
        "kafka-offline-partitions", "kafka-under-min-isr", "kafka-under-replicated-partitions"}
    assert catalog.services == ("processor", "api-gateway", "ai-decision", "market-data", "kafka")
    availability = catalog.slo("processor-availability")
    assert availability.objective == Decimal("99.5") and availability.error_budget == Decimal("0.005")
    assert isinstance(availability.sli, EventsSLI) and availability.period == Duration.parse("30d")
    assert isinstance(catalog.slo("processor-latency").sli, LatencySLI)
    assert isinstance(catalog.slo("processor-restarts").sli, ThresholdSLI)
    assert catalog.slo("llm-fallback-success").objective == Decimal("99.9")
    assert catalog.drill.time_scale == 60 and catalog.drill.scrape_interval == Duration.parse("1s")


def test_a_check_can_skip_slos_whose_service_is_not_deployed():
    catalog = load(SPEC)
    assert {s.service for s in catalog.for_services(["processor"])} == {"processor"}
    assert [s.name for s in catalog.for_services(["market-data"])] == ["market-data-quote-latency", "market-data-staleness"]
    assert catalog.for_services([]) == ()
    assert [s.name for s in catalog.for_services(["kafka"])] == [
        "kafka-offline-partitions", "kafka-under-min-isr", "kafka-under-replicated-partitions"]
    assert all(not s.served for s in catalog.slos if s.service not in ("processor", "kafka"))


@pytest.mark.parametrize("value, shown", [(100.5, "100.5"), (100, "100"), (0, "0"), (-1, "-1")])
def test_objective_must_be_within_0_and_100_exclusive(doc, value, shown):
    doc["slos"][2]["objective"] = value
    assert errors_of(doc) == [f"slos[2].objective: {shown} is not within (0, 100)"]


def test_objective_must_be_a_number_and_is_required_for_events(doc):
    doc["slos"][0]["objective"] = "99.5%"
    del doc["slos"][2]["objective"]
    assert errors_of(doc) == [
        "slos[0].objective: expected a number, got str '99.5%'",
        "slos[2].objective: missing (required for an events SLI)",
    ]


def test_names_are_unique(doc):
    doc["slos"][3]["name"] = "processor-availability"
    errors = errors_of(doc)
    assert "slos[3].name: 'processor-availability' is already used by slos[0]" in errors


def test_alert_names_are_unique_across_slos(doc):
    doc["slos"][2]["alerting"]["name_prefix"] = "ProcessorAvailability"
    doc["slos"][9]["alerts"][1]["name"] = "MarketDataStale"
    assert errors_of(doc) == [
        "slos[2].alerting.name_prefix: alert 'ProcessorAvailabilityBurnRateHigh' is already defined at "
        "slos[0].alerting.name_prefix",
        "slos[2].alerting.name_prefix: alert 'ProcessorAvailabilityBurnRateHigh1h' is already defined at "
        "slos[0].alerting.name_prefix",
        "slos[2].alerting.name_prefix: alert 'ProcessorAvailabilityBurnRate24h' is already defined at "
        "slos[0].alerting.name_prefix",
        "slos[9].alerts[1].name: alert 'MarketDataStale' is already defined at slos[9].alerts[0].name",
    ]


def test_unknown_fields_are_errors_naming_their_path(doc):
    doc["alertng"] = {"mode": "seed"}
    doc["slos"][0]["sli"]["events"]["eror_query"] = "x"
    doc["drill"]["timescale"] = 30
    errors = errors_of(doc)
    assert errors == [
        "alertng: unknown field (expected one of: version, alerting, production, drill, slos)",
        "drill.timescale: unknown field (expected one of: time_scale, min_duration, scrape_interval, "
        "evaluation_interval, group_wait, group_interval)",
        "slos[0].sli.events.eror_query: unknown field (expected one of: error_query, total_query)",
    ]


def test_fixture_labels_take_any_label_name(doc):
    doc["slos"][4]["test_fixture"]["labels"] = {"namespace": "app", "anything_goes": "x"}
    assert parse(doc).slo("processor-restarts").fixture.labels == (("anything_goes", "x"), ("namespace", "app"))


@pytest.mark.parametrize("path, value, expected", [
    (("slos", 4, "sli", "threshold", "window"), "24 hours",
     "slos[4].sli.threshold.window: '24 hours' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"),
    (("slos", 1, "alerts", 0, "for"), "15min",
     "slos[1].alerts[0].for: '15min' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"),
    (("slos", 0, "period"), "0d", "slos[0].period: must be longer than 0s"),
    (("drill", "min_duration"), "1", "drill.min_duration: '1' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"),
    (("production", "scrape_interval"), "5m30", "production.scrape_interval: '5m30' is not a Prometheus duration "
                                                "(e.g. 30s, 5m, 1h30m)"),
])
def test_windows_are_prometheus_durations(doc, path, value, expected):
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert errors_of(doc) == [expected]


def test_version_is_checked(doc):
    doc["version"] = "sloth/v1"
    assert errors_of(doc) == ["version: 'sloth/v1' is not supported (expected 'gameday/v1')"]


def test_queries_need_the_window_placeholder_and_nothing_else(doc):
    doc["slos"][0]["sli"]["events"]["total_query"] = "sum(rate(starlette_requests_total[5m]))"
    doc["slos"][2]["sli"]["events"]["error_query"] = "sum(rate(x[{{.Window}}]))"
    doc["slos"][9]["sli"]["threshold"]["query"] = "max(x[{{.window}}])"
    assert errors_of(doc) == [
        "slos[0].sli.events.total_query: missing the {{.window}} placeholder for the range, e.g. rate(x[{{.window}}])",
        "slos[2].sli.events.error_query: unknown placeholder {{.Window}} (only {{.window}} is substituted)",
        "slos[9].sli.threshold.query: has {{.window}} but no window is set",
    ]


def test_sli_kind_and_alerting_shape(doc):
    doc["slos"][0]["sli"]["latency"] = {"bucket_query": "x_bucket", "targets": [{"quantile": 0.5, "max_seconds": 1}]}
    doc["slos"][4]["alerting"] = {"name_prefix": "X"}
    doc["slos"][1]["alerts"][0]["quantile"] = 0.99
    doc["slos"][1]["alerts"][0]["severity"] = "page"
    doc["alerting"]["mode"] = "fast"
    assert errors_of(doc) == [
        "alerting.mode: 'fast' is not one of: seed, multiwindow",
        "slos[0].sli: needs exactly one of events, latency, threshold (got events, latency)",
        "slos[1].alerts[0].severity: 'page' is not one of: critical, warning, info",
        "slos[1].alerts[0].quantile: 0.99 has no target in sli.latency.targets (known: 0.95)",
        "slos[4].alerting: burn-rate alerting needs an events SLI; use `alerts` here",
    ]


def test_latency_targets_are_checked(doc):
    targets = doc["slos"][6]["sli"]["latency"]["targets"]
    targets[0]["quantile"] = 1.5
    targets[2]["quantile"] = 0.95
    doc["slos"][6]["sli"]["latency"]["bucket_query"] = "decision_latency_seconds{job=\"ai-decision\"}"
    assert errors_of(doc) == [
        "slos[6].sli.latency.bucket_query: 'decision_latency_seconds{job=\"ai-decision\"}' must select a histogram's "
        "_bucket series, e.g. x_seconds_bucket{job=\"y\"}",
        "slos[6].sli.latency.targets[0].quantile: 1.5 is not within (0, 1)",
        "slos[6].sli.latency.targets[2].quantile: 0.95 has a target already",
    ]


def test_fixtures_are_checked(doc):
    doc["slos"][0]["test_fixture"]["total"] = "x_total"
    doc["slos"][4]["test_fixture"]["gauge"] = "y"
    doc["slos"][1]["test_fixture"] = {"good": "x_bucket"}
    assert errors_of(doc) == [
        "slos[0].test_fixture: an events fixture needs `good` and exactly one of `bad` or `total`",
        "slos[1].test_fixture.good: not a role of a latency SLI fixture (roles: none)",
        "slos[1].test_fixture: promtool tests are not generated for latency SLIs; write them by hand",
        "slos[4].test_fixture: a threshold fixture needs exactly one of `counter` or `gauge`",
    ]


def test_every_problem_is_reported_at_once(doc):
    doc["slos"][0]["objective"] = 100.5
    doc["slos"][2]["name"] = "Pipeline Throughput"
    doc["drill"]["time_scale"] = 0.5
    errors = errors_of(doc)
    assert errors == [
        "drill.time_scale: 0.5 must be at least 1 (a drill compresses time)",
        "slos[0].objective: 100.5 is not within (0, 100)",
        "slos[2].name: 'Pipeline Throughput' is not valid (lowercase letters, digits and dashes)",
    ]
    assert str(SpecError(errors)) == "\n".join(errors)


def test_not_a_mapping_and_empty_slos():
    assert errors_of(["slos"]) == ["<spec>: expected a mapping, got list ['slos']",
                                   "version: missing (required)", "slos: missing (required)"]
    assert errors_of({"version": "gameday/v1", "slos": []}) == ["slos: must not be empty"]


def test_unreadable_and_unparsable_files(tmp_path):
    with pytest.raises(SpecError, match=r"<spec>: cannot read .*missing.yaml"):
        load(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("slos: [\n")
    with pytest.raises(SpecError, match="<spec>: not valid YAML"):
        load(bad)
