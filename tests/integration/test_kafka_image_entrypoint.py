"""The offline Kafka image's entrypoint (deploy/kind/images/kafka/run) with the real broker from `make deps`' jars:
the KAFKA_* variables deploy/k8s/kafka.yaml sets become server.properties as in apache/kafka, the log directory is
formatted once, the broker serves, and its topics tool (kafka-topics.sh) creates and lists topics."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from chaos_dr_stack.local.kraft import KafkaNotInstalled, java_binary, kafka_libs
from chaos_dr_stack.local.ports import free_base_port
from service_fixtures import broker_answers

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "deploy" / "kind" / "images" / "kafka"


def manifest_environment() -> dict[str, str]:
    """The broker container's variables in deploy/k8s/kafka.yaml."""
    for doc in yaml.safe_load_all((REPO / "deploy" / "k8s" / "kafka.yaml").read_text()):
        if doc and doc["kind"] == "StatefulSet":
            return {e["name"]: e["value"] for e in doc["spec"]["template"]["spec"]["containers"][0]["env"]}
    raise AssertionError("no StatefulSet in deploy/k8s/kafka.yaml")


@pytest.fixture(scope="module")
def kafka_home(tmp_path_factory) -> Path:
    try:
        java_binary()
        libs = kafka_libs()
    except KafkaNotInstalled as exc:
        pytest.skip(f"no Kafka here: {exc}")
    home = tmp_path_factory.mktemp("kafka-home")
    (home / "libs").symlink_to(libs)
    (home / "config").mkdir()
    (home / "bin").mkdir()
    for name in ("log4j2.properties", "tools-log4j2.properties"):
        shutil.copy(FILES / name, home / "config" / name)
    shutil.copy(FILES / "kafka-tool", home / "bin" / "kafka-tool")
    (home / "bin" / "kafka-topics.sh").symlink_to("kafka-tool")
    return home


def test_the_manifests_variables_make_a_broker_that_serves_and_a_tool_that_creates_topics(kafka_home, tmp_path):
    port = free_base_port(span=2)
    env = {**manifest_environment(), "KAFKA_HOME": str(kafka_home)}
    # One node here: what the manifest's wrapper derives for kafka-0, and a cluster's copies cut to one.
    env["KAFKA_NODE_ID"] = "1"
    for name in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                 "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"):
        env[name] = "1"
    env["KAFKA_LISTENERS"] = f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{port + 1}"
    env["KAFKA_ADVERTISED_LISTENERS"] = f"PLAINTEXT://127.0.0.1:{port}"
    env["KAFKA_CONTROLLER_QUORUM_VOTERS"] = f"1@127.0.0.1:{port + 1}"
    env["KAFKA_LOG_DIRS"] = str(tmp_path / "data" / "logs")
    env["KAFKA_HEAP_OPTS"] = "-Xms128m -Xmx384m"
    env["PATH"] = os.environ["PATH"]
    log = tmp_path / "broker.log"
    with open(log, "wb") as out:
        broker = subprocess.Popen(["bash", str(FILES / "run")], env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while not broker_answers(f"127.0.0.1:{port}"):
            assert broker.poll() is None, f"the entrypoint exited {broker.returncode}: {log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no broker in 90 s: {log.read_text()[-3000:]}"
            time.sleep(0.5)
        properties = (kafka_home / "config" / "server.properties").read_text()
        assert "process.roles=broker,controller" in properties
        assert "offsets.topic.replication.factor=1" in properties
        assert "group.initial.rebalance.delay.ms=0" in properties
        assert "auto.create.topics.enable=false" in properties
        assert "broker.session.timeout.ms=4000" in properties
        assert "heap.opts" not in properties, "a JVM variable became a broker setting"
        assert (tmp_path / "data" / "logs" / "meta.properties").read_text().count("cluster.id=Z2FtZWRheS1zdGFjay0wMQ") == 1

        topics = [str(kafka_home / "bin" / "kafka-topics.sh"), "--bootstrap-server", f"127.0.0.1:{port}"]
        created = subprocess.run([*topics, "--create", "--if-not-exists", "--topic", "gpu-events", "--partitions", "4",
                                  "--replication-factor", "1"], env=env, capture_output=True, text=True, timeout=60)
        assert created.returncode == 0, created.stderr
        described = subprocess.run([*topics, "--describe", "--topic", "gpu-events"], env=env, capture_output=True,
                                   text=True, timeout=60)
        assert described.returncode == 0, described.stderr
        assert "PartitionCount: 4" in described.stdout
    finally:
        broker.send_signal(signal.SIGTERM)
        assert broker.wait(timeout=60) in (0, 143), log.read_text()[-2000:]


def test_an_unknown_tool_name_is_refused(kafka_home):
    (kafka_home / "bin" / "kafka-nonsense.sh").symlink_to("kafka-tool")
    result = subprocess.run([str(kafka_home / "bin" / "kafka-nonsense.sh")], capture_output=True, text=True)
    assert result.returncode == 2
    assert "no tool is called kafka-nonsense.sh" in result.stderr


def test_without_a_cluster_id_the_entrypoint_refuses_to_start(kafka_home):
    result = subprocess.run(["bash", str(FILES / "run")], env={"PATH": os.environ["PATH"], "KAFKA_HOME": str(kafka_home)},
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "CLUSTER_ID must be set" in result.stderr
