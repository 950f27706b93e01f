"""Failover distributions for crash (SIGKILL) and graceful (SIGTERM) kills under given processor settings.

    .venv/bin/python bench/failover.py --trials 5 --processor-args "--session-timeout-ms 45000 --heartbeat-interval-ms 3000"

Starts its own local stack (rate 20/s per producer) with the processor flags in STACK_PROCESSOR_ARGS, runs
``probes.failover.failover_trials`` for each signal, and prints one JSON line per signal plus a summary line.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from probes.failover import failover_trials  # noqa: E402
from probes.processing import delivery_report  # noqa: E402
from stack.local.api import LocalStack  # noqa: E402
from stack.local.components import PROCESSOR_ARGS_ENV  # noqa: E402
from tests.e2e.test_processor_pod_kill import wait_until_warm  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--signals", default="SIGKILL,SIGTERM")
    parser.add_argument("--processor-args", default="")
    parser.add_argument("--settle-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=20)
    args = parser.parse_args()
    os.environ[PROCESSOR_ARGS_ENV] = args.processor_args
    with tempfile.TemporaryDirectory(prefix="bench-failover-") as tmp, LocalStack(rate=args.rate) as stack:
        config = {"local_control_url": stack.endpoints["control"], "gameday_timeline": str(Path(tmp) / "t.jsonl")}
        wait_until_warm(stack.endpoints["control"], timeout=90)
        for signal in args.signals.split(","):
            result = failover_trials(args.trials, signal, settle_seconds=args.settle_seconds, timeout=120,
                                     configuration=config)
            print(json.dumps({"processor_args": args.processor_args, "signal": signal,
                              "seconds": [t["seconds"] for t in result["trials"]],
                              "owned": [t["owned_partitions"] for t in result["trials"]],
                              **{k: result[k] for k in ("n", "p50", "p95", "max")}}), flush=True)
        report = delivery_report(since="start", settle_timeout=30, configuration=config)
        print(json.dumps({"lost": report["lost"], "duplicated": report["duplicated"], "checked": report["checked"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
