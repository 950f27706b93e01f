"""The processor's runtime helpers: the Kafka reachability check, plus the shared service plumbing
(chaos_dr_stack.service_runtime), re-exported here for the modules that import it from this path."""
from __future__ import annotations

from chaos_dr_stack.service_runtime import CachedCheck, backoff_delay, serve

__all__ = ["CachedCheck", "backoff_delay", "kafka_reachable", "serve"]


def kafka_reachable(client, topic: str, timeout: float = 0.5) -> bool:
    """A metadata request for one topic. ``client`` is a confluent-kafka Producer or AdminClient,
    never the consumer: consumer handles are not safe to share with the consume thread."""
    metadata = client.list_topics(topic=topic, timeout=timeout)
    return len(metadata.brokers) > 0
