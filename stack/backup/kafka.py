"""The processor group's committed offsets: read for every snapshot, set back for a replay after a restore."""
from __future__ import annotations

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

ADMIN_TIMEOUT_S = 5.0
SOURCE_TOPICS = ("gpu-events", "token-events")
"""What the processor consumes (docs/local-stack-contract.md, "Kafka topics")."""


def admin(bootstrap: str) -> AdminClient:
    # client.id "backup-…": the fault proxy never cuts it (only processor-… and producer-… are attributed).
    return AdminClient({"bootstrap.servers": bootstrap, "client.id": "backup-agent", "socket.timeout.ms": 5000})


def committed_offsets(client: AdminClient, group: str, topics: tuple[str, ...] = SOURCE_TOPICS) -> dict[str, int]:
    """``{"topic/partition": offset}`` for every partition of ``topics``: what ``group`` committed, or the log's
    start for a partition it never committed (nothing of it was consumed, so a replay starts at the beginning)."""
    metadata = client.list_topics(timeout=ADMIN_TIMEOUT_S)
    wanted = [TopicPartition(t, p) for t in topics if t in metadata.topics for p in sorted(metadata.topics[t].partitions)]
    futures = client.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, wanted)],
                                                 request_timeout=ADMIN_TIMEOUT_S)
    result = futures[group].result(ADMIN_TIMEOUT_S)
    offsets = {f"{tp.topic}/{tp.partition}": int(tp.offset) for tp in result.topic_partitions or []}
    never = [k for k, v in offsets.items() if v < 0]
    if never:
        starts = _list(client, never, OffsetSpec.earliest())
        offsets.update({k: starts.get(k, 0) for k in never})
    return offsets


def _partitions(offsets: dict[str, int]) -> list[TopicPartition]:
    out = []
    for key, offset in sorted(offsets.items()):
        topic, partition = key.rsplit("/", 1)
        out.append(TopicPartition(topic, int(partition), int(offset)))
    return out


def log_end_offsets(client: AdminClient, keys: list[str]) -> dict[str, int]:
    return _list(client, keys, OffsetSpec.latest())


def _list(client: AdminClient, keys: list[str], spec: OffsetSpec) -> dict[str, int]:
    requests = {TopicPartition(tp.topic, tp.partition): spec for tp in _partitions(dict.fromkeys(keys, 0))}
    out = {}
    for tp, future in client.list_offsets(requests, request_timeout=ADMIN_TIMEOUT_S).items():
        try:
            out[f"{tp.topic}/{tp.partition}"] = int(future.result(ADMIN_TIMEOUT_S).offset)
        except KafkaException:
            continue
    return out


def commit_offsets(bootstrap: str, group: str, offsets: dict[str, int]) -> None:
    """Commit as a consumer of ``group`` that never joins it. Not AdminClient.alter_consumer_group_offsets:
    on Tansu 0.6.0 a group altered that way never assigns partitions to its next members (measured: two
    consumers joined and waited forever), while a plain commit leaves the group working."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "backup-agent",
                         "enable.auto.commit": False, "socket.timeout.ms": 5000})
    try:
        failed = [tp for tp in consumer.commit(offsets=_partitions(offsets), asynchronous=False) or []
                  if tp.error is not None]
    finally:
        consumer.close()
    if failed:
        raise KafkaException(f"committing offsets failed for {[(tp.topic, tp.partition, str(tp.error)) for tp in failed]}")


def reset_offsets(client: AdminClient, bootstrap: str, group: str, offsets: dict[str, int]) -> dict:
    """Set ``group``'s committed offsets to ``offsets`` (the group must have no running member).

    Tansu keeps topics in memory only: after a broker restart the log is shorter than (or empty below) a
    recorded offset, and those events cannot be replayed. Such partitions are reported in ``short_partitions``."""
    ends = log_end_offsets(client, list(offsets))
    short = sorted(k for k, v in offsets.items() if k in ends and ends[k] < v)
    commit_offsets(bootstrap, group, offsets)
    return {"offsets": dict(sorted(offsets.items())), "log_end": ends, "short_partitions": short}
