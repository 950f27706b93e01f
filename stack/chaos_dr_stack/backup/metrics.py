"""The agent's Prometheus series (docs/local-stack-contract.md, "Backup agent")."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

LAST_SUCCESS = Gauge("backup_last_success_timestamp_seconds", "When the newest snapshot finished (Unix seconds).")
LAST_SIZE = Gauge("backup_last_size_bytes", "Bytes of the newest snapshot, every file included.")
LAST_DURATION = Gauge("backup_last_duration_seconds", "Seconds the newest snapshot took, offsets to last byte.")
CHANGELOG_LAG = Gauge("backup_changelog_lag_seconds",
                      "Seconds since the change stream was last seen caught up with the database.")
SNAPSHOTS = Counter("backup_snapshots_total", "Snapshots attempted, by outcome (ok, failed).", ["outcome"])
CHANGELOG_RECORDS = Gauge("backup_changelog_records_total", "Changes appended to the change log by this process.")
STORE_BYTES = Gauge("backup_store_bytes", "Bytes in the backup store: snapshots and change log.")
BACKUPS = Gauge("backup_backups", "Snapshots in the store.")
RESTORES = Counter("backup_restores_total", "Restores, by outcome (ok, failed).", ["outcome"])
