"""The SLO probes against the real session stack: real metrics, real Prometheus, the spec's own queries."""
from __future__ import annotations

import time
import warnings
from pathlib import Path

import pytest

from chaoslib_ext.slo.spec import DEFAULT_SPEC_PATH as DEFAULT_SPEC
from probes.slo import (
    availability_ratio,
    error_budget_remaining,
    latency_p95_seconds,
    processed_to_produced_ratio,
    sli_queries_have_data,
)

pytestmark = pytest.mark.integration

WARM_WINDOW = "1m"
"""The seed states SLO-3's proxy per minute; shorter windows dip below 0.99 on batching and scrape phase alone."""


@pytest.fixture(scope="module")
def config(local_stack):
    config = {"local_control_url": local_stack.endpoints["control"]}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # Prometheus scrapes every second, and the first consumer-group join holds processing back for a few
        # seconds: wait until the series exist and WARM_WINDOW no longer covers the start.
        warm = processed_to_produced_ratio(window=WARM_WINDOW, configuration=config)["verdict"] == "PASS"
        if warm and sli_queries_have_data(configuration=config)["verdict"] == "PASS":
            break
        time.sleep(1)
    return config


def test_every_served_sli_selects_real_series(config):
    result = sli_queries_have_data(configuration=config)
    assert result["missing"] == []
    assert result["verdict"] == "PASS"
    assert set(result["slos"]) == {
        "processor-availability", "processor-latency", "pipeline-throughput", "pipeline-end-to-end",
        "processor-restarts",
    }
    # Distinct selectors across the five SLOs: requests (with and without status_code), request durations,
    # processed, produced, end-to-end count and bucket, restarts.
    assert result["checked"] == 8


def test_the_seeds_status_label_is_caught(config, tmp_path: Path):
    """Planted: the seed's own SLO-1 query matches on `status`, which starlette_exporter never writes."""
    planted = tmp_path / "slos.yaml"
    planted.write_text(DEFAULT_SPEC.read_text().replace('status_code!~"2.."', 'status=~"2.."', 1))
    result = sli_queries_have_data(configuration={**config, "slo_spec": str(planted)})
    assert result["verdict"] == "FAIL"
    assert result["missing"] == [{
        "slo": "processor-availability",
        "query": 'count(starlette_requests_total{job="processor", path!="", status!=""})',
    }]


def test_availability_latency_and_throughput_hold_in_steady_state(config):
    availability = availability_ratio(window=WARM_WINDOW, configuration=config)
    assert availability["verdict"] == "PASS", availability
    assert 0.995 <= availability["value"] <= 1.0

    latency = latency_p95_seconds(window=WARM_WINDOW, configuration=config)
    assert latency["verdict"] == "PASS", latency
    assert 0 < latency["value"] <= 0.2

    throughput = processed_to_produced_ratio(window=WARM_WINDOW, configuration=config)
    assert throughput["query"].startswith("sum(rate(app_processed_messages_total[1m]))")
    if throughput["verdict"] != "PASS":
        # One stalled second in the minute is 1.7 % of it: seen once in CI (0.980) while the other worker's game
        # day held both cores. A steady state that is really lost stays lost over the next, disjoint minute.
        warnings.warn(f"throughput below its objective over one minute, measured again a minute later: {throughput}")
        time.sleep(61)
        throughput = processed_to_produced_ratio(window=WARM_WINDOW, configuration=config)
    assert throughput["verdict"] == "PASS", throughput
    assert 0.99 <= throughput["value"] <= 1.5


def test_error_budget_and_no_data(config):
    budget = error_budget_remaining(window="10m", configuration=config)
    assert budget["verdict"] == "PASS" and budget["band"] == "normal", budget
    assert 50 < budget["remaining_pct"] <= 100

    # The LLM services do not run in this stack: no samples is NO_DATA, never a pass.
    unserved = error_budget_remaining(slo="llm-fallback-success", window="10m", configuration=config)
    assert unserved["verdict"] == "NO_DATA"
    assert unserved["remaining_pct"] is None


def test_gameday_slo_check_passes_on_the_running_stack(config, capsys):
    from chaoslib_ext.cli import main

    assert main(["slo", "check", "--control-url", config["local_control_url"]]) == 0
    assert capsys.readouterr().out.startswith("PASS: 8 selectors of 5 SLOs")


def test_the_kafka_slos_select_the_brokers_own_gauges(config, capsys):
    from chaoslib_ext.cli import main

    # Each KRaft node's JMX exporter is scraped as job "kafka": the platform SLOs' alerts can fire.
    assert main(["slo", "check", "--control-url", config["local_control_url"], "--services", "kafka"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("PASS: 3 selectors of 3 SLOs (kafka-offline-partitions, kafka-under-min-isr, "
                          "kafka-under-replicated-partitions)"), out
