"""The stack's Kafka topics (docs/local-stack-contract.md). Tansu keeps them in memory only, so the runner
creates them at start and again every time the broker has restarted."""
from __future__ import annotations

import asyncio
import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

log = logging.getLogger(__name__)

TOPICS = {"gpu-events": 4, "token-events": 2, "events-dlq": 1}
"""Topic name → partition count."""


def create_topics(bootstrap: str, timeout: float = 5.0) -> list[str]:
    """Create every missing topic. Returns the names created; an existing topic is left as it is."""
    # log_level 4 (warning): librdkafka's info lines about its own teardown are noise in the runner's log.
    admin = AdminClient({"bootstrap.servers": bootstrap, "socket.timeout.ms": int(timeout * 1000), "log_level": 4})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in TOPICS.items()],
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


async def ensure_topics(bootstrap: str) -> list[str]:
    """One attempt, off the event loop (librdkafka blocks). The supervisor retries it at each readiness probe
    until it succeeds, and keeps the broker not ready meanwhile."""
    created = await asyncio.to_thread(create_topics, bootstrap)
    log.info("topics ready on %s (created: %s)", bootstrap, ", ".join(created) or "none")
    return created
