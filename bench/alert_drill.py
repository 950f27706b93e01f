"""Drill every availability burn-rate alert with one total outage, and compare with the predicted times.

    .venv/bin/python bench/alert_drill.py --warmup 60

Starts its own local stack, injects 100 % 503s into the processor API, measures when each drill-profile alert
fires (Prometheus, Alertmanager, webhook), heals, and measures when each resolves. The 24h alert's drill window is
24 minutes: its "resolved" needs far longer than a drill, so only its firing is measured. The warm-up gives the
windows good history; with less history than a window, alerts fire earlier than predicted.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from chaoslib_ext.actions.api_faults import heal_api_errors, inject_api_errors
from chaoslib_ext.controls import after_method_control, before_experiment_control, before_method_control
from probes.alerts import alert_fire_seconds, alert_resolve_seconds
from chaos_dr_stack.local.api import LocalStack

ALERTS = ("ProcessorAvailabilityBurnRateHigh", "ProcessorAvailabilityBurnRateHigh1h", "ProcessorAvailabilityBurnRate24h")
RESOLVABLE_IN_A_DRILL = ALERTS[:2]
KEYS = ("fired_in_prometheus_s", "reached_alertmanager_s", "resolved_in_prometheus_s", "webhook_s",
        "predicted_lower_s", "predicted_upper_s", "within_prediction")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--warmup", type=float, default=60.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, LocalStack(state_dir=Path(tmp) / "stack") as stack:
        config = {"local_control_url": stack.endpoints["control"], "gameday_timeline": f"{tmp}/timeline.jsonl"}
        time.sleep(args.warmup)
        before_experiment_control({"title": "alert drill"}, configuration=config)
        before_method_control(None, configuration=config)
        inject_api_errors(ratio=1.0, status=503, ttl_seconds=180, configuration=config)
        results = {}
        for name in ALERTS:
            fired = alert_fire_seconds(name, "drill", timeout=150, configuration=config)
            results[name] = {"fire": {k: fired.get(k) for k in KEYS if k in fired}}
            print(name, "fire", json.dumps(results[name]["fire"]), flush=True)
        heal_api_errors(configuration=config)
        for name in RESOLVABLE_IN_A_DRILL:
            resolved = alert_resolve_seconds(name, "drill", timeout=150, configuration=config)
            results[name]["resolve"] = {k: resolved.get(k) for k in KEYS if k in resolved}
            print(name, "resolve", json.dumps(results[name]["resolve"]), flush=True)
        after_method_control(None, configuration=config)
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
