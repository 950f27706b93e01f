"""A real Apache Kafka KRaft node from the jars `make deps` fetched: it starts, takes idempotent ``acks=all``
writes, and keeps them across a SIGKILL and restart."""
from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from chaos_dr_stack.local.kraft import (
    KafkaNotInstalled,
    format_storage,
    java_binary,
    kafka_libs,
    new_cluster_id,
    plan_nodes,
    server_argv,
    write_config,
)
from service_fixtures import broker_answers
from chaos_dr_stack.local.ports import free_base_port

pytestmark = pytest.mark.integration

EVENTS = 200


@pytest.fixture(scope="module")
def libs() -> Path:
    try:
        java_binary()
        return kafka_libs()
    except KafkaNotInstalled as exc:
        pytest.skip(f"no Kafka here: {exc}")


class Broker:
    def __init__(self, libs: Path, node, log: Path):
        self.libs, self.node, self.log = libs, node, log
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> float:
        """Start the node and wait until it answers metadata with itself as a broker; returns the seconds taken."""
        started = time.monotonic()
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(server_argv(self.libs, self.node), stdout=out, stderr=subprocess.STDOUT)
        while time.monotonic() - started < timeout:
            assert self.proc.poll() is None, f"the broker exited {self.proc.returncode}: {self.log.read_text()[-3000:]}"
            if broker_answers(self.node.bootstrap):
                return time.monotonic() - started
            time.sleep(0.2)
        raise AssertionError(f"the broker was not up in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def broker(libs, tmp_path_factory) -> Iterator[Broker]:
    state = tmp_path_factory.mktemp("kraft")
    base = free_base_port(span=2)
    (node,) = plan_nodes(1, "127.0.0.1", [base, base + 1], state)
    write_config(node, [node])
    format_storage(libs, node, new_cluster_id())
    running = Broker(libs, node, state / "kafka.log")
    try:
        print(f"\nKRaft node up in {running.start():.1f} s")
        yield running
    finally:
        running.stop()


def _produce(bootstrap: str, topic: str, count: int) -> list[str]:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                         "linger.ms": 5})
    acked: list[str] = []

    def delivered(err, msg):
        if err is None:
            acked.append(msg.key().decode())

    for i in range(count):
        producer.produce(topic, key=f"event-{i}", value=b"{}", on_delivery=delivered)
    assert producer.flush(30) == 0
    return acked


def _read_all(bootstrap: str, topic: str, expected: int, timeout: float = 60.0) -> list[str]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{time.monotonic_ns()}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    keys: list[str] = []
    deadline = time.monotonic() + timeout
    try:
        while len(keys) < expected and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                keys.append(msg.key().decode())
    finally:
        consumer.close()
    return keys


def test_acknowledged_writes_survive_a_sigkilled_and_restarted_broker(broker):
    admin = AdminClient({"bootstrap.servers": broker.node.bootstrap})
    admin.create_topics([NewTopic("gpu-events", num_partitions=4, replication_factor=1)])["gpu-events"].result(30)
    acked = _produce(broker.node.bootstrap, "gpu-events", EVENTS)
    assert sorted(acked) == sorted(f"event-{i}" for i in range(EVENTS))

    broker.kill()
    restarted_in = broker.start()
    print(f"restarted with its data in {restarted_in:.1f} s")
    assert sorted(_read_all(broker.node.bootstrap, "gpu-events", EVENTS)) == sorted(acked)


def test_the_node_runs_the_version_both_targets_pin(broker):
    jars = {p.name for p in broker.libs.glob("kafka*.jar")}
    assert "kafka_2.13-4.1.0.jar" in jars and "kafka-clients-4.1.0.jar" in jars
    log = broker.log.read_text()
    # The broker logs through log4j2 with this stack's layout, not SLF4J's no-operation fallback.
    assert "SLF4J: Defaulting to no-operation" not in log, log[:2000]
    assert " kafka INFO KafkaRaftServer: " in log or " kafka INFO BrokerServer: " in log, log[:2000]


def test_a_cluster_id_that_starts_with_a_dash_is_not_read_as_an_option(libs, tmp_path):
    base = free_base_port(span=2)
    (node,) = plan_nodes(1, "127.0.0.1", [base, base + 1], tmp_path)
    write_config(node, [node])
    format_storage(libs, node, "-" + new_cluster_id()[1:])
    meta = (node.log_dir / "meta.properties").read_text()
    assert "cluster.id=-" in meta, meta
