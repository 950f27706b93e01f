"""Apache Kafka in KRaft mode from the jars `make deps` fetched from Maven Central: where they are, each node's
configuration, storage formatting and command line. No release tarball and no scripts: ``java -cp libs/*
kafka.Kafka server.properties``, as ``bin/kafka-server-start.sh`` ends up running.

Each node is a combined broker and controller with its own data directory, so a restarted node keeps its logs.
"""
from __future__ import annotations

import base64
import os
import shlex
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

KAFKA_VERSION = "4.1.0"
"""The broker version of both targets: deploy/k8s runs apache/kafka:4.1.0, deps/kafka/pom.xml fetches the same."""
JMX_EXPORTER_VERSION = "1.0.1"
"""Prometheus' JMX exporter agent (deps/kafka/pom.xml pins the same)."""

HEAP_OPTS = ("-Xms128m", "-Xmx384m")
"""Three brokers share 2 cores and a few GiB with the rest of the stack; Kafka's default heap is 1 GiB each.
``KAFKA_HEAP_OPTS`` in the environment replaces it, as with Kafka's own scripts."""
JVM_PERFORMANCE_OPTS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
"""Small-machine options: one GC thread and the quick compiler only. With the JVM's defaults (G1, C2) the three
nodes kept both cores busy long after they were ready: the stack started in 12.6-15.8 s instead of 9.0-9.3 s,
each node held about 100 MiB more, and three nodes saturated at 700 events/s where they kept up with 800 with these
(docs/benchmarks.md, "Before and after on Apache Kafka: partition, throughput, ..."). ``KAFKA_JVM_PERFORMANCE_OPTS``
in the environment replaces them, as with Kafka's own scripts."""

MAX_BROKERS = 9

BROKER_SESSION_TIMEOUT_MS = 4000
BROKER_HEARTBEAT_INTERVAL_MS = 1000
"""How soon the controller fences a broker that stopped heartbeating (docs/benchmarks.md has both settings'
figures). Four missed heartbeats, so one slow one does not fence a live broker."""


CONSUMER_GROUP_SESSION_TIMEOUT_MS = 6000
CONSUMER_GROUP_HEARTBEAT_INTERVAL_MS = 500
"""The session and heartbeat of groups on the consumer protocol (KIP-848), which the broker owns: the processor's
own classic-protocol defaults, so both protocols run on one clock. Kafka's defaults (45 s, at least 45 s; 5 s)
would put a crash failover over the 30 s platform budget."""


class KafkaNotInstalled(RuntimeError):
    """The Kafka jars or Java are missing: ``make deps`` installs both."""


def default_cache() -> Path:
    return Path(os.environ.get("GAMEDAY_CACHE") or Path.home() / ".cache" / "chaos-dr-verify")


def kafka_libs(cache: Path | None = None) -> Path:
    """The directory of the broker's jars, or KafkaNotInstalled saying how to get them."""
    libs = (cache or default_cache()) / f"kafka-{KAFKA_VERSION}" / "libs"
    if not any(libs.glob(f"kafka_2.13-{KAFKA_VERSION}.jar")):
        raise KafkaNotInstalled(f"Apache Kafka {KAFKA_VERSION} is not in {libs}: run `make deps` "
                                "(it fetches the jars from Maven Central with Maven, once)")
    return libs


def jmx_exporter_agent(cache: Path | None = None) -> Path:
    """The JMX exporter agent's jar, or KafkaNotInstalled saying how to get it."""
    jar = (cache or default_cache()) / f"kafka-{KAFKA_VERSION}" / "agents" / \
        f"jmx_prometheus_javaagent-{JMX_EXPORTER_VERSION}.jar"
    if not jar.is_file():
        raise KafkaNotInstalled(f"Prometheus' JMX exporter agent {JMX_EXPORTER_VERSION} is not at {jar}: run "
                                "`make deps`")
    return jar


def java_binary() -> str:
    java = shutil.which("java")
    if java is None:
        raise KafkaNotInstalled("java was not found on PATH: Kafka needs Java 17 (`make deps` installs Debian's "
                                "openjdk-17-jre-headless)")
    return java


def new_cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes in URL-safe base64 without padding, as ``kafka-storage random-uuid``.
    Like Kafka's own ``Uuid.randomUuid``, it never starts with ``-``: command-line parsers read that as an option."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


@dataclass(frozen=True)
class KraftNode:
    node_id: int
    host: str
    broker_port: int
    controller_port: int
    data_dir: Path
    advertised_port: int | None = None
    """Where clients and the other nodes reach the broker, when not at its listener (the stack's fault proxy)."""
    voter_port: int | None = None
    """Where the quorum reaches the controller, when not at its listener (the stack's fault proxy)."""
    metrics_port: int | None = None
    """Where the node's JMX exporter agent serves Prometheus metrics; None runs no agent."""

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.broker_port}"

    @property
    def voter(self) -> str:
        return f"{self.node_id}@{self.host}:{self.voter_port or self.controller_port}"

    @property
    def properties_path(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"


def plan_nodes(brokers: int, host: str, ports: list[int], state_dir: Path) -> list[KraftNode]:
    """``brokers`` nodes on ``host``, two ports each (client, controller), data under ``state_dir/kafka-<id>``."""
    if isinstance(brokers, bool) or not isinstance(brokers, int) or not 1 <= brokers <= MAX_BROKERS:
        raise ValueError(f"the number of Kafka brokers must be a whole number from 1 to {MAX_BROKERS}, got {brokers!r}")
    if len(ports) < 2 * brokers:
        raise ValueError(f"{brokers} Kafka brokers need {2 * brokers} ports, got {len(ports)}")
    return [KraftNode(i + 1, host, ports[2 * i], ports[2 * i + 1], state_dir / f"kafka-{i + 1}") for i in range(brokers)]


def copies(brokers: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) on ``brokers`` nodes: 3 and 2, or fewer on a smaller cluster."""
    replicas = min(3, brokers)
    return replicas, min(2, replicas)


def node_properties(node: KraftNode, cluster: list[KraftNode]) -> dict[str, str]:
    """The node's server.properties. Replication is 3 with min.insync.replicas 2 on a 3-node cluster (fewer nodes,
    fewer copies), so one broker can fail without losing an acknowledged write or refusing ``acks=all``.
    Followers replicate from the leader's advertised address, so a proxy there carries replication as well as
    clients."""
    replicas, in_sync = copies(len(cluster))
    return {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(n.voter for n in cluster),
        "listeners": f"PLAINTEXT://{node.host}:{node.broker_port},CONTROLLER://{node.host}:{node.controller_port}",
        # The controller listener is advertised too: Kafka 4.1 otherwise gives the other voters the node's own
        # listener once it leads the quorum (KAFKA-20380), and the quorum's traffic went around the fault proxy.
        "advertised.listeners": (f"PLAINTEXT://{node.host}:{node.advertised_port or node.broker_port},"
                                 f"CONTROLLER://{node.host}:{node.voter_port or node.controller_port}"),
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": str(node.log_dir),
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(in_sync),
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(in_sync),
        "group.initial.rebalance.delay.ms": "0",
        # A crashed broker's partitions wait for the controller to fence it. At Kafka's defaults (9 s, heartbeat
        # every 2 s) a partition could not be written for 13.3 s after a SIGKILL, over the event bus's 10 s.
        "broker.session.timeout.ms": str(BROKER_SESSION_TIMEOUT_MS),
        "broker.heartbeat.interval.ms": str(BROKER_HEARTBEAT_INTERVAL_MS),
        "group.consumer.min.session.timeout.ms": str(CONSUMER_GROUP_SESSION_TIMEOUT_MS),
        "group.consumer.session.timeout.ms": str(CONSUMER_GROUP_SESSION_TIMEOUT_MS),
        "group.consumer.min.heartbeat.interval.ms": str(CONSUMER_GROUP_HEARTBEAT_INTERVAL_MS),
        "group.consumer.heartbeat.interval.ms": str(CONSUMER_GROUP_HEARTBEAT_INTERVAL_MS),
        "auto.create.topics.enable": "false",
    }


LOG4J2_PROPERTIES = """\
status = warn
appender.console.type = Console
appender.console.name = STDOUT
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{ISO8601} kafka %p %c{1}: %m%n
rootLogger.level = WARN
rootLogger.appenderRef.console.ref = STDOUT
logger.kafka.name = kafka.server.KafkaRaftServer
logger.kafka.level = INFO
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = INFO
"""


JMX_EXPORTER_CONFIG_FILE = Path(__file__).with_name("kafka-jmx-exporter.yaml")
"""What each node's JMX exporter agent exports; the Kafka image of the kind cluster carries the same file."""


def write_config(node: KraftNode, cluster: list[KraftNode]) -> None:
    node.data_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={value}" for key, value in node_properties(node, cluster).items()]
    node.properties_path.write_text("\n".join(lines) + "\n")
    (node.data_dir / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
    if node.metrics_port is not None:
        shutil.copyfile(JMX_EXPORTER_CONFIG_FILE, node.data_dir / "jmx-exporter.yaml")


def jvm_options(environ: Mapping[str, str] = os.environ) -> list[str]:
    """Heap and performance options: ours, or Kafka's script variables when set (even to nothing)."""
    heap = environ.get("KAFKA_HEAP_OPTS")
    performance = environ.get("KAFKA_JVM_PERFORMANCE_OPTS")
    return [*(HEAP_OPTS if heap is None else shlex.split(heap)),
            *(JVM_PERFORMANCE_OPTS if performance is None else shlex.split(performance))]


def java_argv(libs: Path, node: KraftNode, main: str, *args: str) -> list[str]:
    return [java_binary(), *jvm_options(), "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={node.data_dir / 'log4j2.properties'}",
            "-cp", f"{libs}/*", main, *args]


def server_argv(libs: Path, node: KraftNode) -> list[str]:
    argv = java_argv(libs, node, "kafka.Kafka", str(node.properties_path))
    if node.metrics_port is not None:
        agent = f"-javaagent:{jmx_exporter_agent()}={node.host}:{node.metrics_port}:{node.data_dir / 'jmx-exporter.yaml'}"
        argv.insert(1, agent)
    return argv


def is_formatted(node: KraftNode) -> bool:
    return (node.log_dir / "meta.properties").exists()


def format_storage(libs: Path, node: KraftNode, cluster_id: str, timeout: float = 120.0) -> None:
    """Format the node's log directory for ``cluster_id`` (every node of a cluster gets the same id). A formatted
    directory is left alone: its data must survive a restart."""
    if is_formatted(node):
        return
    argv = java_argv(libs, node, "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                     "-c", str(node.properties_path))
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"formatting Kafka node {node.node_id} failed (exit {result.returncode}): "
                           f"{(result.stderr or result.stdout).strip()[-2000:]}")


@dataclass(frozen=True)
class NodePorts:
    """One node's ports in a local stack: its own listeners, and the proxy ports that stand for them."""
    listener: int
    controller: int
    client_proxy: int
    controller_proxy: int
    metrics: int


def prepare_stack_cluster(state_dir: Path, host: str, nodes: list[NodePorts]) -> list[list[str]]:
    """A fresh cluster for a local stack, one node per ``NodePorts``, with node ids from 1. The data a previous
    stack left in ``state_dir`` is deleted (each stack starts with empty topics). Each node advertises its client
    proxy and the voter list names the controller proxies, so every link (client, replication, quorum) crosses
    the fault proxy. Formatted with one new cluster id. Returns each node's command line. Raises
    KafkaNotInstalled without the jars or Java, ValueError for a bad number of nodes."""
    libs = kafka_libs()
    jmx_exporter_agent()
    java_binary()
    ports = [port for node in nodes for port in (node.listener, node.controller)]
    planned = plan_nodes(len(nodes), host, ports, state_dir)
    cluster = [replace(node, advertised_port=ports_of.client_proxy, voter_port=ports_of.controller_proxy,
                       metrics_port=ports_of.metrics)
               for node, ports_of in zip(planned, nodes)]
    cluster_id = new_cluster_id()
    for node in cluster:
        shutil.rmtree(node.data_dir, ignore_errors=True)
        write_config(node, cluster)
    with ThreadPoolExecutor(len(cluster)) as pool:  # each format is a JVM start of a few seconds
        list(pool.map(lambda node: format_storage(libs, node, cluster_id), cluster))
    return [server_argv(libs, node) for node in cluster]
