"""The local stack on a three-node Apache Kafka cluster (`--kafka-brokers 3`): each node a combined broker and
controller behind its own fault proxy port, every topic replicated three times with two copies required in sync.
One node SIGKILLed: the pipeline keeps going on the other two, the runner restarts the node with its data, the
replicas catch up, and no acknowledged event is lost."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from confluent_kafka.admin import AdminClient, ConfigResource
from test_kraft_stack import MISSING
from waiting import wait_for

from probes.processing import delivery_report
from chaos_dr_stack.local.api import LocalStack, pick_base_port
from chaos_dr_stack.local.procs import read_cmdline
from chaos_dr_stack.local.topics import TOPICS

pytestmark = pytest.mark.integration
if MISSING:
    pytestmark = [pytestmark, pytest.mark.skip(reason=MISSING)]


@pytest.fixture(scope="module")
def stack(stack_binaries, stack_dirs):
    with LocalStack(state_dir=stack_dirs("kraft-cluster"), rate=5, timeout=240,
                    runner_args=("--kafka-brokers", "3")) as running:
        yield running


def nodes(control: str) -> dict[str, dict]:
    instances = httpx.get(control + "/instances", params={"component": "kafka"}, timeout=5).json()["instances"]
    return {i["name"]: i for i in instances}


def prometheus_values(stack, query: str) -> dict[str, float]:
    """pod → value of an instant query per Kafka node."""
    result = httpx.get(stack.endpoints["prometheus"] + "/api/v1/query", params={"query": query},
                       timeout=5).json()["data"]["result"]
    return {r["metric"].get("pod", ""): float(r["value"][1]) for r in result}


def under_replicated(stack) -> float:
    return sum(prometheus_values(stack, 'kafka_server_replicamanager_underreplicatedpartitions{job="kafka"}').values())


def replicas(bootstrap: str) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
    """(topic, partition) → (leader, replicas, in-sync replicas), for the contract's topics."""
    metadata = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=10)
    return {(name, p.id): (p.leader, sorted(p.replicas), sorted(p.isrs))
            for name in TOPICS if name in metadata.topics for p in metadata.topics[name].partitions.values()}


def test_three_nodes_each_behind_its_proxy_replicate_every_topic_three_ways(stack):
    control, bootstrap = stack.endpoints["control"], stack.endpoints["kafka_bootstrap"]
    running = nodes(control)
    assert sorted(running) == ["kafka-1", "kafka-2", "kafka-3"] and all(n["ready"] for n in running.values())
    for node in running.values():
        cmdline = read_cmdline(node["pid"]) or []
        assert "kafka.Kafka" in cmdline and Path(cmdline[0]).name == "java", cmdline
    base = stack.base_port
    assert bootstrap == f"127.0.0.1:{base + 1},127.0.0.1:{base + 26},127.0.0.1:{base + 27}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    advertised = sorted((b.id, b.port) for b in admin.list_topics(timeout=10).brokers.values())
    assert advertised == [(1, base + 1), (2, base + 26), (3, base + 27)]  # clients come back through the proxies
    layout = replicas(bootstrap)
    assert Counter(topic for topic, _ in layout) == Counter(TOPICS)
    assert all(r == [1, 2, 3] and isr == [1, 2, 3] for _, r, isr in layout.values()), layout
    config = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, "gpu-events")])
    (entries,) = [future.result(10) for future in config.values()]
    assert entries["min.insync.replicas"].value == "2"
    report = delivery_report(since="start", settle_timeout=30, configuration={"local_control_url": control})
    assert report["lost"] == 0 and report["checked"] > 0, report


def links(control: str) -> set[tuple[str, str]]:
    body = httpx.get(control + "/faults/kafka-partition", timeout=5).json()
    return {(link["source"], link["destination"]) for link in body["links"]}


def test_replication_and_the_quorum_cross_the_proxy_attributed_to_their_node(stack):
    control = stack.endpoints["control"]
    # On a fresh cluster every node leads some partitions and follows the rest, so each follower fetches from each
    # leader: all six directed links show up, each attributed to the node that opened it.
    between_nodes = {(f"kafka-{a}", f"kafka-{b}") for a in (1, 2, 3) for b in (1, 2, 3) if a != b}
    seen = wait_for(lambda: between_nodes <= (found := links(control)) and found, 30,
                    "connections between every pair of nodes through the proxy", interval=0.5)
    assert {("processor", f"kafka-{n}") for n in (1, 2, 3)} & seen, seen
    kafka_metrics = prometheus_values(stack, 'kafka_server_replicamanager_leadercount{job="kafka"}')
    assert sorted(kafka_metrics) == ["kafka-1", "kafka-2", "kafka-3"] and all(kafka_metrics.values()), kafka_metrics


def test_a_sigkilled_node_stops_nothing_and_catches_up_after_its_restart(stack):
    control, bootstrap = stack.endpoints["control"], stack.endpoints["kafka_bootstrap"]
    leaders = Counter(leader for leader, _, _ in replicas(bootstrap).values())
    busiest = f"kafka-{leaders.most_common(1)[0][0]}"
    killed = httpx.post(f"{control}/instances/{busiest}/kill", json={"signal": "SIGKILL"}, timeout=5).json()
    killed_at = time.time()
    # With two of three copies left, min.insync.replicas 2 still accepts acks=all writes: events keep coming.
    time.sleep(5)
    during = delivery_report(since=killed_at, settle_timeout=30, configuration={"local_control_url": control})
    assert during["checked"] > 0 and during["lost"] == 0, during
    node = wait_for(lambda: (n := nodes(control)[busiest])["ready"] and n["pid"] != killed["pid"] and n,
                    90, f"{busiest} ready again", interval=0.2)
    assert node["restarts"] == 1 and node["last_exit_code"] == -9, node
    caught_up = wait_for(lambda: all(isr == [1, 2, 3] for _, _, isr in replicas(bootstrap).values()),
                         90, "every partition's replicas in sync again", interval=0.5)
    print(f"{busiest} killed; in sync again {time.time() - killed_at:.1f} s after the kill")
    assert caught_up
    report = delivery_report(since="start", settle_timeout=60, configuration={"local_control_url": control})
    assert report["lost"] == 0 and report["lost_events"] == [], report


@pytest.mark.parametrize("body, message", [
    ({"isolate": "kafka-4", "ttl_seconds": 5}, "isolate: unknown Kafka node 'kafka-4'; this cluster has kafka-1, kafka-2, kafka-3"),
    ({"links": [["kafka-1", "kafka-1"]], "ttl_seconds": 5}, "joins a node to itself"),
])
def test_an_unknown_link_is_named_and_refused(stack, body, message):
    response = httpx.put(stack.endpoints["control"] + "/faults/kafka-partition", json=body, timeout=5)
    assert response.status_code == 400 and message in response.json()["detail"], response.text
    assert httpx.get(stack.endpoints["control"] + "/faults/kafka-partition", timeout=5).json()["active"] is None


@pytest.mark.parametrize("args, message", [
    (("--kafka-brokers", "4"), "the number of Kafka brokers must be a whole number from 1 to 3, got 4"),
    (("--kafka-brokers", "0"), "the number of Kafka brokers must be a whole number from 1 to 3, got 0"),
])
def test_a_bad_broker_count_is_named_and_the_runner_exits_2(tmp_path, args, message):
    result = subprocess.run(
        [sys.executable, "-m", "chaos_dr_stack.local.runner", "--base-port", str(pick_base_port()), "--state-dir",
         str(tmp_path / "state"), *args],
        env=dict(os.environ), capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr, result.stderr
