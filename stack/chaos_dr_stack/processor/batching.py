"""Turn one consumed batch into Mongo writes, dead letters and offsets to commit. Pure: no I/O, no clock.

The consume loop converts each Kafka message to a ``Record`` first, so everything here is testable
without a broker.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pymongo import UpdateOne

from chaos_dr_stack.events import Event, GpuEvent, InvalidEvent, parse_event

DLQ_TOPIC = "events-dlq"
DLQ_MAX_VALUE_BYTES = 512 * 1024
DLQ_MAX_KEY_BYTES = 1024
"""A dead letter's value and key are cut to these sizes, with a header ``dlq-truncated-from: <value bytes>,<key bytes>``.
A poison event can be as large as the broker accepts (its ``message.max.bytes``, about 1 MiB by default), and a dead
letter carries headers on top: the whole event would then fail every send with MSG_SIZE_TOO_LARGE, and the batch's
retries would hold its partition for good."""


@dataclass(frozen=True)
class Record:
    """The parts of a Kafka message the processor uses."""

    topic: str
    partition: int
    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: float | None = None
    """Kafka message timestamp in seconds, or None when the broker gave none."""
    timestamp_type: str | None = None
    """``append`` (the leader's append time, LogAppendTime) or ``create`` (the producer's, CreateTime)."""


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    reason: str
    message: str
    headers: list[tuple[str, bytes]]


@dataclass
class BatchPlan:
    event_docs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Event documents by ``_id``, first delivery in the batch wins (they are identical anyway)."""
    deliveries: Counter[str] = field(default_factory=Counter)
    """How many times each ``_id`` appears in the batch: added to the stored ``deliveries``."""
    gpu_latest: dict[str, GpuEvent] = field(default_factory=dict)
    """The newest GPU event per gpu_id in this batch."""
    events: dict[str, Event] = field(default_factory=dict)
    """The parsed event by ``_id`` (first delivery), so the GPU states can be recomputed without some of them."""
    sources: dict[str, list[Record]] = field(default_factory=dict)
    """Every record that delivered each ``_id``: the raw bytes and coordinates of a dead letter for it."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    processed: Counter[str] = field(default_factory=Counter)
    """Valid events per source topic."""
    offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    """Next offset to commit per (topic, partition): one past the highest offset seen."""


def _newer(a: GpuEvent, b: GpuEvent) -> bool:
    """True if ``a`` should replace ``b``. Ties on produced_at fall back to (producer_id, seq) so the
    choice does not depend on batch order."""
    return (a.produced_at, a.producer_id, a.seq) > (b.produced_at, b.producer_id, b.seq)


def dead_letter(record: Record, error: InvalidEvent) -> DeadLetter:
    headers = [
        ("dlq-reason", error.reason.encode()),
        ("source-topic", record.topic.encode()),
        ("source-partition", str(record.partition).encode()),
        ("source-offset", str(record.offset).encode()),
    ]
    value, key = record.value, record.key
    if (value is not None and len(value) > DLQ_MAX_VALUE_BYTES) or (key is not None and len(key) > DLQ_MAX_KEY_BYTES):
        headers.append(("dlq-truncated-from", f"{len(value or b'')},{len(key or b'')}".encode()))
        value = None if value is None else value[:DLQ_MAX_VALUE_BYTES]
        key = None if key is None else key[:DLQ_MAX_KEY_BYTES]
    return DeadLetter(key=key, value=value, reason=error.reason, message=error.message, headers=headers)


def unwritable_letter(record: Record, kind: str) -> DeadLetter:
    """The dead letter of a valid event the database refused to store (reason ``unwritable:<kind>``)."""
    return dead_letter(record, InvalidEvent(f"unwritable:{kind}", f"the database refused the event: {kind}"))


def newest_gpu_states(events: Iterable[Event]) -> dict[str, GpuEvent]:
    newest: dict[str, GpuEvent] = {}
    for event in events:
        if isinstance(event, GpuEvent):
            current = newest.get(event.gpu_id)
            if current is None or _newer(event, current):
                newest[event.gpu_id] = event
    return newest


def drop_unwritable(plan: BatchPlan, unwritable: Mapping[str, str]) -> list[DeadLetter]:
    """Take the events the database refused (``_id`` -> kind) out of ``plan``, and return their dead letters, one
    per delivery. Their documents, delivery and processed counts go, and the newest GPU states are recomputed
    without them, so the batch's ``gpu_latest`` update never names an event that is not stored."""
    letters: list[DeadLetter] = []
    for key, kind in unwritable.items():
        records = plan.sources.pop(key)
        for record in records:
            plan.processed[record.topic] -= 1
            letters.append(unwritable_letter(record, kind))
        del plan.event_docs[key], plan.deliveries[key], plan.events[key]
    plan.processed = +plan.processed  # drops the topics left at 0
    plan.gpu_latest = newest_gpu_states(plan.events.values())
    return letters


def plan_batch(records: list[Record], consumed_at: float) -> BatchPlan:
    plan = BatchPlan()
    for record in records:
        tp = (record.topic, record.partition)
        plan.offsets[tp] = max(plan.offsets.get(tp, 0), record.offset + 1)
        try:
            event = parse_event(record.value)
        except InvalidEvent as exc:
            plan.dead_letters.append(dead_letter(record, exc))
            continue
        plan.processed[record.topic] += 1
        key = event.key
        plan.deliveries[key] += 1
        plan.sources.setdefault(key, []).append(record)
        if key not in plan.event_docs:
            plan.events[key] = event
            doc = event.to_doc()
            doc.update(
                kafka_topic=record.topic,
                kafka_partition=record.partition,
                kafka_offset=record.offset,
                kafka_ts=record.timestamp,
                kafka_ts_type=record.timestamp_type,
                consumed_at=consumed_at,
            )
            plan.event_docs[key] = doc
    plan.gpu_latest = newest_gpu_states(plan.events.values())
    return plan


def event_documents(plan: BatchPlan, written_at: float, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """The batch's events as new documents, inserted with ``ordered=False``. Built per attempt, so
    ``written_at`` is the time of the attempt that succeeded.

    Insert, not upsert: on SecantusDB 0.7 an unordered insert of 500 is ~4x faster than the same
    ``$setOnInsert`` upserts (1.3k/s against 340/s with the three indexes). The stored result is the
    same: a key that exists fails with E11000 and gets ``duplicate_ops`` instead."""
    return [
        {"_id": key, **plan.event_docs[key], "written_at": written_at, "deliveries": plan.deliveries[key]}
        for key in (plan.event_docs if keys is None else keys)
    ]


def duplicate_ops(plan: BatchPlan, keys: list[str]) -> list[UpdateOne]:
    """For events already stored: count the redelivery, change nothing else."""
    return [UpdateOne({"_id": key}, {"$inc": {"deliveries": plan.deliveries[key]}}) for key in keys]


def gpu_latest_op(event: GpuEvent, updated_at: float) -> UpdateOne:
    """Conditional upsert: matches only a stored state that is older. If the stored state is newer or
    equal, the filter misses, the upsert collides with the existing ``_id`` and fails with E11000,
    which the caller treats as "already newer" (verified on SecantusDB 0.7.0b3 and MongoDB semantics)."""
    doc = event.to_doc()
    doc.pop("kind")
    doc["updated_at"] = updated_at
    return UpdateOne({"_id": event.gpu_id, "produced_at": {"$lt": event.produced_at}}, {"$set": doc}, upsert=True)


def gpu_latest_ops(plan: BatchPlan, updated_at: float) -> list[UpdateOne]:
    return [gpu_latest_op(event, updated_at) for _, event in sorted(plan.gpu_latest.items())]
