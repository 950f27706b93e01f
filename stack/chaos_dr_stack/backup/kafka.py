"""The processor group's committed offsets (read for every snapshot), and the replay after a restore.

Nothing here joins, or writes to, the processor's consumer group: resetting a live group's offsets from outside
races its members' own commits (Apache Kafka refuses it unless the group is empty, and the broker the local stack
ran before Kafka broke the group for good). So offsets are read with a plain consumer's ``committed()``, and the
replay re-consumes with its own consumer, from the restored point up to the group's committed offsets, writing with
the processor's own idempotent writes; the processors then resume from their committed offsets.
"""
from __future__ import annotations

import time

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

TIMEOUT_S = 5.0
SOURCE_TOPICS = ("gpu-events", "token-events")
"""What the processor consumes (docs/local-stack-contract.md, "Kafka topics")."""


def _consumer(bootstrap: str, group: str) -> Consumer:
    # client.id "backup-agent": the fault proxy never cuts it (only processor-… and producer-… are attributed).
    return Consumer({"bootstrap.servers": bootstrap, "group.id": group, "client.id": "backup-agent",
                     "enable.auto.commit": False, "socket.timeout.ms": 5000})


def _key(tp: TopicPartition) -> str:
    return f"{tp.topic}/{tp.partition}"


def _partitions(offsets: dict[str, int]) -> list[TopicPartition]:
    out = []
    for key, offset in sorted(offsets.items()):
        topic, partition = key.rsplit("/", 1)
        out.append(TopicPartition(topic, int(partition), int(offset)))
    return out


def committed_offsets(bootstrap: str, group: str, topics: tuple[str, ...] = SOURCE_TOPICS) -> dict[str, int]:
    """``{"topic/partition": offset}`` for every partition of ``topics``: what ``group`` committed, or the log's
    start for a partition it never committed (nothing of it was consumed, so a replay starts at the beginning)."""
    consumer = _consumer(bootstrap, group)
    try:
        metadata = consumer.list_topics(timeout=TIMEOUT_S)
        wanted = [TopicPartition(t, p) for t in topics if t in metadata.topics
                  for p in sorted(metadata.topics[t].partitions)]
        offsets = {}
        for tp in _committed(consumer, wanted):
            if tp.error is not None:
                raise KafkaException(tp.error)
            if tp.offset >= 0:
                offsets[_key(tp)] = int(tp.offset)
            else:
                low, _high = consumer.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=TIMEOUT_S)
                offsets[_key(tp)] = int(low)
        return offsets
    finally:
        consumer.close()


COORDINATOR_NOT_READY = {KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
                         KafkaError.COORDINATOR_NOT_AVAILABLE}
COORDINATOR_WAIT_S = 30.0
"""How long the answers above are retried: a cluster's offsets topic is created or loaded in seconds after a broker
starts or fails over, and a snapshot that failed on them would wait a whole interval for the next."""


def _committed(consumer: Consumer, wanted: list[TopicPartition]) -> list[TopicPartition]:
    deadline = time.monotonic() + COORDINATOR_WAIT_S
    while True:
        try:
            return consumer.committed(wanted, timeout=TIMEOUT_S)
        except KafkaException as exc:
            if exc.args[0].code() not in COORDINATOR_NOT_READY or time.monotonic() >= deadline:
                raise
            time.sleep(0.25)


REPLAY_BATCH = 500
REPLAY_IDLE_TIMEOUT_S = 15.0
"""A replay that receives nothing for this long while messages are still due gives up and says so."""


def replay_range(bootstrap: str, group: str, start: dict[str, int], write_batch, log=None) -> dict:
    """Re-consume, with a consumer that never joins ``group``, every message from ``start`` (per partition) up to
    the end of each partition's log now, and hand each batch to ``write_batch(messages)``. The group's own offsets
    are not touched: the processors resume from them afterwards, and re-deliver what the replay already wrote past
    them, which their idempotent writes absorb.

    Why the log's end and not what ``group`` has committed: a processor that wrote a batch into the destroyed
    database's successor just before the freeze commits it while frozen, and the commit goes through after the
    restore; the restore has dropped that batch, so replaying only to the older committed offset skipped it for
    good (seen in CI: the last acknowledged event of each producer lost).

    Returns ``{"from", "to", "replayed", "incomplete": {partition: next offset not replayed}}``."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"{group}-replay", "client.id": "backup-agent",
                         "enable.auto.commit": False, "auto.offset.reset": "earliest", "fetch.wait.max.ms": 100,
                         "socket.timeout.ms": 5000})
    replayed = 0
    try:
        ends = {k: consumer.get_watermark_offsets(_partitions({k: 0})[0], timeout=TIMEOUT_S)[1] for k in start}
        ranges = {k: (v, ends[k]) for k, v in start.items() if ends[k] > v}
        position = {k: lo for k, (lo, _hi) in ranges.items()}
        if ranges:
            consumer.assign(_partitions({k: lo for k, (lo, _hi) in ranges.items()}))
        last_progress = time.monotonic()
        while any(position[k] < hi for k, (_lo, hi) in ranges.items()):
            messages = consumer.consume(num_messages=REPLAY_BATCH, timeout=0.5)
            due = []
            for msg in messages:
                if msg.error() is not None:
                    continue
                key = f"{msg.topic()}/{msg.partition()}"
                if key in ranges and msg.offset() < ranges[key][1]:
                    due.append(msg)
                position[key] = max(position.get(key, 0), msg.offset() + 1)
            if due:
                write_batch(due)
                replayed += len(due)
            if messages:
                last_progress = time.monotonic()
            elif time.monotonic() - last_progress > REPLAY_IDLE_TIMEOUT_S:
                if log is not None:
                    log.warning("replay stalled: nothing received for %gs", REPLAY_IDLE_TIMEOUT_S)
                break
    finally:
        consumer.close()
    incomplete = {k: position[k] for k, (_lo, hi) in ranges.items() if position[k] < hi}
    return {"from": {k: lo for k, (lo, _hi) in ranges.items()}, "to": {k: hi for k, (_lo, hi) in ranges.items()},
            "replayed": replayed, "incomplete": incomplete}
