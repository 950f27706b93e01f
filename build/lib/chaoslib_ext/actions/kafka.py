"""Kafka broker faults: crash the broker that leads the most partitions, or isolate it from the other nodes, and
wait for the cluster to be whole.

Which broker leads what comes from each broker's own ``LeaderCount`` gauge, as Prometheus scraped it (job
``kafka``, one series per node, label ``pod: kafka-N``): the same numbers on every target, and no Kafka client
in the framework.
"""
from __future__ import annotations

from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.actions._ready import wait_until_ready
from chaoslib_ext.actions.network import heal_at_expiry
from chaoslib_ext.arguments import number, renamed
from chaoslib_ext.errors import InvalidArgument, NoData
from chaoslib_ext.targets import Target, from_configuration, kill_signal
from chaoslib_ext.targets.base import fault_ttl
from chaoslib_ext.targets.prometheus import prometheus_query

__all__ = ["kill_kafka_broker", "isolate_kafka_broker", "wait_for_kafka_brokers"]

COMPONENT = "kafka"
BUSIEST = "busiest-leader"
ISOLATION_MODES = ("hold", "drop", "reset")
"""The partition modes that cut a link; latency and bandwidth only slow one."""
LEADER_COUNT = 'kafka_server_replicamanager_leadercount{job="kafka"}'
ACTIVE_CONTROLLER = 'kafka_controller_kafkacontroller_activecontrollercount{job="kafka"}'


def leader_counts(target: Target) -> dict[str, int]:
    """Node (``kafka-N``) → partitions it leads, from the brokers' gauges on Prometheus."""
    rows = prometheus_query(target, LEADER_COUNT)
    counts = {r["metric"].get("pod", ""): int(float(r["value"][1])) for r in rows}
    if not counts:
        raise NoData(f"Prometheus has no {LEADER_COUNT}: are the brokers' JMX exporters scraped?")
    return counts


def active_controllers(target: Target) -> list[str]:
    """The nodes (``kafka-N``) that called themselves the KRaft cluster's active controller at the last scrape: one
    normally, none during an election, two while a node cut from the quorum has not yet given the role up. A fault
    on the active controller also moves the cluster's metadata authority, so every broker fault reports it."""
    rows = prometheus_query(target, ACTIVE_CONTROLLER)
    return sorted(r["metric"].get("pod", "") for r in rows if float(r["value"][1]) >= 1)


def _instance_of(node: str, names: list[str]) -> str:
    # A one-node stack names its only instance "kafka"; its gauges still say pod="kafka-1".
    if node in names:
        return node
    if names == [COMPONENT] and node == "kafka-1":
        return COMPONENT
    raise InvalidArgument(f"no Kafka instance {node!r}; the stack runs {', '.join(names) or 'none'}")


def _choose(target: Target, which: str, fault: str) -> tuple[str, str, dict[str, int]]:
    """The instance to fault, its node name and every node's leader count; refuses a cluster of one node and a
    node that is not ready."""
    instances = {i.name: i for i in target.instances(COMPONENT)}
    if len(instances) < 2:
        raise InvalidArgument(f"the cluster has {len(instances)} Kafka node(s): {fault} needs at least 2 "
                              "(start the stack with --kafka-brokers 3)")
    counts = leader_counts(target)
    node = min(counts, key=lambda n: (-counts[n], n)) if which == BUSIEST else which
    name = _instance_of(node, sorted(instances))
    if not instances[name].ready:
        raise InvalidArgument(f"Kafka node {name} is not ready; fault a ready broker")
    return name, node, counts


def _validate_which(which: Any) -> None:
    if not isinstance(which, str) or not which:
        raise InvalidArgument(f"which must be {BUSIEST!r} or a node name like 'kafka-2', got {which!r}")


def _validate(which: Any, signal: Any) -> None:
    _validate_which(which)
    kill_signal(signal)


def kill_kafka_broker(
    which: str = BUSIEST,
    signal: str = "SIGKILL",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Send ``signal`` to one Kafka broker: ``busiest-leader`` (the one leading the most partitions; a tie goes
    to the lowest node id) or a node by name (``kafka-2``). SIGKILL is a crash: its partitions have no leader
    until the controller fences the broker and elects another from the in-sync replicas. The supervisor
    restarts it with its data, and it catches up as a follower.

    Refused (InvalidArgument, before anything is killed) on a one-node cluster, where a crash is an outage and
    not a failover, and when the chosen broker is not ready. Records ``fault.kill`` with the broker, the
    partitions it led, every node's leader count and the active controller. Returns ``{"name", "pid", "signal",
    "killed_at", "led_partitions", "leader_counts", "active_controllers"}``."""
    _validate(which, signal)
    with from_configuration(configuration, secrets) as target:
        name, node, counts = _choose(target, which, "a broker crash")
        controllers = active_controllers(target)
        killed = target.kill(name, signal)
        timeline.record("fault.kill", configuration, at=killed.killed_at, target=target.kind, instance=killed.name,
                        component=COMPONENT, pid=killed.pid, signal=killed.signal,
                        restart_expected=killed.restart_expected, led_partitions=counts.get(node, 0),
                        leader_counts=counts, active_controllers=controllers)
        return {"name": killed.name, "pid": killed.pid, "signal": killed.signal, "killed_at": killed.killed_at,
                "led_partitions": counts.get(node, 0), "leader_counts": counts, "active_controllers": controllers}


def isolate_kafka_broker(
    which: str = BUSIEST,
    ttl_seconds: float = 30.0,
    mode: str = "hold",
    configuration: Configuration = None,
    secrets: Secrets = None,
    duration: float | None = None,
) -> dict:
    """Cut one Kafka node from the other nodes for ``ttl_seconds`` seconds, then heal it: ``busiest-leader`` (the
    one leading the most partitions) or a node by name (``kafka-2``). Replication and the controller quorum are
    cut both ways; clients still reach the node. The controller fences it once its heartbeats stop, and elects
    new leaders for its partitions; the isolated node still answers clients with its last view of the cluster,
    so clients that ask it keep trying it. After the heal it truncates what it appended alone and catches up.

    ``mode`` is ``hold`` (connections kept, nothing forwarded), ``drop`` or ``reset``. The fault's time-to-live
    is ``ttl_seconds`` (at most an hour): it ends by itself even if this process dies. Refused (InvalidArgument, before any fault) on
    a one-node cluster and for a node that is not ready. Records ``fault.partition`` with ``isolate`` (the node),
    the partitions it led, every node's leader count and the active controller, then ``fault.healed``. Returns
    ``{"isolate", "mode", "applied_at", "expires_at", "healed_at", "led_partitions", "leader_counts",
    "active_controllers"}``. ``duration`` is the old name of ``ttl_seconds``, still accepted for one release.
    """
    ttl_seconds = fault_ttl(renamed("ttl_seconds", ttl_seconds, 30.0, "duration", duration))
    _validate_which(which)
    if mode not in ISOLATION_MODES:
        raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(ISOLATION_MODES)}")
    with from_configuration(configuration, secrets) as target:
        name, node, counts = _choose(target, which, "isolating a broker")
        controllers = active_controllers(target)
        fault = target.isolate_kafka_node(name, mode, ttl_seconds)
        applied_at, expires_at = float(fault["applied_at"]), float(fault["expires_at"])
        timeline.record("fault.partition", configuration, at=applied_at, target=target.kind, isolate=name,
                        component=COMPONENT, mode=mode, ttl_seconds=ttl_seconds, expires_at=expires_at,
                        led_partitions=counts.get(node, 0), leader_counts=counts, active_controllers=controllers)
        healed_at = heal_at_expiry(target, expires_at, configuration)
        return {"isolate": name, "mode": mode, "applied_at": applied_at, "expires_at": expires_at,
                "healed_at": healed_at, "led_partitions": counts.get(node, 0), "leader_counts": counts,
                "active_controllers": controllers}


def wait_for_kafka_brokers(
    timeout: float = 120.0, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Wait until every Kafka node is ready; the rollback after a broker fault. Returns ``{"ready": [names],
    "waited_seconds"}``; BudgetExceeded names the nodes still not ready after ``timeout`` seconds."""
    timeout = number("timeout", timeout, greater_than=0)
    return wait_until_ready(COMPONENT, "Kafka nodes", timeout, configuration, secrets)
