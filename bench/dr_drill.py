"""RTO, RPO (with and without the Kafka replay), backup size and backup time, at the default rates.

    .venv/bin/python bench/dr_drill.py --scope database --warmup 75

Starts its own local stack (producers at 20 events/s each, snapshots every 30 s: the defaults), lets it run for
``--warmup`` seconds, destroys the database, restores it through the same actions and probes the
mongo-destroy-restore experiment uses, and prints one JSON line. Figures go into docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from chaoslib_ext.actions.data import destroy_data, restore_from_backup
from chaoslib_ext.controls import after_method_control, before_experiment_control, before_method_control
from probes.dr import backup_store_report, rpo_report, rto_seconds
from probes.processing import gpu_latest_consistent
from chaos_dr_stack.local.api import LocalStack
from stack_options import add_kafka_brokers, runner_args


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scope", default="database", choices=["database", "data-directory"])
    parser.add_argument("--warmup", type=float, default=75.0, help="seconds of steady running before the disaster")
    parser.add_argument("--rate", type=float, default=20.0, help="events per second per producer")
    add_kafka_brokers(parser)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, LocalStack(state_dir=Path(tmp) / "stack", rate=args.rate,
                                                          timeout=300, runner_args=runner_args(args)) as stack:
        config = {"local_control_url": stack.endpoints["control"], "gameday_timeline": f"{tmp}/timeline.jsonl"}
        time.sleep(args.warmup)
        store = backup_store_report(max_age_seconds=120, configuration=config)
        before_experiment_control({"title": "dr drill"}, configuration=config)
        time.sleep(5)
        before_method_control(None, configuration=config)
        destroy_data(args.scope, configuration=config)
        time.sleep(2)
        restore = restore_from_backup(replay=True, configuration=config)
        after_method_control(None, configuration=config)
        rto = rto_seconds(timeout=900, configuration=config)
        rpo = rpo_report(settle_timeout=120, configuration=config)
        consistent = gpu_latest_consistent(configuration=config)["consistent"]
        print(json.dumps({
            "scope": args.scope, "rate": args.rate, "rto_seconds": rto,
            "rpo_seconds_with_replay": rpo["rpo_seconds"], "lost_with_replay": rpo["with_replay"]["lost"],
            "rpo_seconds_without_replay": rpo["rpo_seconds_without_replay"],
            "lost_without_replay": rpo["without_replay"]["lost"], "checked": rpo["checked"],
            "backup_bytes": store["newest_bytes"], "backup_seconds": store["newest_duration_s"],
            "backups": store["valid"], "restored": restore["restored"], "changes_applied": restore["changes_applied"],
            "replayed": (restore.get("replay") or {}).get("replayed"), "fallbacks": restore["fallbacks"],
            "gpu_latest_consistent": consistent,
        }))


if __name__ == "__main__":
    main()
