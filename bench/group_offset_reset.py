"""Can a restore reset the processor group's offsets, instead of replaying with its own consumer?

    .venv/bin/python bench/group_offset_reset.py --trials 3
    .venv/bin/python bench/group_offset_reset.py --trials 3 --group-protocol consumer --leave crash

A bare broker (no stack), one Apache Kafka KRaft node from the jars `make deps` fetched, a topic of 6
partitions with 100 messages each. Each trial, with a new group:
1. two members join and the group is stable;
2. ``alter_consumer_group_offsets`` is tried while they are members: the answer is recorded;
3. the members leave, gracefully (LeaveGroup) or as a crash (SIGKILL, like a frozen or killed processor), and the
   reset is retried every 0.2 s until the broker accepts it: the wait is recorded;
4. a new member joins, and the offset it first reads on each partition must be the reset one.

On the broker the local stack ran before Apache Kafka, an outside reset left the group assigning nothing, for
good. Prints one JSON line per trial and a summary.
"""
from __future__ import annotations

import argparse
import json
import shutil
import socket
import sys
import time
import uuid
from argparse import Namespace

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from group_handover import (DATA_DIRS, PARTITIONS, CrashableMember, Member, create_topic, free_port, group_config,
                            start_broker, wait)

MESSAGES_PER_PARTITION = 100
RESET_TO = 40


def fill(bootstrap: str, topic: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for partition in range(PARTITIONS):
        for n in range(MESSAGES_PER_PARTITION):
            producer.produce(topic, value=str(n).encode(), partition=partition)
    if producer.flush(30):
        raise RuntimeError("the test messages were not all acknowledged within 30 s")


def try_reset(admin: AdminClient, group: str, topic: str) -> str | None:
    """None when the broker accepted the reset, else its error."""
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, RESET_TO) for p in range(PARTITIONS)])
    try:
        result = admin.alter_consumer_group_offsets([request])[group].result(10)
    except KafkaException as exc:
        return str(exc.args[0])
    # A refusal may come per partition, in an answer that is otherwise a success.
    errors = sorted({str(tp.error) for tp in result.topic_partitions if tp.error is not None})
    return "; ".join(errors) or None


def members_of(admin: AdminClient, group: str) -> int:
    try:
        return len(admin.describe_consumer_groups([group])[group].result(10).members)
    except KafkaException:
        return 0


def first_offsets(config: dict, topic: str, timeout: float) -> tuple[dict[int, int], float | None]:
    """The offset a new member first reads on each partition, and how long until it owned every partition."""
    consumer = Consumer({**config, "client.id": "after-reset"})
    assigned_at: list[float] = []
    consumer.subscribe([topic], on_assign=lambda c, ps: assigned_at.append(time.time()))
    started, first = time.time(), {}
    try:
        while len(first) < PARTITIONS and time.time() - started < timeout:
            for message in consumer.consume(num_messages=100, timeout=0.2):
                if message.error() is None:
                    first.setdefault(message.partition(), message.offset())
    finally:
        consumer.close()
    return first, (round(assigned_at[0] - started, 3) if assigned_at else None)


def trial(number: int, bootstrap: str, topic: str, admin: AdminClient, args: Namespace) -> dict:
    group = f"r-{uuid.uuid4().hex[:8]}"
    config = {**group_config(bootstrap, group, args), "auto.offset.reset": "latest"}
    crash = args.leave == "crash"
    members = [CrashableMember(config, topic) if crash else Member(name, config, topic) for name in ("a", "b")]
    if not wait(lambda: members_of(admin, group) == 2, 60):
        for member in members:
            member.leave(crash)
        return {"trial": number, "error": "the two members never both joined"}
    time.sleep(1.0)
    refused_live = try_reset(admin, group, topic)
    left_at = time.time()
    for member in members:
        member.leave(crash)
    error = refused_live
    while error is not None and time.time() - left_at < 3 * args.session_timeout_ms / 1000 + 30:
        time.sleep(0.2)
        error = try_reset(admin, group, topic)
    accepted_after = round(time.time() - left_at, 3) if error is None else None
    first, assigned_after = first_offsets(config, topic, 60) if error is None else ({}, None)
    return {"trial": number, "leave": args.leave, "refused_while_members": refused_live,
            "accepted_after_leave_s": accepted_after, "last_error": error,
            "new_member_assigned_after_s": assigned_after,
            "new_member_starts_at_reset_offset": bool(first) and set(first.values()) == {RESET_TO},
            "first_offsets": first}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--group-protocol", choices=["classic", "consumer"], default="classic")
    parser.add_argument("--leave", choices=["graceful", "crash"], default="graceful")
    parser.add_argument("--session-timeout-ms", type=int, default=6000)
    parser.add_argument("--heartbeat-interval-ms", type=int, default=1000)
    parser.add_argument("--assignment-strategy", default="cooperative-sticky")
    args = parser.parse_args()
    port = free_port()
    broker = start_broker(args, port)
    try:
        bootstrap = f"127.0.0.1:{port}"
        if not wait(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 90):
            parser.error(f"the broker did not listen on {port} within 90 s")
        topic = "reset"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        if not wait(lambda: create_topic(admin, topic), 60):
            parser.error(f"topic {topic!r} could not be created within 60 s")
        fill(bootstrap, topic)
        results = []
        for number in range(1, args.trials + 1):
            results.append(trial(number, bootstrap, topic, admin, args))
            print(json.dumps(results[-1]), flush=True)
        print(json.dumps({"group_protocol": args.group_protocol, "leave": args.leave, "trials": len(results),
                          "refused_while_members": sum(r.get("refused_while_members") is not None for r in results),
                          "accepted_after_leave_s": [r.get("accepted_after_leave_s") for r in results],
                          "new_member_starts_at_reset_offset": sum(bool(r.get("new_member_starts_at_reset_offset"))
                                                                   for r in results)}), flush=True)
    finally:
        broker.terminate()
        broker.wait(30)
        for data_dir in DATA_DIRS:
            shutil.rmtree(data_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
