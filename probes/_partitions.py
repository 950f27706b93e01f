"""Which Kafka partitions were being processed before a fault, from the stored events' write times."""
from __future__ import annotations

ACTIVE_LOOKBACK_SECONDS = 10.0
"""A partition counts as active when an event was written to it in these seconds before the fault."""


def active_partitions(events, fault_at: float) -> list[tuple[str, int]]:
    """(topic, partition) pairs with a write in the lookback before ``fault_at``: the ones a failover must resume."""
    rows = events.aggregate([
        {"$match": {"written_at": {"$gte": fault_at - ACTIVE_LOOKBACK_SECONDS, "$lte": fault_at}}},
        {"$group": {"_id": {"t": "$kafka_topic", "p": "$kafka_partition"}}},
    ])
    return sorted((r["_id"]["t"], int(r["_id"]["p"])) for r in rows)
