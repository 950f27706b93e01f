"""The processor's consumer group protocol: classic (the members agree, with client-side timings) or consumer
(KIP-848: the broker assigns and owns the timings, and librdkafka refuses the client-side ones)."""
from __future__ import annotations

import pytest
from confluent_kafka import Consumer

from chaos_dr_stack.local.kraft import node_properties, plan_nodes
from chaos_dr_stack.processor.cli import consumer_info, parse_args
from chaos_dr_stack.processor.settings import ProcessorSettings

REQUIRED = ["--port", "8000", "--bootstrap", "127.0.0.1:9092", "--mongo-uri", "mongodb://127.0.0.1:27017"]
CLIENT_TIMINGS = ("session.timeout.ms", "heartbeat.interval.ms", "partition.assignment.strategy")


def test_the_classic_protocol_is_the_default_and_sends_the_client_timings():
    settings, _ = parse_args(REQUIRED)
    config = settings.consumer_config()
    assert settings.group_protocol == "classic" and "group.protocol" not in config
    assert {k: config[k] for k in CLIENT_TIMINGS} == {
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 500, "partition.assignment.strategy": "cooperative-sticky"}
    assert consumer_info(settings) == {"group_protocol": "classic", "socket_timeout_ms": "60000",
                                       "session_timeout_ms": "6000", "heartbeat_interval_ms": "500",
                                       "assignment_strategy": "cooperative-sticky"}


def test_the_consumer_protocol_leaves_the_timings_to_the_broker_and_librdkafka_accepts_the_config():
    settings, _ = parse_args([*REQUIRED, "--group-protocol", "consumer"])
    config = settings.consumer_config()
    assert config["group.protocol"] == "consumer"
    assert not set(CLIENT_TIMINGS) & set(config)
    assert consumer_info(settings) == {"group_protocol": "consumer", "socket_timeout_ms": "60000"}
    Consumer(config).close()  # librdkafka refuses session.timeout.ms and the others under this protocol


def test_librdkafka_refuses_a_client_session_under_the_consumer_protocol():
    # Why consumer_config drops the client timings: if librdkafka ever accepts them, this is worth knowing.
    with pytest.raises(Exception, match="session.timeout.ms` is not supported for `group.protocol=consumer"):
        Consumer({"bootstrap.servers": "127.0.0.1:9092", "group.id": "g", "group.protocol": "consumer",
                  "session.timeout.ms": 6000})


@pytest.mark.parametrize("flag, value", [("--session-timeout-ms", "6000"), ("--heartbeat-interval-ms", "1000"),
                                         ("--assignment-strategy", "range")])
def test_a_client_timing_with_the_consumer_protocol_is_refused_by_name(capsys, flag, value):
    with pytest.raises(SystemExit) as exited:
        parse_args([*REQUIRED, "--group-protocol", "consumer", flag, value])
    assert exited.value.code == 2
    assert f"{flag} cannot be used with --group-protocol consumer" in capsys.readouterr().err


def test_an_unknown_protocol_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_args([*REQUIRED, "--group-protocol", "share"])
    assert "invalid choice: 'share'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="group_protocol must be one of classic, consumer, got 'share'"):
        ProcessorSettings(name="p", bootstrap="b", mongo_uri="m", group_protocol="share")


def test_the_brokers_give_consumer_protocol_groups_the_processors_classic_timings(tmp_path):
    cluster = plan_nodes(3, "127.0.0.1", [9092, 9093, 9094, 9095, 9096, 9097], tmp_path)
    props = node_properties(cluster[0], cluster)
    defaults = ProcessorSettings(name="p", bootstrap="b", mongo_uri="m")
    assert props["group.consumer.session.timeout.ms"] == str(defaults.session_timeout_ms)
    assert props["group.consumer.heartbeat.interval.ms"] == str(defaults.heartbeat_interval_ms)
    # The broker refuses to start when a group's session is under its floor (45 s by default).
    assert int(props["group.consumer.min.session.timeout.ms"]) <= defaults.session_timeout_ms
    assert int(props["group.consumer.min.heartbeat.interval.ms"]) <= defaults.heartbeat_interval_ms


def test_a_failover_finding_names_the_consumer_protocol_instead_of_a_client_session():
    from probes.failover import _finding

    words = _finding({"p95": 6.97, "max": 7.03, "n": 5, "budget_seconds": 30.0}, "SIGKILL",
                     {"group_protocol": "consumer", "socket_timeout_ms": "60000"})
    assert words.endswith("is within the 30 s platform budget; the processor runs the consumer group protocol "
                          "(KIP-848: the broker owns the session)")
