"""Which Kafka partitions were being processed before a fault, from the stored events' write times."""
from __future__ import annotations

from chaoslib_ext.errors import NoData

ACTIVE_LOOKBACK_SECONDS = 10.0
"""A partition counts as active when an event was written to it in these seconds before the fault."""


def active_partitions(events, fault_at: float, what: str = "the fault") -> list[tuple[str, int]]:
    """(topic, partition) pairs with a write in the lookback before ``fault_at``: the ones a failover must resume.
    Raises NoData when there are none: with nothing being processed, no recovery can be measured."""
    rows = events.aggregate([
        {"$match": {"written_at": {"$gte": fault_at - ACTIVE_LOOKBACK_SECONDS, "$lte": fault_at}}},
        {"$group": {"_id": {"t": "$kafka_topic", "p": "$kafka_partition"}}},
    ])
    partitions = sorted((r["_id"]["t"], int(r["_id"]["p"])) for r in rows)
    if not partitions:
        raise NoData(f"no partition was processed in the {ACTIVE_LOOKBACK_SECONDS:g} s before {what}")
    return partitions
