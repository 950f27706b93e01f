"""Reads of the stored events that the probes make while the system under test is serving, shaped for the
database's indexes.

The local stack's database (SecantusDB) is effectively single-threaded, and answers quickly only a read that one
index can bound: an equality or range on the leading fields of ``(producer_id, seq)``, ``written_at`` or
``produced_at``. A filter with any other field, a sort, or a count with such a filter reads the whole collection,
and while it does every other client waits: after a game day (tens of thousands of events) one such read took
1.5–4 s, and a recovery probe polling one every 0.1 s made the API the probe was judging answer 503. So each read
here is an index range with a projection, and the rest of the filtering is done in Python.
"""
from __future__ import annotations

from chaoslib_ext.errors import NoData

ACTIVE_LOOKBACK_SECONDS = 10.0
"""A partition counts as active when an event was written to it in these seconds before the fault."""

SEQ_LOOKBACK_SECONDS = (10.0, 60.0, 600.0, 3600.0, 86400.0)
"""How far back, in growing steps, the newest event of a producer before a moment is looked for."""


def writes_after(events, after: float, until: float | None = None, fields: tuple[str, ...] = ()):
    """The events written after ``after`` (and at or before ``until``), from the ``written_at`` index, with
    ``written_at`` and ``fields`` only."""
    bound = {"$gt": after} if until is None else {"$gt": after, "$lte": until}
    projection = {"_id": 0, "written_at": 1, **{f: 1 for f in fields}}
    return events.find({"written_at": bound}, projection=projection)


def active_partitions(events, fault_at: float, what: str = "the fault") -> list[tuple[str, int]]:
    """(topic, partition) pairs with a write in the lookback before ``fault_at``: the ones a failover must resume.
    Raises NoData when there are none: with nothing being processed, no recovery can be measured."""
    partitions = sorted({(d["kafka_topic"], int(d["kafka_partition"]))
                         for d in writes_after(events, fault_at - ACTIVE_LOOKBACK_SECONDS, fault_at,
                                               ("kafka_topic", "kafka_partition"))
                         if d.get("kafka_topic") is not None and d.get("kafka_partition") is not None})
    if not partitions:
        raise NoData(f"no partition was processed in the {ACTIVE_LOOKBACK_SECONDS:g} s before {what}")
    return partitions


def first_write_per_partition(events, after: float) -> dict[tuple[str, int], float]:
    """The first ``written_at`` after ``after`` on each (topic, partition) written since: one index range read."""
    first: dict[tuple[str, int], float] = {}
    for d in writes_after(events, after, fields=("kafka_topic", "kafka_partition")):
        if d.get("kafka_topic") is None or d.get("kafka_partition") is None:
            continue
        key = (d["kafka_topic"], int(d["kafka_partition"]))
        first[key] = min(first.get(key, d["written_at"]), d["written_at"])
    return first


def first_seq_at_or_after(events, producer_id: str, since: float | None) -> int:
    """The first sequence number of ``producer_id`` produced at or after ``since``: one past its newest stored
    event produced before (seq grows with produce time), or 1. The newest event before is looked for in
    ``produced_at`` ranges going back in steps, never further than the producer's first event."""
    if since is None:
        return 1
    first = events.find_one({"producer_id": producer_id, "seq": 1}, projection={"_id": 0, "produced_at": 1})
    if first is not None and first.get("produced_at", since) >= since:
        return 1
    oldest = first["produced_at"] if first is not None else None
    upper = since
    for lookback in SEQ_LOOKBACK_SECONDS:
        lower = since - lookback if oldest is None else max(since - lookback, oldest)
        seqs = [d["seq"] for d in events.find({"produced_at": {"$gte": lower, "$lt": upper}},
                                              projection={"_id": 0, "producer_id": 1, "seq": 1})
                if d.get("producer_id") == producer_id and isinstance(d.get("seq"), int)]
        if seqs:
            return max(seqs) + 1
        if oldest is not None and lower <= oldest:
            return 1
        upper = lower
    # Nothing from this producer in a day before ``since`` and its first event is not stored: the slow read.
    before = events.find_one({"producer_id": producer_id, "produced_at": {"$lt": upper}}, sort=[("seq", -1)],
                             projection={"seq": 1})
    return int(before["seq"]) + 1 if before else 1
