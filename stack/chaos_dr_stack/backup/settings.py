"""The backup agent's settings."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

THIRTY_DAYS = 30 * 86400


@dataclass(frozen=True)
class BackupSettings:
    mongo_uri: str
    bootstrap: str
    store: Path
    database: str = "ca3"
    """The processor's database (docs/local-stack-contract.md)."""
    group: str = "processor"
    """The Kafka consumer group whose committed offsets each snapshot records."""
    interval_s: float = 30.0
    """Seconds between snapshots. The change log covers the time between them, so RPO does not depend on it;
    restore time does (fewer changes to apply), and so does the store's size."""
    retention_s: float = THIRTY_DAYS
    """Seconds a snapshot is kept: the seed's retention for the database, 30 days. Tests scale it down."""
    keep_min: int = 3
    """Snapshots kept whatever their age, so retention can never leave nothing to restore."""
    mongo_timeout_ms: int = 3000
    """Server selection and connect timeout: an outage surfaces as an error within 3 s, never a hang."""
    mongo_op_timeout_s: float = 30.0
    """Seconds one database operation may take. A restore whose operation outlasts it waits until the database
    answers again and starts over (the report lists each stall); snapshots and the follower give up and retry."""
