"""The stack's Kafka topics (docs/local-stack-contract.md). The runner creates the missing ones whenever a broker
has started: on a new stack that creates them all; after a restart the broker's data still holds them."""
from __future__ import annotations

import asyncio
import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

TOPICS = {"gpu-events": 4, "token-events": 2, "events-dlq": 1}
"""Topic name → partition count."""

APPEND_TIME = {"message.timestamp.type": "LogAppendTime"}
"""Each record's timestamp is when its leader appended it, not when the producer made it: the time it entered
Kafka (the seed's ``ts_kafka_ingest``), so a gap in a partition's timestamps is a gap in its writes."""


def create_topics(bootstrap: str, timeout: float = 5.0, replication_factor: int = 1,
                  config: dict[str, str] | None = None) -> list[str]:
    """Create every missing topic with ``config``. Returns the names created; an existing topic is left as it
    is."""
    # log_level 4 (warning): librdkafka's info lines about its own teardown are noise in the runner's log.
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 4})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=replication_factor, config=dict(config or {}))
         for name, n in TOPICS.items()],
        request_timeout=timeout,
        operation_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return created


async def ensure_topics(bootstrap: str, replication_factor: int = 1, config: dict[str, str] | None = None) -> list[str]:
    """One attempt, off the event loop (librdkafka blocks). The supervisor retries it at each readiness probe
    until it succeeds, and keeps the broker not ready meanwhile: in a cluster, until enough brokers are up for
    ``replication_factor`` copies."""
    created = await asyncio.to_thread(create_topics, bootstrap, replication_factor=replication_factor,
                                      config=config)
    log.info("topics ready on %s (created: %s)", bootstrap, ", ".join(created) or "none")
    return created
