"""Kafka broker crashes or isolations, repeated on one stack, through the actions and probes the
kafka-broker-crash and kafka-broker-isolated experiments use.

    .venv/bin/python bench/broker_faults.py --fault crash --trials 10
    .venv/bin/python bench/broker_faults.py --fault isolate --trials 6
    .venv/bin/python bench/broker_faults.py --fault isolate --trials 6 --cpu-hogs 2     # on a loaded machine

Starts its own local stack (three Kafka nodes), and for each trial: SIGKILL (or isolate for ``--isolate-seconds``)
the broker leading the most partitions, measure each active ``gpu-events`` partition's write gap (its last append
before the fault to its first after it) and the seconds until nothing is under-replicated, then wait for every
node to be ready and ``--settle`` seconds more. ``--cpu-hogs N`` runs N busy loops beside the stack for the whole
run, to measure the faults on a machine with no idle core. At the end, every acknowledged event is checked.
Prints one JSON line per trial and a summary. Figures go into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chaoslib_ext.actions.kafka import isolate_kafka_broker, kill_kafka_broker, wait_for_kafka_brokers
from chaoslib_ext.controls import after_method_control, before_experiment_control, before_method_control
from probes.kafka import partition_write_unavailability, replicas_back_in_sync
from probes.measure import distribution
from probes.processing import delivery_report
from chaos_dr_stack.local.api import LocalStack
from stack_options import add_kafka_brokers, runner_args

BUDGET_SECONDS = 10.0
"""The event bus's budget for a partition that cannot be written (kafka-broker-crash.yaml's tolerance)."""


def one_trial(number: int, args: argparse.Namespace, config: dict) -> dict:
    before_experiment_control({"title": f"{args.fault} trial {number}"}, configuration=config)
    before_method_control(None, configuration=config)
    if args.fault == "crash":
        fault = kill_kafka_broker("busiest-leader", "SIGKILL", configuration=config)
        broker = fault["name"]
    else:
        fault = isolate_kafka_broker("busiest-leader", args.isolate_seconds, "hold", configuration=config)
        broker = fault["isolate"]
    after_method_control(None, configuration=config)
    gaps = partition_write_unavailability("gpu-events", timeout=120, configuration=config)
    in_sync = replicas_back_in_sync(timeout=150, configuration=config)
    wait_for_kafka_brokers(180, configuration=config)
    was_controller = broker in (fault.get("active_controllers") or [])
    return {"trial": number, "fault": args.fault, "broker": broker, "was_active_controller": was_controller,
            "led_partitions": fault["led_partitions"], "gaps": gaps["partitions"], "max_gap": gaps["max"],
            "producer_errors": gaps.get("producer_errors"), "in_sync_after_s": in_sync.get("seconds")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fault", choices=["crash", "isolate"], default="crash")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--isolate-seconds", type=float, default=30.0, help="how long each isolation lasts")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds of steady running between trials")
    parser.add_argument("--cpu-hogs", type=int, default=0, metavar="N", help="busy loops to run beside the stack")
    add_kafka_brokers(parser)
    args = parser.parse_args()
    if args.trials < 1 or args.cpu_hogs < 0 or args.kafka_brokers < 2:
        parser.error("--trials must be at least 1, --cpu-hogs at least 0, and a broker fault needs "
                     "--kafka-brokers 2 or more")
    hogs: list[subprocess.Popen] = []
    with tempfile.TemporaryDirectory(prefix="bench-broker-") as tmp, \
            LocalStack(state_dir=Path(tmp) / "stack", timeout=240, runner_args=runner_args(args)) as stack:
        config = {"local_control_url": stack.endpoints["control"], "gameday_timeline": f"{tmp}/timeline.jsonl"}
        try:
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.cpu_hogs)]
            time.sleep(args.settle)
            trials = []
            for number in range(1, args.trials + 1):
                trials.append(one_trial(number, args, config))
                print(json.dumps(trials[-1]), flush=True)
                time.sleep(args.settle)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
        report = delivery_report(since="start", settle_timeout=60, configuration=config)
    gaps = [g for t in trials for g in t["gaps"].values()]
    print(json.dumps({"fault": args.fault, "cpu_hogs": args.cpu_hogs, "trials": len(trials),
                      "partition_gap_seconds": distribution(gaps),
                      "trials_over_budget": sum(t["max_gap"] > BUDGET_SECONDS for t in trials),
                      "in_sync_after_seconds": distribution(t["in_sync_after_s"] for t in trials
                                                            if t["in_sync_after_s"] is not None),
                      "producer_errors": sum(t["producer_errors"] or 0 for t in trials),
                      "lost": report["lost"], "duplicated": report["duplicated"], "checked": report["checked"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
