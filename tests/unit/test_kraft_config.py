"""The KRaft cluster's plan and configuration, without starting Java."""
from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from stack.local.kraft import KAFKA_VERSION, KafkaNotInstalled, kafka_libs, new_cluster_id, node_properties, plan_nodes

REPO = Path(__file__).resolve().parents[2]


def test_three_nodes_replicate_three_ways_and_need_two_in_sync(tmp_path):
    cluster = plan_nodes(3, "127.0.0.1", list(range(30000, 30006)), tmp_path)
    props = node_properties(cluster[1], cluster)
    assert props["node.id"] == "2" and props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:30001,2@127.0.0.1:30003,3@127.0.0.1:30005"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:30002,CONTROLLER://127.0.0.1:30003"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:30002"
    assert props["log.dirs"] == str(tmp_path / "kafka-2" / "logs")
    assert (props["default.replication.factor"], props["min.insync.replicas"]) == ("3", "2")
    assert props["offsets.topic.replication.factor"] == "3"


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


def test_missing_jars_say_how_to_get_them(tmp_path):
    with pytest.raises(KafkaNotInstalled, match=r"Apache Kafka 4\.1\.0 is not in .*: run `make deps`"):
        kafka_libs(tmp_path)


def test_both_targets_and_the_pom_pin_one_broker_version():
    pom = (REPO / "deps" / "kafka" / "pom.xml").read_text()
    assert f"<kafka.version>{KAFKA_VERSION}</kafka.version>" in pom
    images = set(re.findall(r"image: apache/kafka:(\S+)", (REPO / "deploy" / "k8s" / "kafka.yaml").read_text()))
    assert images == {KAFKA_VERSION}
