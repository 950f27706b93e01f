"""The producers' application metrics (docs/local-stack-contract.md)."""
from __future__ import annotations

from prometheus_client import Counter, Gauge

PRODUCED = Counter("app_produced_messages", "Events acknowledged by the broker", ["producer_id", "topic"])
PRODUCE_ERRORS = Counter("app_produce_errors", "Events whose delivery failed")
TARGET_RATE = Gauge("app_producer_target_rate", "Configured events per second, per producer")
PRODUCER_REPLACED = Counter("app_producer_replaced", "Idempotent producers replaced by a new one after a fatal error")
