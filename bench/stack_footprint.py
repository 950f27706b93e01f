"""Local stack cold start and resident memory, per component.

    .venv/bin/python bench/stack_footprint.py --starts 3
    .venv/bin/python bench/stack_footprint.py --starts 3 --kafka-brokers 1

Each start is a new stack in a new state directory (so the Kafka nodes format their storage, as on a first
`gameday stack up`), timed from the call until every component is ready. The runner's own record then says
when each instance was spawned and became ready. After ``--idle`` seconds of running at the default rate, the
resident set of every process of the stack (each instance's process tree, and the runner, which serves the fault
proxy and the processor API service in-process) is read from /proc. Prints one JSON line per start and a summary.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from probes.measure import distribution
from chaos_dr_stack.local.api import LocalStack
from stack_options import add_kafka_brokers, runner_args


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tree[int(fields[1])].append(int(stat.parent.name))
    return tree


def rss_mib(pid: int, tree: dict[int, list[int]]) -> float:
    """The resident set of ``pid`` and its descendants, in MiB (0 for a process gone meanwhile). An empty
    ``tree`` counts ``pid`` alone."""
    total_kib, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, ()))
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            pass
    return round(total_kib / 1024, 1)


def component_of(name: str) -> str:
    """processor-1 → processor, kafka-2 → kafka: the figures are summed per component."""
    head, _, tail = name.rpartition("-")
    return head if tail.isdigit() else name


def one_start(args: argparse.Namespace, tmp: Path) -> dict:
    with LocalStack(state_dir=tmp / "stack", timeout=240, runner_args=runner_args(args)) as stack:
        started_in = stack.started_in
        instances = httpx.get(f"{stack.control_url}/instances", timeout=5).json()["instances"]
        first_spawn = min(i["started_at"] for i in instances if i["started_at"])
        ready_after = {i["name"]: round(i["ready_at"] - first_spawn, 2) for i in instances if i["ready_at"]}
        time.sleep(args.idle)
        tree = children_of()
        # The runner's descendants are the instances, counted each on its own.
        per_process = {name: rss_mib(pid, {} if name == "runner" else tree) for name, pid in stack.pids().items()}
    per_component: dict[str, float] = defaultdict(float)
    for name, mib in per_process.items():
        per_component[component_of(name)] += mib
    return {"kafka_brokers": args.kafka_brokers, "started_in_s": round(started_in, 2),
            "ready_after_first_spawn_s": ready_after, "rss_mib": per_process,
            "rss_mib_by_component": {k: round(v, 1) for k, v in sorted(per_component.items())},
            "rss_mib_total": round(sum(per_process.values()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=3, help="stacks started one after the other (default 3)")
    parser.add_argument("--idle", type=float, default=20.0,
                        help="seconds of running before the memory is read (default %(default)s)")
    add_kafka_brokers(parser)
    args = parser.parse_args()
    if args.starts < 1:
        parser.error(f"--starts must be at least 1, got {args.starts}")
    runs = []
    for _ in range(args.starts):
        with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
            runs.append(one_start(args, Path(tmp)))
        print(json.dumps(runs[-1]), flush=True)
    print(json.dumps({"kafka_brokers": args.kafka_brokers,
                      "started_in_s": distribution([r["started_in_s"] for r in runs]),
                      "rss_mib_total": distribution([r["rss_mib_total"] for r in runs])}))


if __name__ == "__main__":
    main()
