"""The game-day driver of the Kubernetes target against a real API server and real kubelets: what
tests/unit/test_kubernetes_target.py checks against kmock, here done by the cluster itself (the kubelet restarts the
killed container, the Deployment replaces the deleted pod, the policy engine drops the partitioned packets, the
garbage collector removes an expired partition with its reaper). The proxy-based faults need the stack's own
services and are checked where the stack runs on the cluster."""
from __future__ import annotations

import time

import pytest
from kind_cluster import Kube
from workloads import component, echo_server, echo_through, pod

from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration
from chaoslib_ext.targets.kubernetes import CHAOS_MADE, MANAGED_BY_LABEL
from chaoslib_ext.targets.kubernetes.objects import incarnation

pytestmark = pytest.mark.timeout(300, func_only=True)
NAME_LABEL = "app.kubernetes.io/name"


@pytest.fixture
def target_in(kube: Kube, namespace: str, test_image: str, monkeypatch):
    """Make the driver for the test's namespace of the test cluster, as a game day's environment would."""
    for var in ("KUBERNETES_CONTEXT", "GAMEDAY_ALLOWED_CONTEXTS", "GAMEDAY_K8S_KILL_MODE", "CHAOSTOOLKIT_IN_POD"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("GAMEDAY_KUBE_CONTEXT", kube.context)
    monkeypatch.setenv("GAMEDAY_NAMESPACE", namespace)
    monkeypatch.setenv("GAMEDAY_ALLOWED_NAMESPACES", namespace)
    made = []

    def make(**configuration):
        target = from_configuration({"target": "kubernetes", "kubernetes_reaper_image": test_image, **configuration})
        made.append(target)
        return target
    yield make
    for target in made:
        target.close()


def processors(kube: Kube, namespace: str, image: str, replicas: int = 2) -> list[dict]:
    kube.apply(component("processor", image, replicas), namespace)
    kube.run("-n", namespace, "rollout", "status", "deployment/processor", "--timeout=120s")
    return kube.json("-n", namespace, "get", "pods", "-l", f"{NAME_LABEL}=processor")["items"]


def chaos_objects(kube: Kube, namespace: str) -> list[str]:
    return sorted(kube.run("-n", namespace, "get", "networkpolicies,jobs", "-l", f"{MANAGED_BY_LABEL}={CHAOS_MADE}",
                           "-o", "name").split())


def test_instances_are_the_components_pods_with_the_kubelets_counts(kube, namespace, test_image, target_in):
    pods = {p["metadata"]["name"]: p for p in processors(kube, namespace, test_image)}
    instances = target_in().instances("processor")
    assert sorted(i.name for i in instances) == sorted(pods)
    for instance in instances:
        status = pods[instance.name]["status"]["containerStatuses"][0]
        assert (instance.ready, instance.restarts, instance.state) == (True, 0, "running")
        assert instance.pid == incarnation(status["containerID"])


def test_a_kill_restarts_the_container_in_place_and_the_kubelet_counts_it(kube, namespace, test_image, target_in):
    name = processors(kube, namespace, test_image)[0]["metadata"]["name"]
    target = target_in()
    before = {i.name: i for i in target.instances("processor")}[name]
    killed = target.kill(name, "SIGKILL")
    assert killed.restart_expected and killed.pid == before.pid

    def restarted():
        now = {i.name: i for i in target.instances("processor")}.get(name)
        return now if now and now.restarts == before.restarts + 1 and now.ready else None
    after = kube.wait_for(f"{name} restarted and Ready", restarted, timeout=90)
    assert after.pid != before.pid, "a new container, so a new incarnation"


def test_a_kill_in_delete_mode_gets_the_pod_replaced(kube, namespace, test_image, target_in):
    name = processors(kube, namespace, test_image)[0]["metadata"]["name"]
    target = target_in(kubernetes_kill_mode="delete")
    killed = target.kill(name, "SIGKILL")
    assert not killed.restart_expected

    def replaced():
        instances = target.instances("processor")
        return instances if len(instances) == 2 and name not in {i.name for i in instances} \
            and all(i.ready for i in instances) else None
    kube.wait_for("two Ready processors, the killed one replaced", replaced, timeout=90)


def test_a_partition_cuts_the_processors_new_connections_to_kafka_only_and_expires_with_its_reaper(
        kube, namespace, test_image, target_in):
    processor = processors(kube, namespace, test_image, replicas=1)[0]["metadata"]["name"]
    kube.apply(echo_server("kafka-0", test_image, labels={NAME_LABEL: "kafka"}), namespace)
    kube.apply(echo_server("mongo-0", test_image, labels={NAME_LABEL: "mongo"}), namespace)
    kafka = kube.ready_pod(namespace, "kafka-0")["status"]["podIP"]
    mongo = kube.ready_pod(namespace, "mongo-0")["status"]["podIP"]
    assert echo_through(kube, namespace, processor, kafka) and echo_through(kube, namespace, processor, mongo)

    fault = target_in().partition(["processor"], "hold", 15.0)
    assert chaos_objects(kube, namespace) == [f"job.batch/{fault['reaper']}",
                                              f"networkpolicy.networking.k8s.io/{fault['policy']}"]
    kube.wait_for("the processor cut off from kafka", lambda: not echo_through(kube, namespace, processor, kafka, 2),
                  timeout=30, every=0)
    assert echo_through(kube, namespace, processor, mongo), "the partition cut more than kafka"

    # Nobody heals it: the reaper Job's deadline ends it, the TTL controller deletes it, and the garbage collector
    # deletes the policy it owns.
    kube.wait_for("the expired partition removed by the cluster", lambda: chaos_objects(kube, namespace) == [],
                  timeout=90, every=1)
    print(f"partition expired; the cluster removed it {time.time() - fault['expires_at']:.1f} s after its expiry")
    kube.wait_for("kafka reachable again", lambda: echo_through(kube, namespace, processor, kafka, 2), timeout=30)


def test_heal_removes_the_partition_and_its_reaper_at_once(kube, namespace, test_image, target_in):
    processor = processors(kube, namespace, test_image, replicas=1)[0]["metadata"]["name"]
    kube.apply(echo_server("kafka-0", test_image, labels={NAME_LABEL: "kafka"}), namespace)
    kafka = kube.ready_pod(namespace, "kafka-0")["status"]["podIP"]
    target = target_in()
    target.partition(["processor"], "hold", 120.0)
    kube.wait_for("the processor cut off from kafka", lambda: not echo_through(kube, namespace, processor, kafka, 2),
                  timeout=30, every=0)
    healed = target.heal_partition()
    assert healed["was_active"] is True
    kube.wait_for("no chaos object left", lambda: chaos_objects(kube, namespace) == [], timeout=30)
    kube.wait_for("kafka reachable again", lambda: echo_through(kube, namespace, processor, kafka, 2), timeout=30)


def test_a_held_component_goes_to_zero_and_comes_back(kube, namespace, test_image, target_in):
    processors(kube, namespace, test_image)
    target = target_in()
    target.stop_component("processor", 60.0)
    kube.wait_for("no processor pod left", lambda: target.instances("processor") == [], timeout=60)
    started = target.start_component("processor")
    assert started["was_stopped"] is True and started["replicas"] == 2
    kube.wait_for("two Ready processors again",
                  lambda: [i.ready for i in target.instances("processor")] == [True, True], timeout=90)
    assert chaos_objects(kube, namespace) == []


def test_a_pod_outside_the_stack_or_unknown_is_refused_and_left_alone(kube, namespace, test_image, target_in):
    kube.apply(pod("bystander", test_image, "sleep 3600"), namespace)
    kube.ready_pod(namespace, "bystander")
    target = target_in()
    with pytest.raises(InvalidArgument, match="pod 'bystander' carries no app.kubernetes.io/name label"):
        target.kill("bystander", "SIGKILL")
    with pytest.raises(InvalidArgument, match=f"no pod 'processor-gone' in namespace '{namespace}'"):
        target.kill("processor-gone", "SIGKILL")
    assert kube.json("-n", namespace, "get", "pod", "bystander")["status"]["containerStatuses"][0]["restartCount"] == 0
