"""Prometheus and Alertmanager configuration for one local stack, generated from its layout.

Generated rather than templated because every address depends on the base port; the alert rules themselves
are shared with the Kubernetes target and are read from deploy/monitoring/rules/.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from chaos_dr_stack.local.layout import DRILL_RULES_GLOB, LOOPBACK, PROCESSOR_REPLICAS, RULES_GLOB, StackLayout

NAMESPACE = "app"
"""The namespace label the Kubernetes target's series carry, so the same PromQL works on both targets."""

INTERVAL = "1s"
"""Scrape and rule evaluation interval. Drills last minutes and alert windows are seconds long, so the
default 1m would hide everything; 1s costs little with a handful of targets."""


def prometheus_config(
    layout: StackLayout, rules_glob: Path = RULES_GLOB, drill_rules_glob: Path | None = DRILL_RULES_GLOB,
    kafka_metrics: bool = True,
) -> dict:
    """Production rules and, unless ``drill_rules_glob`` is None, the drill copy: safe together, because the
    drill copy records under ``slo_drill:`` and its alerts carry ``profile="drill"`` (docs/slos.md).
    ``kafka_metrics``: scrape each Apache Kafka node's JMX exporter (job ``kafka``, label ``pod: kafka-N``)."""
    processor_targets = [
        {
            "targets": [f"{LOOPBACK}:{layout.processor_port(i)}"],
            "labels": {"pod": f"processor-{i}", "namespace": NAMESPACE},
        }
        for i in range(PROCESSOR_REPLICAS)
    ]
    return {
        "global": {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL, "scrape_timeout": INTERVAL},
        "rule_files": [str(rules_glob)] + ([str(drill_rules_glob)] if drill_rules_glob is not None else []),
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"{LOOPBACK}:{layout.alertmanager_port}"]}]}]
        },
        "scrape_configs": [
            {"job_name": "processor", "static_configs": processor_targets},
            {
                "job_name": "producers",
                "static_configs": [
                    {"targets": [f"{LOOPBACK}:{layout.producers_port}"], "labels": {"namespace": NAMESPACE}}
                ],
            },
            {
                "job_name": "loadgen",
                "static_configs": [
                    {"targets": [f"{LOOPBACK}:{layout.loadgen_port}"], "labels": {"namespace": NAMESPACE}}
                ],
            },
            *(
                {
                    "job_name": job,
                    "static_configs": [{"targets": [f"{LOOPBACK}:{port}"], "labels": {"namespace": NAMESPACE}}],
                }
                for job, port in (
                    ("provider-simulator", layout.provider_simulator_port),
                    ("ai-decision", layout.ai_decision_port),
                    ("market-data", layout.market_data_port),
                )
            ),
            {
                "job_name": "backup",
                "static_configs": [
                    {"targets": [f"{LOOPBACK}:{layout.backup_port}"], "labels": {"namespace": NAMESPACE}}
                ],
            },
            *(
                [{
                    "job_name": "kafka",
                    "static_configs": [
                        {"targets": [f"{LOOPBACK}:{layout.kafka_metrics_port(node)}"],
                         "labels": {"pod": f"kafka-{node}", "namespace": NAMESPACE}}
                        for node in layout.kafka_nodes
                    ],
                }] if kafka_metrics else []
            ),
            {
                # The runner speaks for the pods (kube-state-metrics' role): keep its pod/namespace labels.
                "job_name": "stack-runner",
                "honor_labels": True,
                "static_configs": [{"targets": [f"{LOOPBACK}:{layout.control_port}"]}],
            },
        ],
    }


def alertmanager_config(layout: StackLayout) -> dict:
    return {
        "route": {
            "receiver": "runner",
            "group_by": ["alertname"],
            # Drills measure how fast an alert reaches someone: send at once, repeat rarely.
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "runner",
                "webhook_configs": [
                    {"url": f"{layout.control_url}/alerts/webhook", "send_resolved": True}
                ],
            }
        ],
    }


def write_configs(layout: StackLayout, kafka_metrics: bool = True) -> None:
    config = prometheus_config(layout, kafka_metrics=kafka_metrics)
    layout.files.prometheus_config.write_text(yaml.safe_dump(config, sort_keys=False))
    layout.files.alertmanager_config.write_text(yaml.safe_dump(alertmanager_config(layout), sort_keys=False))


def fresh_stores(layout: StackLayout) -> list[Path]:
    """Delete Prometheus' TSDB and Alertmanager's store left by an earlier stack in the same state directory, and
    return what was deleted. Called by the runner before either starts, unless told to keep them (``--keep-metrics``).

    Why: the new stack's counters start at 0 under the same labels (``processor-0``'s restart counter), so queries
    over the old samples mix two stacks: ``increase()`` reads the drop as a counter reset and adds the earlier
    stacks' restarts to this one's. Alertmanager's notification log and silences likewise belong to the old stack.
    """
    deleted = []
    for path in (layout.files.prometheus_data, layout.files.alertmanager_data):
        if path.exists():
            shutil.rmtree(path)
            deleted.append(path)
    return deleted
