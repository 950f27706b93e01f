"""Kubernetes objects as the driver reads and writes them: pods as Instances, and the chaos-made objects of a fault.

Pure functions of their arguments (no API calls), so the shapes are tested without a cluster.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from chaoslib_ext.targets.base import Instance

STACK_NAMESPACE = "app"
"""The namespace deploy/k8s installs the stack into."""
NAME_LABEL = "app.kubernetes.io/name"
"""The label every pod of the stack carries with its component name; instances() and the manifests agree on it."""
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
CHAOS_MADE = "chaos-made"
FAULT_LABEL = "gameday/fault"
EXPIRES_AT_ANNOTATION = "gameday/expires-at"
"""Unix seconds after which a chaos-made object is a leftover that ``sweep`` removes."""
SUBSTITUTE_ANNOTATION = "gameday.local/mongodb-substitute"
"""On a workload that stands in for the real component (deploy/kind/offline: SecantusDB for MongoDB): what, and why."""
PARTITION_FAULT = "kafka-partition"
"""The fault label of a partition and of a broker's isolation: both are Kafka partitions, healed together."""
KAFKA_COMPONENT = "kafka"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
"""The label the StatefulSet controller gives each of its pods, with the pod's name: how one broker is selected."""
ISOLATE_ANNOTATION = "gameday/isolate"
ISOLATED_FROM_ANNOTATION = "gameday/isolated-from"

POD_CIDR = "10.244.0.0/16"
"""kind's pod subnet (set explicitly in deploy/kind/cluster.yaml): a partition denies it except non-broker pods."""

def incarnation(container_id: str | None) -> int | None:
    """A number that changes whenever the container's process does: Kubernetes has no host pid to offer, so the
    ``pid`` of an Instance is the first 28 bits of the container id (a new one for every restart or pod)."""
    if not container_id:
        return None
    digest = container_id.rsplit("/", 1)[-1]
    try:
        return int(digest[:7], 16)
    except ValueError:
        return None


def seconds_of(value: Any) -> float | None:
    return value.timestamp() if value is not None and hasattr(value, "timestamp") else None


def instance_from_pod(pod: Any, component: str) -> Instance:
    status = pod.status
    containers = list(getattr(status, "container_statuses", None) or [])
    container = next((c for c in containers if c.name == component), containers[0] if containers else None)
    ready_condition = next((c for c in (getattr(status, "conditions", None) or []) if c.type == "Ready"), None)
    terminating = pod.metadata.deletion_timestamp is not None
    ready = bool(ready_condition is not None and ready_condition.status == "True" and not terminating)
    state, started_at, pid = "starting", None, None
    if container is not None and container.state is not None:
        if container.state.running is not None:
            started_at = seconds_of(container.state.running.started_at)
            pid = incarnation(container.container_id)
            state = "running" if ready else "starting"
        elif container.state.waiting is not None:
            state = "backoff" if container.state.waiting.reason == "CrashLoopBackOff" else "starting"
        elif container.state.terminated is not None:
            state = "stopped"
    if terminating:
        state = "stopped"
    return Instance(
        name=pod.metadata.name,
        component=component,
        pid=pid,
        started_at=started_at,
        restarts=int(container.restart_count) if container is not None else 0,
        ready=ready,
        state=state,
        ready_at=seconds_of(ready_condition.last_transition_time) if ready else None,
    )


def chaos_metadata(name: str, fault: str, expires_at: float) -> dict:
    return {
        "name": name,
        "labels": {MANAGED_BY_LABEL: CHAOS_MADE, FAULT_LABEL: fault},
        "annotations": {EXPIRES_AT_ANNOTATION: f"{expires_at:.3f}"},
    }


def _egress_policy(metadata: dict, owner: Mapping[str, str], selected: list[dict], unreachable: dict) -> dict:
    """An egress policy for the pods ``selected`` (match expressions) that allows every pod but those matching
    the ``unreachable`` expression, and everything outside the cluster. Owned by the fault's reaper Job, so the
    garbage collector removes it with the Job at the fault's expiry."""
    metadata["ownerReferences"] = [{
        "apiVersion": "batch/v1", "kind": "Job", "name": owner["name"], "uid": owner["uid"],
        "blockOwnerDeletion": False,
    }]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata,
        "spec": {
            "podSelector": {"matchExpressions": selected},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [unreachable]}}]},
                {"to": [{"ipBlock": {"cidr": "0.0.0.0/0", "except": [POD_CIDR]}}]},
            ],
        },
    }


def partition_policy(name: str, services: Iterable[str], expires_at: float, owner: Mapping[str, str]) -> dict:
    """An egress policy for the pods of ``services`` that allows everything but the broker's pods.

    Standard NetworkPolicies only add allowances, so a deny works only because the stack's own policies restrict
    ingress alone (deploy/k8s/network-policies.yaml): this is the one egress policy selecting these pods."""
    return _egress_policy(
        chaos_metadata(name, PARTITION_FAULT, expires_at), owner,
        [{"key": NAME_LABEL, "operator": "In", "values": sorted(services)}],
        {"key": NAME_LABEL, "operator": "NotIn", "values": [KAFKA_COMPONENT]},
    )


def isolation_policies(name: str, node: str, others: Iterable[str], expires_at: float,
                       owner: Mapping[str, str]) -> list[dict]:
    """Two egress policies that cut the Kafka pod ``node`` from the ``others``, both ways, and nothing else: the
    node reaches every pod but the other nodes (its replication fetches and quorum votes), and the other nodes
    every pod but it. Nothing restricts ingress, so clients and Prometheus still reach every node.

    Both ways matter: a policy engine that re-evaluates established connections (ours does) turns the replies
    of a denied connection into new flows in the other direction, which the second policy denies. The first
    policy carries the ``gameday/isolate`` annotation, the second ``gameday/isolated-from``."""
    others = sorted(set(others) - {node})
    if not others:
        raise ValueError(f"isolating {node!r} needs other Kafka nodes to cut it from")
    broker = {"key": NAME_LABEL, "operator": "In", "values": [KAFKA_COMPONENT]}
    isolated = chaos_metadata(name, PARTITION_FAULT, expires_at)
    isolated["annotations"][ISOLATE_ANNOTATION] = node
    rest = chaos_metadata(f"{name}-others", PARTITION_FAULT, expires_at)
    rest["annotations"][ISOLATED_FROM_ANNOTATION] = node
    return [
        _egress_policy(isolated, owner, [broker, {"key": POD_NAME_LABEL, "operator": "In", "values": [node]}],
                       {"key": POD_NAME_LABEL, "operator": "NotIn", "values": others}),
        _egress_policy(rest, owner, [broker, {"key": POD_NAME_LABEL, "operator": "In", "values": others}],
                       {"key": POD_NAME_LABEL, "operator": "NotIn", "values": [node]}),
    ]


def reaper_job(name: str, ttl_seconds: float, expires_at: float, image: str) -> dict:
    """A Job that does nothing but exist for ``ttl_seconds``: its deadline ends it, the TTL controller deletes
    it, and the garbage collector deletes what it owns. No RBAC and no client in the cluster are needed."""
    deadline = max(1, math.ceil(ttl_seconds))
    metadata = chaos_metadata(name, PARTITION_FAULT, expires_at)
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": 0,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": {MANAGED_BY_LABEL: CHAOS_MADE, FAULT_LABEL: PARTITION_FAULT,
                                        NAME_LABEL: "chaos-reaper"}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 0,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{
                        "name": "reaper",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["sleep", str(deadline + 3600)],
                        "resources": {"requests": {"cpu": "5m", "memory": "8Mi"},
                                      "limits": {"cpu": "20m", "memory": "32Mi"}},
                    }],
                },
            },
        },
    }


def expiry_of(metadata: Any) -> float | None:
    annotations = (metadata.annotations or {}) if metadata is not None else {}
    try:
        value = float(annotations[EXPIRES_AT_ANNOTATION])
    except (KeyError, TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def leftover_reason(metadata: Any, now: float) -> str | None:
    """Why a chaos-made object should be removed now, or None to keep it: expired, or without a readable expiry
    (nothing could ever say when it ends)."""
    labels = (metadata.labels or {}) if metadata is not None else {}
    if labels.get(MANAGED_BY_LABEL) != CHAOS_MADE:
        return None
    expires_at = expiry_of(metadata)
    if expires_at is None:
        return f"no valid {EXPIRES_AT_ANNOTATION} annotation"
    if expires_at <= now:
        return f"expired {now - expires_at:.0f} s ago"
    return None


def is_chaos_made(obj: Any, fault: str | None = None) -> bool:
    labels = obj.metadata.labels or {}
    return labels.get(MANAGED_BY_LABEL) == CHAOS_MADE and (fault is None or labels.get(FAULT_LABEL) == fault)
