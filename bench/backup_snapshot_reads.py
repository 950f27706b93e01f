"""How long a small read waits while the backup agent dumps the events: one query against ``written_at`` ranges.

    .venv/bin/python bench/backup_snapshot_reads.py --events 40000 --trials 3

A bare SecantusDB server (no stack) with the processor's indexes and ``--events`` events written over the last
hours. A reader queries ``gpu_latest`` (8 documents, as GET /gpu/info does) every 20 ms, first with nothing else
running, then during dumps of the events by one query (the agent's old way) and by ``written_at`` ranges
(``chaos_dr_stack.backup.snapshot``). Prints one JSON line per dump, then the dumps' durations and the reader's waits (p50,
p95, max) for each way.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from probes.measure import distribution  # noqa: E402
from chaos_dr_stack.backup import snapshot  # noqa: E402
from chaos_dr_stack.local.ports import free_base_port  # noqa: E402
from chaos_dr_stack.processor import store  # noqa: E402

VENV_BIN = Path(sys.executable).parent


def fill(db, events: int) -> None:
    store.ensure_indexes(db)
    start = time.time() - events * 0.1
    doc = {"kind": "gpu", "gpu_id": "gpu-1", "utilization": 0.5, "memory_used_mb": 1234, "temperature_c": 60.0,
           "producer_id": "bench", "kafka_topic": "gpu-events", "kafka_partition": 1, "deliveries": 1}
    for first in range(0, events, 2000):
        db["events"].insert_many([dict(doc, _id=f"bench:{i}", seq=i, kafka_offset=i, produced_at=start + i * 0.1,
                                       written_at=start + i * 0.1 + 0.05)
                                  for i in range(first, min(events, first + 2000))])
    db["gpu_latest"].insert_many([dict(doc, _id=f"gpu-{g}") for g in range(8)])


def waits_during(uri: str, work) -> tuple[list[float], float]:
    waits, stop = [], threading.Event()

    def reader() -> None:
        gpus = MongoClient(uri)["ca3"]["gpu_latest"]
        while not stop.is_set():
            began = time.perf_counter()
            list(gpus.find({}, sort=[("_id", 1)]))
            waits.append(time.perf_counter() - began)
            time.sleep(0.02)

    thread = threading.Thread(target=reader)
    thread.start()
    time.sleep(0.5)
    began = time.perf_counter()
    work()
    took = time.perf_counter() - began
    stop.set()
    thread.join()
    return waits, took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=40000, help="events in the collection (default 40000)")
    parser.add_argument("--trials", type=int, default=3, help="dumps of each kind (default 3)")
    args = parser.parse_args()
    if args.events < 1 or args.trials < 1:
        parser.error("--events and --trials must be at least 1")
    port, data = free_base_port(span=1), tempfile.mkdtemp(prefix="bench-snapshot-")
    server = subprocess.Popen([str(VENV_BIN / "secantusd-py"), "--host", "127.0.0.1", "--port", str(port),
                               "--storage-path", data, "--log-level", "WARNING"])
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        client = MongoClient(uri, serverSelectionTimeoutMS=30000)
        fill(client["ca3"], args.events)
        raw = client["ca3"]["events"].with_options(
            codec_options=client.codec_options.with_options(document_class=RawBSONDocument))
        ways = {
            "idle": lambda: time.sleep(2),
            "one query": lambda: sum(1 for _ in raw.find({}, batch_size=snapshot.BATCH)),
            "written_at ranges": lambda: sum(1 for _ in snapshot._by_ranges(raw, "written_at", time.time())),
        }
        summary = {}
        for name, work in ways.items():
            waits, durations = [], []
            for _ in range(1 if name == "idle" else args.trials):
                trial_waits, took = waits_during(uri, work)
                waits += trial_waits
                durations.append(round(took, 3))
                print(json.dumps({"way": name, "dump_s": round(took, 3), "reads": len(trial_waits),
                                  "worst_wait_s": round(max(trial_waits), 4)}), flush=True)
            waits.sort()
            summary[name] = {"dump_s": durations, "reads": len(waits), "wait": distribution(waits)}
        print(json.dumps({"events": args.events, "summary": summary}, indent=1))
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
