"""What only a real cluster shows: the kind cluster of deploy/kind/cluster.yaml runs its nodes, schedules and
restarts pods of a locally built image, carries traffic between nodes, and enforces network policies (with the
offline node image, through deploy/kind/podnet/)."""
from __future__ import annotations

import ipaddress
import time
import uuid

import pytest

from chaoslib_ext.targets.kubernetes.driver import KILL_COMMANDS
from kind_cluster import Kube
from kind_pins import pins
from workloads import (claim, connection_holder, deny_egress, deployment, echo_server, echo_through, pod,
                       pod_with_claim, service)

POD_SUBNET = ipaddress.ip_network("10.244.0.0/16")

# The session's cluster may first be built from source (about 15 min on a cold machine): only the tests are timed.
pytestmark = pytest.mark.timeout(300, func_only=True)


def workers(kube: Kube) -> list[str]:
    return sorted(n["metadata"]["name"] for n in kube.json("get", "nodes")["items"]
                  if "node-role.kubernetes.io/control-plane" not in n["metadata"].get("labels", {}))


def test_every_node_is_ready_on_the_pinned_kubernetes(kube: Kube):
    nodes = kube.json("get", "nodes")["items"]
    roles = sorted("control-plane" if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"] else "worker"
                   for n in nodes)
    assert roles == ["control-plane", "worker", "worker"]
    for node in nodes:
        name = node["metadata"]["name"]
        ready = [c["status"] for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready == ["True"], f"node {name} is not Ready: {node['status']['conditions']}"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == pins()["KUBERNETES_VERSION"]
        assert ipaddress.ip_network(node["spec"]["podCIDR"]).subnet_of(POD_SUBNET)
    network = [ds for ds in kube.json("-n", "kube-system", "get", "daemonsets")["items"]
               if ds["metadata"]["name"] in ("kindnet", "gameday-podnet")]
    assert [ds["status"]["numberReady"] for ds in network] == [3], "one pod network, ready on every node"


def test_a_pod_of_a_locally_built_image_runs_and_takes_exec(kube: Kube, test_image: str, namespace: str):
    kube.apply(pod("local-image", test_image, "sleep 3600"), namespace)
    status = kube.ready_pod(namespace, "local-image")["status"]
    assert status["containerStatuses"][0]["image"].endswith(test_image)
    token = uuid.uuid4().hex
    proc = kube.exec(namespace, "local-image", f"echo {token} $(hostname) $(cat /proc/1/comm)")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [token, "local-image", "tini"]


def test_a_deleted_pod_of_a_deployment_is_replaced(kube: Kube, test_image: str, namespace: str):
    kube.apply(deployment("replaced", test_image, "sleep 3600"), namespace)
    kube.run("-n", namespace, "rollout", "status", "deployment/replaced", "--timeout=120s")
    first = kube.json("-n", namespace, "get", "pods", "-l", "app=replaced")["items"][0]["metadata"]
    deleted_at = time.monotonic()
    kube.run("-n", namespace, "delete", "pod", first["name"], "--wait=false")

    def replacement():
        for item in kube.json("-n", namespace, "get", "pods", "-l", "app=replaced")["items"]:
            ready = any(c["type"] == "Ready" and c["status"] == "True" for c in item["status"].get("conditions", []))
            if item["metadata"]["uid"] != first["uid"] and ready:
                return item["metadata"]["name"]
        return None
    name = kube.wait_for("a Ready replacement of the deleted pod", replacement, timeout=120)
    print(f"pod {first['name']} deleted; {name} Ready {time.monotonic() - deleted_at:.1f} s later")
    assert name != first["name"]


def test_a_container_killed_from_inside_restarts_in_place(kube: Kube, test_image: str, namespace: str):
    """The driver's own kill command (restart mode), run as the driver runs it: through exec."""
    kube.apply(pod("killed", test_image, "sleep 3600"), namespace)
    before = kube.ready_pod(namespace, "killed")
    kube.proc("-n", namespace, "exec", "killed", "--", *KILL_COMMANDS["SIGKILL"])

    def restarted():
        item = kube.json("-n", namespace, "get", "pod", "killed")
        status = item["status"]["containerStatuses"][0]
        return item if status["restartCount"] >= 1 and "running" in status["state"] else None
    after = kube.wait_for("the killed container running again", restarted, timeout=120)
    status = after["status"]["containerStatuses"][0]
    assert after["metadata"]["uid"] == before["metadata"]["uid"], "restarted in place, not replaced"
    assert status["restartCount"] == before["status"]["containerStatuses"][0]["restartCount"] + 1
    # tini exits 128 + the signal that killed its child: SIGKILL, 9.
    assert status["lastState"]["terminated"]["exitCode"] == 137


def test_pods_on_different_nodes_reach_each_other_directly_and_through_a_service(
        kube: Kube, test_image: str, namespace: str):
    first, second = workers(kube)
    kube.apply(echo_server("echo", test_image, node=first), namespace)
    kube.apply(service("echo"), namespace)
    kube.apply(pod("client", test_image, "sleep 3600", node=second), namespace)
    server_ip = kube.ready_pod(namespace, "echo")["status"]["podIP"]
    kube.ready_pod(namespace, "client")
    assert ipaddress.ip_address(server_ip) in POD_SUBNET
    assert echo_through(kube, namespace, "client", server_ip), f"no echo from {server_ip} across nodes"
    # The Service's DNS name: CoreDNS and kube-proxy over the same pod network.
    assert echo_through(kube, namespace, "client", f"echo.{namespace}.svc.cluster.local"), "no echo via the Service"


def test_deny_egress_policy_holds_a_connection_already_open_until_it_is_removed(
        kube: Kube, test_image: str, namespace: str):
    """What a partition needs from the policy engine: a NetworkPolicy stops new connections and the ones already
    open, and once it is gone the same connection carries on, held and not reset. kube-network-policies accepts
    the packets of established connections before it looks at any policy; our patch to it drops the conntrack
    entries of connections a policy now denies, so their next packets are evaluated as new ones."""
    first, second = workers(kube)
    kube.apply(echo_server("echo", test_image, node=first), namespace)
    server_ip = kube.ready_pod(namespace, "echo")["status"]["podIP"]
    kube.apply(connection_holder("holder", test_image, server_ip, node=second), namespace)
    kube.ready_pod(namespace, "holder")

    def echoes() -> int:
        return kube.run("-n", namespace, "logs", "holder").count("echoed ")
    kube.wait_for("echoes on the held connection", lambda: echoes() >= 5, timeout=60)
    assert echo_through(kube, namespace, "holder", server_ip), "a new connection works before the policy"

    def still_for(seconds: float) -> bool:
        before = echoes()
        time.sleep(seconds)
        return echoes() == before

    kube.apply(deny_egress("deny-egress", "holder"), namespace)
    applied = time.monotonic()
    kube.wait_for("the open connection held", lambda: still_for(1.0), timeout=60, every=0)
    print(f"deny-egress held the open connection within {time.monotonic() - applied:.1f} s of being applied")
    assert not echo_through(kube, namespace, "holder", server_ip, 2), "a new connection got through the policy"
    held = echoes()
    time.sleep(3)
    assert echoes() == held, "the open connection carried echoes while the policy was in force"

    kube.run("-n", namespace, "delete", "networkpolicy", "deny-egress")
    removed = time.monotonic()
    kube.wait_for("echoes on the same connection once the policy is gone", lambda: echoes() > held, timeout=60,
                  every=0.5)
    print(f"the held connection carried echoes again {time.monotonic() - removed:.1f} s after the policy went")
    assert "connection closed" not in kube.run("-n", namespace, "logs", "holder"), "the connection was reset"
    assert echo_through(kube, namespace, "holder", server_ip, 2), "new connections work once the policy is gone"


def test_a_claim_of_the_default_storage_class_keeps_its_data_for_the_next_pod(
        kube: Kube, test_image: str, namespace: str):
    """What the stack's StatefulSets (Kafka, MongoDB, the backups) need from the cluster's default storage."""
    classes = kube.json("get", "storageclasses")["items"]
    default = [c for c in classes
               if c["metadata"].get("annotations", {}).get("storageclass.kubernetes.io/is-default-class") == "true"]
    assert len(default) == 1, f"one default StorageClass, not {[c['metadata']['name'] for c in classes]}"
    token = uuid.uuid4().hex
    kube.apply(claim("data"), namespace)
    kube.apply(pod_with_claim("writer", test_image, f"echo {token} > /data/token && sleep 3600", "data"), namespace)
    kube.ready_pod(namespace, "writer")
    bound = kube.json("-n", namespace, "get", "pvc", "data")
    assert bound["status"]["phase"] == "Bound"
    volume = bound["spec"]["volumeName"]
    kube.run("-n", namespace, "delete", "pod", "writer", "--grace-period=1")
    kube.apply(pod_with_claim("reader", test_image, "sleep 3600", "data"), namespace)
    kube.ready_pod(namespace, "reader")
    assert kube.exec(namespace, "reader", "cat /data/token").stdout.strip() == token
    kube.run("-n", namespace, "delete", "pod", "reader", "--grace-period=1")
    kube.run("-n", namespace, "delete", "pvc", "data")
    # Reclaim policy Delete: the provisioner removes the volume (and its directory) once the claim is gone.
    kube.wait_for(f"volume {volume} deleted with its claim",
                  lambda: kube.proc("get", "pv", volume).returncode != 0, timeout=90, every=1)


def test_no_node_pulled_an_image(kube: Kube):
    """Every image the cluster and these tests ran was in the nodes already (the node image's own, or loaded from
    the local engine): no node asked a registry for one, which on our machines could not have answered."""
    pulls = kube.json("get", "events", "-A", "--field-selector", "reason=Pulling")["items"]
    failed = kube.json("get", "events", "-A", "--field-selector", "reason=Failed")["items"]
    assert [e["message"] for e in pulls] == []
    assert [e["message"] for e in failed if "pull" in e["message"].lower()] == []
