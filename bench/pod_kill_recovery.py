"""Recovery seconds over repeated processor kills, through the same action and probe the experiment uses.

    .venv/bin/python bench/pod_kill_recovery.py --kills 5 --signal SIGKILL

Starts its own local stack on free ports (three Kafka nodes unless ``--kafka-brokers``), kills one replica at a
time, waits for recovery, and prints the distribution. Figures go into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from chaoslib_ext.actions.pods import kill_processor_pods, wait_for_processor_replicas
from chaoslib_ext.controls import after_method_control, before_experiment_control, before_method_control
from probes.measure import distribution
from probes.processing import delivery_report
from probes.recovery import processor_recovery_seconds
from chaos_dr_stack.local.api import LocalStack
from stack_options import add_kafka_brokers, runner_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--signal", default="SIGKILL", choices=["SIGKILL", "SIGTERM"])
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of steady running between kills")
    add_kafka_brokers(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, LocalStack(state_dir=Path(tmp) / "stack", timeout=240,
                                                          runner_args=runner_args(args)) as stack:
        config = {"local_control_url": stack.endpoints["control"], "gameday_timeline": f"{tmp}/timeline.jsonl"}
        time.sleep(args.settle)
        seconds = []
        for trial in range(1, args.kills + 1):
            before_experiment_control({"title": f"trial {trial}"}, configuration=config)
            before_method_control(None, configuration=config)
            killed = kill_processor_pods(1, args.signal, configuration=config)["killed"][0]["name"]
            after_method_control(None, configuration=config)
            recovery = processor_recovery_seconds(timeout=60, configuration=config)
            seconds.append(recovery)
            print(f"trial {trial}: killed {killed} with {args.signal}, recovered in {recovery:.3f} s", flush=True)
            wait_for_processor_replicas(60, configuration=config)
            time.sleep(args.settle)
        report = delivery_report(since="start", settle_timeout=30, configuration=config)
        print(json.dumps({"signal": args.signal, "recovery_seconds": distribution(seconds), "samples": seconds,
                          "lost": report["lost"], "duplicated": report["duplicated"], "checked": report["checked"]},
                         indent=2))


if __name__ == "__main__":
    main()
