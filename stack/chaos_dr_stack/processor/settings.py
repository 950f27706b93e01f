"""Processor settings. Every Kafka knob that experiments compare is a field, set from the CLI."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos_dr_stack.kafka_client import LEADER_DISCOVERY

SOURCE_TOPICS = ("gpu-events", "token-events")
GROUP_PROTOCOLS = ("classic", "consumer")


@dataclass(frozen=True)
class ProcessorSettings:
    name: str
    """Replica name (processor-0 ...): Kafka client.id and the log prefix."""
    bootstrap: str
    mongo_uri: str
    database: str = "ca3"
    group: str = "processor"
    group_protocol: str = "classic"
    """Kafka's consumer group protocol. "classic": the members agree on the assignment, with the session,
    heartbeat and assignment strategy below. "consumer" (KIP-848): the broker assigns, and the session and
    heartbeat are the broker's ``group.consumer.*`` settings (the local stack gives them the same 6000 and 500);
    the three client settings are then not sent, because librdkafka refuses them under that protocol."""
    session_timeout_ms: int = 6000
    """How long the group waits for a dead member, and how long a network blip may last without a rebalance.
    On Apache Kafka a crash hands over up to one heartbeat before this ends (5.0 s at 6000 with a 1 s heartbeat,
    bare broker; about 6 s end to end). Kafka's 45000 default would put a crash failover over the 30 s budget."""
    heartbeat_interval_ms: int = 500
    """How soon a survivor hears of a rebalance: after a graceful leave it learns at its next heartbeat. At 1000
    the graceful failover p95 was 1.26 s over 10 trials, at 500 it was 0.52 s (docs/benchmarks.md, "Consumer group
    protocols end to end"). At most a third of the session timeout."""
    fetch_wait_max_ms: int = 100
    """How long the broker may hold a fetch for data: it bounds the consume latency at low rates."""
    socket_timeout_ms: int = 60000
    """librdkafka's default. A request whose answer never comes (a partition that discards bytes, a half-open
    connection) is abandoned, and the connection rebuilt, only after this long: such a partition stalls
    consumption this long however short it is (measured in tests/integration/test_kafka_partition.py)."""
    max_poll_interval_ms: int = 300000
    """A batch retried against an unavailable Mongo longer than this makes the replica leave the group."""
    auto_offset_reset: str = "earliest"
    """A new group reads the topics from the start, so nothing produced before the first start is skipped."""
    assignment_strategy: str = "cooperative-sticky"
    """Survivors keep their partitions during a rebalance."""
    batch_size: int = 500
    batch_timeout_s: float = 0.2
    """consume() returns after this long with whatever arrived: bounds the added latency at low rates."""
    mongo_timeout_ms: int = 2000
    """Server selection and connect timeout of the writer; a longer outage becomes a retried batch."""
    health_timeout_s: float = 0.5
    """Per check in /health; each result is cached for 1 s."""
    write_chunk_size: int = 100
    """Events per insert. A timed-out attempt keeps the chunks already acknowledged, so on a slow database a
    retry re-sends only what is left instead of piling the whole batch again onto a server still working
    on the abandoned one (measured on SecantusDB under load: ~290 inserts/s, a 500-event batch > 5 s)."""
    write_attempt_timeout_s: float = 5.0
    """Bound on one attempt to write a batch (Mongo and dead letters); a 500-event batch takes < 1 s."""
    shutdown_budget_s: float = 6.0
    """After SIGTERM, how long the in-flight batch may keep retrying before it is abandoned uncommitted.
    With one attempt possibly in flight, the exit stays under the contract's 10 s."""

    def __post_init__(self) -> None:
        if self.group_protocol not in GROUP_PROTOCOLS:
            raise ValueError(f"group_protocol must be one of {', '.join(GROUP_PROTOCOLS)}, got {self.group_protocol!r}")

    def consumer_config(self) -> dict[str, Any]:
        if self.group_protocol == "consumer":
            group = {"group.protocol": "consumer"}
        else:
            group = {"session.timeout.ms": self.session_timeout_ms,
                     "heartbeat.interval.ms": self.heartbeat_interval_ms,
                     "partition.assignment.strategy": self.assignment_strategy}
        return {
            "bootstrap.servers": self.bootstrap,
            "group.id": self.group,
            **group,
            "client.id": self.name,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": self.auto_offset_reset,
            "fetch.wait.max.ms": self.fetch_wait_max_ms,
            "socket.timeout.ms": self.socket_timeout_ms,
            "max.poll.interval.ms": self.max_poll_interval_ms,
            **LEADER_DISCOVERY,
        }

    def producer_config(self) -> dict[str, Any]:
        """The dead-letter producer, also the handle /health asks for metadata.

        Not idempotent: after a fatal idempotence error (a fenced or unreconcilable producer id) librdkafka refuses
        every later send, and the replica could dead-letter nothing more until it was replaced, holding its
        partitions. A dead letter sent twice is harmless: each names its source partition and offset."""
        return {
            "bootstrap.servers": self.bootstrap,
            "client.id": f"{self.name}-dlq",
            "enable.idempotence": False,
            "acks": "all",
            "linger.ms": 5,
            # Bounded, so a dead-letter send fails (and the batch is retried) instead of waiting 5 minutes.
            "delivery.timeout.ms": 10000,
            **LEADER_DISCOVERY,
        }
