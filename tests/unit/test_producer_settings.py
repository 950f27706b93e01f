"""The producers' librdkafka settings that decide how fast writes leave a broker cut from the rest of the cluster."""
from __future__ import annotations

from chaos_dr_stack.producers.worker import ProducerSettings


def test_an_unanswered_connection_is_dropped_only_after_the_brokers_ack_timeout():
    config = ProducerSettings(bootstrap="127.0.0.1:9092").producer_config("producer-0-test")
    # Dropping the connection sooner would cut short writes a healthy leader is still entitled to hold.
    assert config["socket.timeout.ms"] > config["request.timeout.ms"]
    # Within the event bus's 10 s, so a producer stuck behind a cut broker moves in time.
    assert config["socket.timeout.ms"] < 10_000


def test_a_producer_keeps_a_connection_to_every_broker_and_refreshes_leaders_every_second():
    config = ProducerSettings(bootstrap="127.0.0.1:9092").producer_config("producer-0-test")
    assert config["enable.sparse.connections"] is False
    assert config["topic.metadata.refresh.interval.ms"] == 1000
    assert config["enable.idempotence"] is True and config["client.id"] == "producer-0-test"
