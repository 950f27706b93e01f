"""How long a consumer group takes to hand a leaving member's partitions to the survivor.

    .venv/bin/python bench/group_handover.py --trials 3 --session-timeout-ms 6000 --heartbeat-interval-ms 1000
    .venv/bin/python bench/group_handover.py --group-protocol consumer --leave crash --trials 5

A bare broker (no stack): one Apache Kafka KRaft node from the jars `make deps` fetched, one topic of 6
partitions, two consumers in one group. Each trial: both are
assigned and balanced; one leaves, either gracefully (``close()``: LeaveGroup) or as a crash (its handle is
dropped without a LeaveGroup: the broker must wait for its session to expire); the survivor's ``on_assign`` time
is the handover. For a crash, member a runs in its own process and gets SIGKILL (a consumer that merely stops
polling keeps heartbeating from librdkafka's thread until max.poll.interval.ms, which is no crash). Measures the
consumer protocol alone, with the processor's own settings, to explain what bench/failover.py sees end to end.

``--group-protocol consumer`` uses Kafka's newer group protocol (KIP-848): the broker assigns
the partitions, and the session timeout and heartbeat interval are the broker's (``group.consumer.*``), set here
to the same ``--session-timeout-ms`` and ``--heartbeat-interval-ms``. Prints one JSON line per trial and a summary.

``--scenario overlap`` hunts the "stuck group" seen once in the failover experiment: member a leaves and is
replaced by a', and b leaves (and is replaced by b') ``0..--max-overlap-s`` seconds later, i.e. while the
rebalance that a's replacement started may be unfinished. A trial is stuck when a' and b' together do not own
every partition ``--stuck-after-s`` seconds after b' joined. It loops for ``--minutes``.
"""
from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import shutil
import tempfile

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from probes.measure import distribution  # noqa: E402
from chaos_dr_stack.local import kraft  # noqa: E402

PARTITIONS = 6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Member:
    """One consumer polling in its own thread; records when each assignment arrived."""

    def __init__(self, name: str, config: dict, topic: str):
        self.name = name
        self.assignments: list[tuple[float, list[int]]] = []
        self.owned: set[int] = set()
        self._stop = threading.Event()
        self._crash = False
        self._consumer = Consumer({**config, "client.id": name})
        self._consumer.subscribe([topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                 on_lost=self._on_revoke)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _on_assign(self, _c, partitions) -> None:
        self.owned.update(p.partition for p in partitions)
        self.assignments.append((time.time(), sorted(p.partition for p in partitions)))

    def _on_revoke(self, _c, partitions) -> None:
        self.owned.difference_update(p.partition for p in partitions)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._consumer.consume(num_messages=100, timeout=0.2)
        if not self._crash:
            self._consumer.close()

    def leave(self, crash: bool) -> float:
        """Stop polling; a graceful leave closes (LeaveGroup), a crash never speaks to the group again."""
        self._crash = crash
        left_at = time.time()
        self._stop.set()
        self._thread.join(10)
        return left_at


CRASH_MEMBER = """
import sys, time
from confluent_kafka import Consumer
c = Consumer(eval(sys.argv[1]))
c.subscribe([sys.argv[2]])
while True:
    c.consume(num_messages=100, timeout=0.2)
"""


class CrashableMember:
    """Member a as a separate process, so that SIGKILL stops its heartbeats as a crash would."""

    def __init__(self, config: dict, topic: str):
        self._proc = subprocess.Popen([sys.executable, "-c", CRASH_MEMBER, repr({**config, "client.id": "a"}), topic],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.owned: set[int] = set()  # unknown from outside: balance is read from the survivor

    def leave(self, crash: bool) -> float:
        left_at = time.time()
        self._proc.kill() if crash else self._proc.terminate()
        self._proc.wait(10)
        return left_at


def group_config(bootstrap: str, group: str, args) -> dict:
    config = {"bootstrap.servers": bootstrap, "group.id": group, "fetch.wait.max.ms": 100, "enable.auto.commit": False}
    if args.group_protocol == "consumer":  # the broker owns the timing and the assignment
        return {**config, "group.protocol": "consumer"}
    return {**config, "session.timeout.ms": args.session_timeout_ms,
            "heartbeat.interval.ms": args.heartbeat_interval_ms,
            "partition.assignment.strategy": args.assignment_strategy}


DATA_DIRS: list[Path] = []
"""The KRaft node's data, deleted when the bench ends."""


def start_broker(args, port: int) -> subprocess.Popen:
    libs = kraft.kafka_libs()
    node = kraft.KraftNode(1, "127.0.0.1", port, free_port(), Path(tempfile.mkdtemp(prefix="bench-kraft-")))
    DATA_DIRS.append(node.data_dir)
    kraft.write_config(node, [node])
    with node.properties_path.open("a") as properties:
        properties.write(f"group.consumer.min.session.timeout.ms={min(args.session_timeout_ms, 45000)}\n"
                         f"group.consumer.session.timeout.ms={args.session_timeout_ms}\n"
                         f"group.consumer.min.heartbeat.interval.ms={min(args.heartbeat_interval_ms, 5000)}\n"
                         f"group.consumer.heartbeat.interval.ms={args.heartbeat_interval_ms}\n")
    kraft.format_storage(libs, node, kraft.new_cluster_id())
    return subprocess.Popen(kraft.server_argv(libs, node), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def create_topic(admin: AdminClient, topic: str) -> bool:
    try:
        admin.create_topics([NewTopic(topic, num_partitions=PARTITIONS, replication_factor=1)])[topic].result(10)
        return True
    except Exception:  # noqa: BLE001 - retried until the caller's deadline
        time.sleep(0.5)
        return False


def wait(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def overlap(bootstrap: str, topic: str, args) -> int:
    """Replace both members in quick succession until ``args.minutes`` have passed; count stuck groups."""
    import random

    deadline = time.monotonic() + args.minutes * 60
    trials = stuck = 0
    while time.monotonic() < deadline:
        trials += 1
        config = group_config(bootstrap, f"o-{uuid.uuid4().hex[:8]}", args)
        a, b = Member("a", config, topic), Member("b", config, topic)
        if not wait(lambda: len(a.owned) + len(b.owned) == PARTITIONS and a.owned and b.owned, 60):
            print(json.dumps({"trial": trials, "error": "never balanced"}), flush=True)
            a.leave(False), b.leave(False)
            continue
        gap = random.uniform(0, args.max_overlap_s)
        a.leave(False)
        a2 = Member("a2", config, topic)
        time.sleep(gap)
        b.leave(False)
        b2 = Member("b2", config, topic)
        joined_at = time.time()
        ok = wait(lambda: len(a2.owned) + len(b2.owned) == PARTITIONS, args.stuck_after_s)
        note = {"trial": trials, "overlap_s": round(gap, 2), "settled_s": round(time.time() - joined_at, 2) if ok else None,
                "a2": sorted(a2.owned), "b2": sorted(b2.owned)}
        if not ok:
            stuck += 1
            # Stuck, or only slow? Give it two more minutes before calling it stuck for good.
            note["recovered_within_120s"] = wait(lambda: len(a2.owned) + len(b2.owned) == PARTITIONS, 120)
            note["a2_assignments"] = a2.assignments
            note["b2_assignments"] = b2.assignments
        print(json.dumps(note), flush=True)
        a2.leave(False), b2.leave(False)
    print(json.dumps({"scenario": "overlap", "session_timeout_ms": args.session_timeout_ms,
                      "heartbeat_interval_ms": args.heartbeat_interval_ms,
                      "assignment_strategy": args.assignment_strategy, "trials": trials, "stuck": stuck}), flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=1000)
    parser.add_argument("--assignment-strategy", default="cooperative-sticky")
    parser.add_argument("--leave", choices=["graceful", "crash"], default="graceful")
    parser.add_argument("--scenario", choices=["handover", "overlap"], default="handover")
    parser.add_argument("--minutes", type=float, default=5.0, help="overlap: how long to hunt")
    parser.add_argument("--max-overlap-s", type=float, default=4.0)
    parser.add_argument("--stuck-after-s", type=float, default=30.0)
    parser.add_argument("--group-protocol", choices=["classic", "consumer"], default="classic",
                        help="consumer: KIP-848, the broker-driven protocol")
    args = parser.parse_args()
    port = free_port()
    broker = start_broker(args, port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        if not wait(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 90):
            parser.error(f"the broker did not listen on {port} within 90 s")
        topic = "handover"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        if not wait(lambda: create_topic(admin, topic), 60):  # a KRaft node listens before its quorum has a leader
            parser.error(f"topic {topic!r} could not be created within 60 s")
        if args.scenario == "overlap":
            return overlap(bootstrap, topic, args)
        seconds = []
        for trial in range(1, args.trials + 1):
            config = group_config(bootstrap, f"g-{uuid.uuid4().hex[:8]}", args)
            started = time.time()
            crash = args.leave == "crash"
            a = CrashableMember(config, topic) if crash else Member("a", config, topic)
            b = Member("b", config, topic)
            if crash:  # a's share is read from b: balanced once b owns half, and keeps it for a heartbeat or two
                balanced = wait(lambda: len(b.owned) == PARTITIONS // 2, 60) and (time.sleep(2) or
                                                                                len(b.owned) == PARTITIONS // 2)
            else:
                balanced = wait(lambda: len(a.owned) + len(b.owned) == PARTITIONS and a.owned and b.owned, 60)
            if not balanced:
                print(json.dumps({"trial": trial, "error": "never balanced", "a": sorted(a.owned),
                                  "b": sorted(b.owned)}), flush=True)
                a.leave(False), b.leave(False)
                continue
            balanced_after = time.time() - started
            time.sleep(1.0)
            left_at = a.leave(crash=crash)
            got_all = wait(lambda: len(b.owned) == PARTITIONS, 3 * args.session_timeout_ms / 1000 + 30)
            after = [(t, parts) for t, parts in b.assignments if t >= left_at]
            handover = round(after[-1][0] - left_at, 3) if got_all and after else None
            print(json.dumps({"trial": trial, "leave": args.leave, "handover_s": handover,
                              "first_join_balanced_s": round(balanced_after, 3),
                              "survivor_assignments_after_leave": [(round(t - left_at, 3), p) for t, p in after]}),
                  flush=True)
            if handover is not None:
                seconds.append(handover)
            b.leave(False)
        print(json.dumps({"broker": "kraft", "group_protocol": args.group_protocol,
                          "session_timeout_ms": args.session_timeout_ms,
                          "heartbeat_interval_ms": args.heartbeat_interval_ms,
                          "assignment_strategy": args.assignment_strategy, "leave": args.leave,
                          "seconds": seconds, **(distribution(seconds) if seconds else {})}), flush=True)
    finally:
        broker.terminate()
        broker.wait(30)
        for data_dir in DATA_DIRS:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
