"""The KRaft cluster's plan and configuration, without starting Java."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from chaos_dr_stack.local.kraft import KAFKA_VERSION, KafkaNotInstalled, kafka_libs, new_cluster_id, node_properties, plan_nodes

REPO = Path(__file__).resolve().parents[2]


def test_three_nodes_replicate_three_ways_and_need_two_in_sync(tmp_path):
    cluster = plan_nodes(3, "127.0.0.1", list(range(30000, 30006)), tmp_path)
    props = node_properties(cluster[1], cluster)
    assert props["node.id"] == "2" and props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:30001,2@127.0.0.1:30003,3@127.0.0.1:30005"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:30002,CONTROLLER://127.0.0.1:30003"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:30002,CONTROLLER://127.0.0.1:30003"
    assert props["log.dirs"] == str(tmp_path / "kafka-2" / "logs")
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    assert props["offsets.topic.replication.factor"] == "3"
    # Fenced after 4 missed heartbeats of 1 s: a crashed leader's partitions move within the event bus's 10 s.
    assert (props["broker.session.timeout.ms"], props["broker.heartbeat.interval.ms"]) == ("4000", "1000")


def test_behind_proxies_clients_replicas_and_voters_are_sent_to_the_proxy_ports(tmp_path):
    import dataclasses
    planned = plan_nodes(3, "127.0.0.1", list(range(30000, 30006)), tmp_path)
    cluster = [dataclasses.replace(node, advertised_port=31000 + i, voter_port=32000 + i)
               for i, node in enumerate(planned)]
    props = node_properties(cluster[2], cluster)
    assert props["controller.quorum.voters"] == "1@127.0.0.1:32000,2@127.0.0.1:32001,3@127.0.0.1:32002"
    # The controller listener too: a new quorum leader hands its advertised endpoint to the other voters, which
    # then connect there instead of to the voter list's address.
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:31002,CONTROLLER://127.0.0.1:32002"
    # The node still listens on its own ports; only the proxy connects there.
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:30004,CONTROLLER://127.0.0.1:30005"
    assert props["inter.broker.listener.name"] == "PLAINTEXT"


def test_one_node_for_quick_work_keeps_one_copy(tmp_path):
    (node,) = plan_nodes(1, "127.0.0.1", [30000, 30001], tmp_path)
    props = node_properties(node, [node])
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("1", "1")


@pytest.mark.parametrize(("brokers", "ports", "message"), [
    (0, [1, 2], "whole number from 1 to 9, got 0"),
    ("3", [1, 2, 3, 4, 5, 6], "whole number from 1 to 9, got '3'"),
    (True, [1, 2], "whole number from 1 to 9, got True"),
    (2, [1, 2, 3], "2 Kafka brokers need 4 ports, got 3"),
])
def test_a_bad_broker_count_is_named(tmp_path, brokers, ports, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_nodes(brokers, "127.0.0.1", ports, tmp_path)


def test_a_cluster_id_is_16_bytes_of_url_safe_base64():
    cluster_id = new_cluster_id()
    assert len(cluster_id) == 22 and "=" not in cluster_id
    assert len(base64.urlsafe_b64decode(cluster_id + "==")) == 16


def test_a_cluster_id_never_starts_with_a_dash(monkeypatch):
    import uuid as uuid_module
    # 0xf8 encodes to "-" first in URL-safe base64: 1 id in 64 would otherwise be read as an option by kafka-storage.
    drawn = iter([uuid_module.UUID(bytes=b"\xf8" + bytes(15)), uuid_module.UUID(bytes=b"\x01" + bytes(15))])
    monkeypatch.setattr("chaos_dr_stack.local.kraft.uuid.uuid4", lambda: next(drawn))
    cluster_id = new_cluster_id()
    assert not cluster_id.startswith("-")
    assert base64.urlsafe_b64decode(cluster_id + "==")[0] == 0x01


def test_missing_jars_say_how_to_get_them(tmp_path):
    with pytest.raises(KafkaNotInstalled, match=r"Apache Kafka 4\.1\.0 is not in .*: run `make deps`"):
        kafka_libs(tmp_path)


def test_both_targets_and_the_pom_pin_one_broker_version():
    pom = (REPO / "deps" / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    images = set(re.findall(r"image: apache/kafka:(\S+)", (REPO / "deploy" / "k8s" / "kafka.yaml").read_text()))
    assert images == {KAFKA_VERSION}


def test_a_three_node_stack_gives_each_node_its_own_ports_inside_the_stack_range(tmp_path):
    from chaos_dr_stack.local.layout import StackLayout

    layout = StackLayout(20000, tmp_path, kafka_brokers=3)
    nodes = [(layout.kafka_proxy_port(n), layout.kafka_listener_port(n), layout.kafka_controller_port(n),
              layout.kafka_controller_proxy_port(n), layout.kafka_metrics_port(n)) for n in layout.kafka_nodes]
    assert nodes == [(20001, 20002, 20008, 20032, 20035), (20026, 20028, 20030, 20033, 20036),
                     (20027, 20029, 20031, 20034, 20037)]
    others = {layout.control_port, layout.mongo_port, layout.prometheus_port, layout.alertmanager_port,
              layout.processor_api_port, layout.producers_port, layout.processor_port(0), layout.processor_port(1),
              layout.loadgen_port, layout.provider_simulator_port, layout.ai_decision_port, layout.market_data_port,
              layout.backup_port}
    kafka = {port for node in nodes for port in node}
    assert len(kafka) == 15 and not kafka & others and all(20000 <= p < 20040 for p in kafka)
    assert layout.kafka_bootstrap == "127.0.0.1:20001,127.0.0.1:20026,127.0.0.1:20027"
    assert StackLayout(20000, tmp_path).kafka_bootstrap == "127.0.0.1:20001"


@pytest.mark.parametrize("brokers", [0, 4, 2.0, True, "3"])
def test_a_stack_with_a_bad_number_of_brokers_is_refused(tmp_path, brokers):
    from chaos_dr_stack.local.layout import StackLayout

    with pytest.raises(ValueError, match=r"whole number from 1 to 3, got"):
        StackLayout(20000, tmp_path, kafka_brokers=brokers)


def test_each_node_is_one_supervised_instance_named_by_its_node_id(tmp_path):
    from chaos_dr_stack.local.components import Binaries, build_specs
    from chaos_dr_stack.local.layout import StackLayout

    layout = StackLayout(20000, tmp_path, kafka_brokers=3)
    binaries = Binaries("secantusd", "prometheus", "alertmanager")
    specs = [s for s in build_specs(layout, binaries, 5, kafka_argvs=[["java", str(n)] for n in (1, 2, 3)])
             if s.component == "kafka"]
    assert [(s.name, s.argv, s.ready.port) for s in specs] == [
        ("kafka-1", ("java", "1"), 20002), ("kafka-2", ("java", "2"), 20028), ("kafka-3", ("java", "3"), 20029)]
    (single,) = [s for s in build_specs(StackLayout(20000, tmp_path), binaries, 5, kafka_argvs=[["java"]])
                 if s.component == "kafka"]
    assert single.name == "kafka"
    with pytest.raises(ValueError, match="2 Kafka command lines for a layout of 3 nodes"):
        build_specs(layout, binaries, 5, kafka_argvs=[["java"], ["java"]])


def test_kafkas_own_script_variables_replace_the_jvm_options():
    from chaos_dr_stack.local.kraft import HEAP_OPTS, JVM_PERFORMANCE_OPTS, jvm_options

    assert jvm_options({}) == [*HEAP_OPTS, *JVM_PERFORMANCE_OPTS]
    assert jvm_options({"KAFKA_HEAP_OPTS": "-Xmx1g -Xms1g"}) == ["-Xmx1g", "-Xms1g", *JVM_PERFORMANCE_OPTS]
    assert jvm_options({"KAFKA_JVM_PERFORMANCE_OPTS": "-XX:+UseSerialGC"}) == [*HEAP_OPTS, "-XX:+UseSerialGC"]
    assert jvm_options({"KAFKA_HEAP_OPTS": "", "KAFKA_JVM_PERFORMANCE_OPTS": ""}) == []
