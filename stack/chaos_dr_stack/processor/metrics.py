"""The processor's application metrics (docs/local-stack-contract.md). Default registry, so
starlette_exporter's ``handle_metrics`` serves them next to the HTTP metrics."""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

END_TO_END_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0)
"""10 ms .. 30 s, with an edge at exactly 10 s so SLO-3 (stored within 10 s) reads off one bucket."""

PROCESSED = Counter("app_processed_messages", "Valid events written to Mongo (duplicates included)", ["topic"])
DEAD_LETTERS = Counter(
    "app_dead_letter_messages", "Events sent to the dead-letter topic: malformed, or refused by the database", ["reason"]
)
END_TO_END = Histogram(
    "app_end_to_end_seconds",
    "written_at - produced_at of events stored for the first time",
    buckets=END_TO_END_BUCKETS,
)
WRITE_ERRORS = Counter("app_write_errors", "Failed batch write attempts (Mongo or dead-letter topic); each is retried")
COMMIT_ERRORS = Counter("app_commit_errors", "Offset commits that failed; those events will be redelivered")
ASSIGNED_PARTITIONS = Gauge("app_assigned_partitions", "Partitions this replica owns")
ASSIGNMENTS = Counter(
    "app_partition_assignments",
    "Assignments this replica received from its consumer group, empty ones included: > 0 once it has joined",
)
DEPENDENCY_UP = Gauge(
    "app_dependency_up",
    "1 when the replica's newest /health check reached the dependency (kafka, mongo), else 0. Kafka's state is "
    "reported here and in /health's body; only mongo decides readiness (docs/local-stack-contract.md)",
    ["dependency"],
)
CONSUMER = Info(
    "app_consumer",
    "Consumer-group settings this replica runs with; failover findings name them (session.timeout.ms bounds a crash)",
)
