"""Processor throughput and end-to-end latency at a given producer rate, measured from the stored events.

    .venv/bin/python bench/throughput.py --rate 20 --seconds 30      # the default rate (2 producers)
    .venv/bin/python bench/throughput.py --rate 500 --seconds 30     # pushing it

Starts its own local stack on free ports, lets it warm up, then counts the events written to Mongo per second
over the window, and the p50/p95/p99 of written_at - produced_at.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from pymongo import MongoClient

from probes.measure import quantile
from chaos_dr_stack.local.api import LocalStack
from stack_options import add_kafka_brokers, runner_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second per producer")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    add_kafka_brokers(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, LocalStack(state_dir=Path(tmp) / "stack", rate=args.rate,
                                                          timeout=240, runner_args=runner_args(args)) as stack:
        client = MongoClient(stack.endpoints["mongo_uri"])
        events = client["ca3"]["events"]
        time.sleep(args.warmup)
        start = time.time()
        time.sleep(args.seconds)
        end = time.time()
        docs = list(events.find({"written_at": {"$gte": start, "$lt": end}},
                                projection={"written_at": 1, "produced_at": 1, "_id": 0}))
        lags = [d["written_at"] - d["produced_at"] for d in docs]
        client.close()
        print(json.dumps({
            "rate_per_producer": args.rate,
            "window_seconds": round(end - start, 2),
            "written": len(docs),
            "written_per_second": round(len(docs) / (end - start), 1),
            "end_to_end_seconds": {
                "p50": round(quantile(lags, 0.5), 4), "p95": round(quantile(lags, 0.95), 4),
                "p99": round(quantile(lags, 0.99), 4), "max": round(max(lags), 4),
            } if lags else None,
        }, indent=2))


if __name__ == "__main__":
    main()
