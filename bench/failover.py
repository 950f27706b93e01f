"""Failover distributions for crash (SIGKILL) and graceful (SIGTERM) kills under given processor settings.

    .venv/bin/python bench/failover.py --trials 5 --processor-args "--session-timeout-ms 45000 --heartbeat-interval-ms 3000"

Starts its own local stack (rate 20/s per producer, three Kafka nodes unless ``--kafka-brokers``) with the
processor flags in STACK_PROCESSOR_ARGS, then does what experiments/processor-failover.yaml does: for each
signal, ``chaoslib_ext.actions.kill_trials`` kills the busiest replica ``--trials`` times on a settled group, and
``probes.failover.failover_distribution`` computes each trial's failover from the stored write times. Prints one
JSON line per signal plus a delivery line.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaoslib_ext.actions.kill_trials import kill_processor_pods_in_trials  # noqa: E402
from probes.failover import failover_distribution  # noqa: E402
from probes.processing import delivery_report  # noqa: E402
from chaos_dr_stack.local.api import LocalStack  # noqa: E402
from chaos_dr_stack.local.components import PROCESSOR_ARGS_ENV  # noqa: E402
from stack_options import add_kafka_brokers, runner_args  # noqa: E402
from tests.e2e.test_processor_pod_kill import wait_until_warm  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--signals", default="SIGKILL,SIGTERM")
    parser.add_argument("--processor-args", default="", help="flags for every processor replica (STACK_PROCESSOR_ARGS)")
    parser.add_argument("--settle-seconds", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=20, help="events per second per producer")
    parser.add_argument("--keep-logs", help="copy the stack's logs here at the end")
    add_kafka_brokers(parser)
    args = parser.parse_args()
    os.environ[PROCESSOR_ARGS_ENV] = args.processor_args
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp:
        state = Path(tmp) / "stack"
        with LocalStack(state_dir=state, rate=args.rate, timeout=240,
                        runner_args=runner_args(args)) as stack:
            config = {"local_control_url": stack.endpoints["control"], "gameday_timeline": str(Path(tmp) / "t.jsonl")}
            wait_until_warm(stack.endpoints["control"], timeout=180)
            started = time.time()
            try:
                for signal in args.signals.split(","):
                    try:
                        kill_processor_pods_in_trials(args.trials, signal, settle_seconds=args.settle_seconds,
                                                      settle_timeout=180, configuration=config)
                    finally:  # the trials that did run are measured even when a later one failed
                        result = failover_distribution(signal, timeout=120, configuration=config)
                        print(json.dumps({"processor_args": args.processor_args, "signal": signal,
                                          "seconds": result["seconds"],
                                          **{k: result[k] for k in ("n", "p50", "p95", "max", "consumer_settings")}}),
                              flush=True)
                report = delivery_report(since=started - 1, settle_timeout=30, configuration=config)
                print(json.dumps({"lost": report["lost"], "duplicated": report["duplicated"],
                                  "checked": report["checked"]}))
            finally:
                if args.keep_logs:
                    shutil.copytree(state / "logs", args.keep_logs, dirs_exist_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
