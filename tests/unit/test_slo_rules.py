"""Rule generation: the seed's thresholds reproduced exactly, the real starlette labels, the drill copy."""
import copy
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from chaoslib_ext.slo import drill_copy, load, parse
from chaoslib_ext.slo.durations import Duration
from chaoslib_ext.slo.model import Catalog
from chaoslib_ext.slo.output import Layout, render
from chaoslib_ext.slo.rules import burn_alerts, rule_files

MONITORING = Path(__file__).resolve().parents[2] / "deploy" / "monitoring"
SPEC = MONITORING / "slos.yaml"
D = Duration.parse


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load(SPEC)


def rules_of(catalog: Catalog, slo: str) -> dict[str, dict]:
    """Rules of one SLO's group, by record or alert name."""
    (group,) = rule_files(catalog)[f"slo-{slo}.yml"]["groups"]
    return {rule.get("alert") or rule["record"]: rule for rule in group["rules"]}


def test_seed_burn_rates_windows_and_severities_are_reproduced(catalog):
    alerts = burn_alerts(catalog.slo("processor-availability"))
    assert [(a.name, a.windows, a.burn_rate, a.threshold, a.for_, a.severity) for a in alerts] == [
        ("ProcessorAvailabilityBurnRateHigh", (D("5m"),), Decimal("14.4"), Decimal("0.072"), D("5m"), "critical"),
        ("ProcessorAvailabilityBurnRateHigh1h", (D("1h"),), Decimal("6"), Decimal("0.030"), D("15m"), "warning"),
        ("ProcessorAvailabilityBurnRate24h", (D("24h"),), Decimal("1"), Decimal("0.005"), D("1h"), "info"),
    ]


def test_the_seed_example_alert_is_generated_as_written(catalog):
    rules = rules_of(catalog, "processor-availability")
    # Seed: expr (1 - api_success_ratio) > (1 - 0.995) * 14.4, for: 5m, severity critical.
    assert rules["ProcessorAvailabilityBurnRateHigh"] == {
        "alert": "ProcessorAvailabilityBurnRateHigh",
        "expr": 'slo:sli_error:ratio_rate5m{slo="processor-availability"} > 0.072',
        "for": "5m",
        "labels": {"severity": "critical"},
        "annotations": {
            "summary": "Processor API SLO burn rate too high (5m window)",
            "description": "CA3 SLO-1: error ratio over 5m above 14.4x the error budget (0.005 for a 99.5% objective), "
                           "i.e. above 0.072.",
        },
    }
    assert rules["ProcessorAvailabilityBurnRateHigh1h"]["expr"] == \
        'slo:sli_error:ratio_rate1h{slo="processor-availability"} > 0.03'
    assert rules["ProcessorAvailabilityBurnRate24h"]["expr"] == \
        'slo:sli_error:ratio_rate24h{slo="processor-availability"} > 0.005'
    assert rules["slo:error_budget:ratio"]["expr"] == "vector(0.005)"


def test_availability_counts_real_starlette_series_without_metrics_scrapes(catalog):
    record = rules_of(catalog, "processor-availability")["slo:sli_error:ratio_rate5m"]
    assert record["expr"] == (
        '(sum(rate(starlette_requests_total{job="processor",path!="/metrics",status_code!~"2.."}[5m])) or vector(0))\n'
        "/\n"
        '(sum(rate(starlette_requests_total{job="processor",path!="/metrics"}[5m])))'
    )
    assert record["labels"] == {"slo": "processor-availability", "service": "processor"}
    generated = yaml.safe_dump(rule_files(catalog))
    assert "status=~" not in generated and "http_requests_total" not in generated


def test_slo3_and_slo4_rules(catalog):
    throughput = rules_of(catalog, "pipeline-throughput")
    assert "app_processed_messages_total[1h]" in throughput["slo:sli_error:ratio_rate1h"]["expr"]
    assert "app_produced_messages_total[1h]" in throughput["slo:sli_error:ratio_rate1h"]["expr"]
    assert throughput["PipelineThroughputBurnRateHigh"]["expr"] == \
        'slo:sli_error:ratio_rate5m{slo="pipeline-throughput"} > 0.144'
    restarts = rules_of(catalog, "processor-restarts")
    assert restarts["slo:sli_value:raw"]["expr"] == (
        "sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total"
        '{namespace="app",pod=~"processor-.*"}[24h]))')
    assert restarts["ProcessorRestartsHigh"]["expr"] == 'slo:sli_value:raw{slo="processor-restarts"} >= 3'
    assert "for" not in restarts["ProcessorRestartsHigh"]


def test_thresholds_are_exact_decimals(catalog):
    thresholds = [str(a.threshold.normalize()) for a in burn_alerts(catalog.slo("llm-fallback-success"))]
    assert thresholds == ["0.0144", "0.006", "0.001"]
    assert rules_of(catalog, "llm-fallback-success")["LlmFallbackBurnRateHigh"]["expr"].endswith("> 0.0144")


def test_latency_rules(catalog):
    rules = rules_of(catalog, "ai-decision-latency")
    assert rules["slo:sli_latency_seconds:p99_rate5m"]["expr"] == \
        'histogram_quantile(0.99, sum by (le) (rate(decision_latency_seconds_bucket{job="ai-decision"}[5m])))'
    assert rules["AiDecisionLatencyP95Critical"]["expr"] == 'slo:sli_latency_seconds:p95_rate5m{slo="ai-decision-latency"} > 8'
    assert rules["AiDecisionLatencyP95Critical"]["for"] == "5m"
    assert set(rules) >= {"slo:sli_latency_seconds:p50_rate5m", "slo:sli_latency_seconds:p95_rate5m"}


def test_multiwindow_mode_pairs_long_and_short_windows():
    document = yaml.safe_load(SPEC.read_text())
    document["alerting"]["mode"] = "multiwindow"
    catalog = parse(document)
    alerts = burn_alerts(catalog.slo("processor-availability"))
    assert [(a.name, a.windows, a.threshold.normalize(), a.for_, a.severity) for a in alerts] == [
        ("ProcessorAvailabilityBurnRateHigh", (D("1h"), D("5m")), Decimal("0.072"), D("0s"), "critical"),
        ("ProcessorAvailabilityBurnRateHigh6h", (D("6h"), D("30m")), Decimal("0.03"), D("0s"), "critical"),
        ("ProcessorAvailabilityBurnRate3d", (D("3d"), D("6h")), Decimal("0.005"), D("0s"), "warning"),
    ]
    rule = rules_of(catalog, "processor-availability")["ProcessorAvailabilityBurnRateHigh"]
    assert rule["expr"] == ('slo:sli_error:ratio_rate1h{slo="processor-availability"} > 0.072\nand\n'
                            'slo:sli_error:ratio_rate5m{slo="processor-availability"} > 0.072')
    assert "for" not in rule
    records = [r for r in rules_of(catalog, "processor-availability") if r.startswith("slo:sli_error")]
    assert records == [f"slo:sli_error:ratio_rate{w}" for w in ("5m", "30m", "1h", "6h", "3d")]


def test_one_slo_can_override_the_default_mode():
    document = yaml.safe_load(SPEC.read_text())
    document["slos"][2]["alerting"]["mode"] = "multiwindow"
    catalog = parse(document)
    assert catalog.slo("pipeline-throughput").burn_rate.mode == "multiwindow"
    assert catalog.slo("processor-availability").burn_rate.mode == "seed"


def test_drill_copy_divides_windows_and_for_by_the_time_scale(catalog):
    drill = drill_copy(catalog)
    assert drill.profile.name == "drill" and catalog.profile.name == "production"
    alerts = burn_alerts(drill.slo("processor-availability"))
    assert [(a.name, a.windows, a.for_, a.threshold) for a in alerts] == [
        ("ProcessorAvailabilityBurnRateHigh", (D("5s"),), D("5s"), Decimal("0.072")),
        ("ProcessorAvailabilityBurnRateHigh1h", (D("1m"),), D("15s"), Decimal("0.030")),
        ("ProcessorAvailabilityBurnRate24h", (D("24m"),), D("1m"), Decimal("0.005")),
    ]
    assert drill.slo("processor-restarts").sli.window == D("24m")
    assert drill.slo("processor-latency").sli.window == D("5s")
    assert drill.slo("processor-availability").period == D("12h")
    # for: 0 stays 0; the staleness thresholds are values in seconds, not windows: unchanged.
    stale = drill.slo("market-data-staleness").alerts
    assert [(a.for_, a.condition.value) for a in stale] == [(D("1s"), Decimal(5)), (D("0s"), Decimal(30))]


def test_drill_rules_are_a_labelled_copy_that_cannot_collide_with_production(catalog):
    rules = rules_of(drill_copy(catalog), "processor-availability")
    alert = rules["ProcessorAvailabilityBurnRateHigh"]
    assert alert["expr"] == 'slo_drill:sli_error:ratio_rate5s{slo="processor-availability"} > 0.072'
    assert alert["for"] == "5s"
    assert alert["labels"] == {"severity": "critical", "profile": "drill"}
    assert alert["annotations"]["summary"] == "Processor API SLO burn rate too high (5s window) [drill: time scale 60]"
    assert rules["slo_drill:sli_error:ratio_rate24m"]["labels"] == {
        "slo": "processor-availability", "service": "processor", "profile": "drill"}
    assert "[24m]" in rules["slo_drill:sli_error:ratio_rate24m"]["expr"]


def test_scaled_windows_never_go_below_the_floor():
    document = yaml.safe_load(SPEC.read_text())
    document["drill"].update(time_scale=600, min_duration="2s")
    drill = drill_copy(parse(document))
    assert [a.windows[0] for a in burn_alerts(drill.slo("processor-availability"))] == [D("2s"), D("6s"), D("2m24s")]
    assert drill.slo("market-data-staleness").alerts[1].for_ == D("0s")


@pytest.mark.parametrize("text, ms, shown", [
    ("5m", 300_000, "5m"), ("1h30m", 5_400_000, "1h30m"), ("24h", 86_400_000, "24h"), ("1d", 86_400_000, "24h"),
    ("3d", 259_200_000, "3d"), ("30d", 2_592_000_000, "30d"), ("90s", 90_000, "1m30s"), ("1500ms", 1500, "1s500ms"),
    ("1w", 604_800_000, "7d"), ("0s", 0, "0s"),
])
def test_durations_parse_and_print_like_prometheus(text, ms, shown):
    assert Duration.parse(text).ms == ms
    assert str(Duration.parse(text)) == shown
    assert Duration.parse(shown) == Duration.parse(text)


@pytest.mark.parametrize("bad", ["", "5", "5 m", "1m1h", "-5m", "5M", 300])
def test_durations_reject_what_prometheus_rejects(bad):
    with pytest.raises(ValueError, match="is not a Prometheus duration"):
        Duration.parse(bad)


def test_scaling_rounds_to_the_millisecond():
    assert D("1h").scaled(Decimal(60), D("1s")) == D("1m")
    assert D("7s").scaled(Decimal(60), D("1ms")) == Duration(117)
    assert D("0s").scaled(Decimal(60), D("1s")) == D("0s")


def test_generation_is_deterministic(catalog):
    layout = Layout(MONITORING / "rules", MONITORING / "rules-tests", "slos.yaml")
    first = render(catalog, layout)
    again = render(load(SPEC), layout)
    assert first == again
    reordered = copy.deepcopy(yaml.safe_load(SPEC.read_text()))
    assert render(parse(reordered), layout) == first
    text = first[MONITORING / "rules" / "slo-processor-availability.yml"]
    assert text.startswith("# Generated by `python -m chaoslib_ext.slo generate` from slos.yaml (gameday/v1).\n")
    assert "&id" not in text and "*id" not in text
