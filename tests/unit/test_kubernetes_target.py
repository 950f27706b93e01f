"""The Kubernetes target against a fake API server over HTTP (kmock), through the official kubernetes client and
chaostoolkit-kubernetes: pod kill, partition create and heal, the blast-radius guard, and the sweep."""
from __future__ import annotations

import base64
import json
import time
from dataclasses import replace

import pytest
from fake_kube import fake_kube, pod

from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, TargetMisconfigured, TargetUnreachable
from chaoslib_ext.targets import from_configuration
from chaoslib_ext.targets.kubernetes import CHAOS_MADE, EXPIRES_AT_ANNOTATION, MANAGED_BY_LABEL, NODE_PORTS
from chaoslib_ext.targets.kubernetes.objects import incarnation
from chaos_dr_stack.processor.api import create_app
from chaos_dr_stack.processor.faults import DeterministicInjector

PODS, POLICIES, JOBS = "v1/pods", "networking.k8s.io/v1/networkpolicies", "batch/v1/jobs"
SECRETS = "v1/secrets"
CONTAINER_ID = "containerd://" + "ab12cd3" + "0" * 57


def use_kubeconfig(monkeypatch, path) -> None:
    """As a shell would set it before the run: chaosk8s loads the path the kubernetes package read at import."""
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr("kubernetes.config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION", str(path))


@pytest.fixture
def kube(tmp_path, monkeypatch):
    for var in ("KUBERNETES_CONTEXT", "GAMEDAY_KUBE_CONTEXT", "GAMEDAY_ALLOWED_CONTEXTS", "GAMEDAY_NAMESPACE",
                "GAMEDAY_ALLOWED_NAMESPACES", "GAMEDAY_K8S_KILL_MODE", "CHAOSTOOLKIT_IN_POD"):
        monkeypatch.delenv(var, raising=False)
    with fake_kube() as server:
        use_kubeconfig(monkeypatch, server.write_kubeconfig(tmp_path / "kubeconfig"))
        yield server


def k8s_target(**configuration):
    return from_configuration({"target": "kubernetes", **configuration})


def chaos_object(kind: str, name: str, expires_at: float | None, fault: str = "kafka-partition") -> dict:
    annotations = {} if expires_at is None else {EXPIRES_AT_ANNOTATION: f"{expires_at:.3f}"}
    api_version = "networking.k8s.io/v1" if kind == "NetworkPolicy" else "batch/v1"
    spec = {"podSelector": {}} if kind == "NetworkPolicy" else {"template": {"spec": {"containers": []}}}
    return {"apiVersion": api_version, "kind": kind, "spec": spec, "metadata": {
        "name": name, "namespace": "app", "annotations": annotations,
        "labels": {MANAGED_BY_LABEL: CHAOS_MADE, "gameday/fault": fault}}}


# --- the blast-radius guard ------------------------------------------------------------------------------------

def test_guard_refuses_a_context_outside_the_allow_list_before_any_request(kube, tmp_path, monkeypatch):
    use_kubeconfig(monkeypatch, kube.write_kubeconfig(tmp_path / "prod", context="prod-eu-west"))
    with pytest.raises(TargetMisconfigured) as refused:
        k8s_target()
    message = str(refused.value)
    assert "'prod-eu-west'" in message and "kind-*" in message
    assert "export GAMEDAY_ALLOWED_CONTEXTS=prod-eu-west" in message
    assert kube.requests() == []


def test_an_experiment_cannot_allow_its_own_context(kube, tmp_path, monkeypatch):
    use_kubeconfig(monkeypatch, kube.write_kubeconfig(tmp_path / "prod", context="prod-eu-west"))
    with pytest.raises(TargetMisconfigured, match="'prod-eu-west'"):
        k8s_target(kubernetes_allowed_contexts=["prod-*"], allowed_contexts=["prod-*"])
    assert kube.requests() == []


def test_guard_refuses_a_namespace_that_is_not_the_stacks(kube):
    with pytest.raises(TargetMisconfigured, match="namespace 'kube-system' of context 'kind-gameday'.*only the "
                                                  "stack's namespace \\(app\\).*GAMEDAY_ALLOWED_NAMESPACES"):
        k8s_target(namespace="kube-system")
    assert kube.requests() == []


def test_in_cluster_is_a_context_like_any_other(kube, monkeypatch):
    monkeypatch.setenv("GAMEDAY_KUBE_CONTEXT", "in-cluster")
    with pytest.raises(TargetMisconfigured, match="'in-cluster': it does not match the allowed contexts kind-\\*"):
        k8s_target()
    monkeypatch.setenv("GAMEDAY_ALLOWED_CONTEXTS", "in-cluster")
    with pytest.raises(TargetMisconfigured, match="CHAOSTOOLKIT_IN_POD=true"):
        k8s_target()
    assert kube.requests() == []


def test_an_allowed_context_can_be_added_by_the_environment(kube, tmp_path, monkeypatch):
    use_kubeconfig(monkeypatch, kube.write_kubeconfig(tmp_path / "stage", context="stage-chaos"))
    monkeypatch.setenv("GAMEDAY_ALLOWED_CONTEXTS", "kind-*, stage-*")
    target = k8s_target()
    assert target.context == "stage-chaos"
    assert target.instances() == []
    target.close()


# --- instances and pod kill ------------------------------------------------------------------------------------

def test_instances_are_the_components_pods_with_kubelet_counts(kube):
    kube.seed(PODS, pod("processor-7d9f-a", restarts=2, container_id=CONTAINER_ID))
    kube.seed(PODS, pod("processor-7d9f-b", ready=False))
    kube.seed(PODS, pod("producers-5c4-x", component="producers"))  # kmock ignores selectors; the driver must not
    target = k8s_target()
    instances = target.instances("processor")
    target.close()
    assert [(i.name, i.ready, i.restarts, i.state) for i in instances] == [
        ("processor-7d9f-a", True, 2, "running"), ("processor-7d9f-b", False, 0, "starting")]
    assert instances[0].pid == incarnation(CONTAINER_ID) == 0xAB12CD3
    assert instances[0].started_at == instances[0].ready_at == 1795392000.0
    assert kube.requests()[0].params == {"labelSelector": "app.kubernetes.io/name=processor"}


def test_pod_kill_freezes_the_processes_then_deletes_the_pod_with_grace_zero_through_chaosk8s(kube):
    kube.seed(PODS, pod("processor-7d9f-a", container_id=CONTAINER_ID))
    kube.seed(PODS, pod("processor-7d9f-b"))
    target = k8s_target(kubernetes_kill_mode="delete")
    before = time.time()
    killed = target.kill("processor-7d9f-a", "SIGKILL")
    target.close()
    assert killed.name == "processor-7d9f-a" and killed.signal == "SIGKILL"
    assert killed.pid == 0xAB12CD3 and before <= killed.killed_at <= time.time()
    assert sorted(kube.live(PODS)) == ["processor-7d9f-b"]
    deletes = [r for r in kube.requests() if r.method.name == "DELETE"]
    assert [r.url.path for r in deletes] == ["/api/v1/namespaces/app/pods/processor-7d9f-a"]
    assert json.loads(deletes[0].body)["gracePeriodSeconds"] == 0
    # A deletion's SIGTERM would let the processor leave its group: a crash must not.
    assert [(e["pod"], e["container"], e["command"]) for e in kube.kmock.execs] == [
        ("processor-7d9f-a", "processor", ["/bin/sh", "-c", "kill -s STOP -- -1"])]


def test_a_graceful_kill_in_delete_mode_only_deletes_the_pod_with_its_own_grace_period(kube):
    kube.seed(PODS, pod("processor-7d9f-a", container_id=CONTAINER_ID))
    target = k8s_target(kubernetes_kill_mode="delete")
    target.kill("processor-7d9f-a", "SIGTERM")
    target.close()
    assert kube.kmock.execs == [] and kube.live(PODS) == {}


def restart_container(emulator, namespace, pod_name, container, command):
    """The kubelet's part: the killed service takes tini and the container with it; a new container starts."""
    obj = emulator.objects[PODS, namespace, pod_name]
    [status] = obj["status"]["containerStatuses"]
    obj.patch({"status": {"containerStatuses": [{
        **status, "restartCount": status["restartCount"] + 1, "containerID": "containerd://" + "fe" * 32}]}})
    return ""


def test_pod_kill_restarts_the_container_by_killing_its_process_through_exec(kube):
    kube.seed(PODS, pod("processor-7d9f-a", restarts=1, container_id=CONTAINER_ID))
    kube.kmock.on_exec = restart_container
    target = k8s_target()  # the default kill mode: a restart the kubelet counts
    killed = target.kill("processor-7d9f-a", "SIGKILL")
    [after] = target.instances("processor")
    target.close()
    assert kube.kmock.execs == [{"namespace": "app", "pod": "processor-7d9f-a", "container": "processor",
                                 "command": ["/bin/sh", "-c", "kill -s KILL -- -1"]}]
    assert killed.pid == 0xAB12CD3 and after.pid == 0xFEFEFEF and after.restarts == 2
    assert not [r for r in kube.requests() if r.method.name == "DELETE"]


def test_a_kill_that_changes_nothing_is_reported(kube, monkeypatch):
    monkeypatch.setattr("chaoslib_ext.targets.kubernetes.driver.KILL_CONFIRM_SECONDS", 0.5)
    kube.seed(PODS, pod("processor-7d9f-a", container_id=CONTAINER_ID))
    target = k8s_target()
    with pytest.raises(TargetUnreachable, match="still runs the same processor container .* the kill had no effect"):
        target.kill("processor-7d9f-a", "SIGTERM")
    target.close()
    assert kube.kmock.execs[0]["command"] == ["/bin/sh", "-c", "kill -s TERM -- -1"]


def test_graceful_kill_keeps_the_pods_own_grace_period(kube):
    kube.seed(PODS, pod("processor-7d9f-a"))
    target = k8s_target(kubernetes_kill_mode="delete")
    target.kill("processor-7d9f-a", "SIGTERM")
    target.close()
    delete = next(r for r in kube.requests() if r.method.name == "DELETE")
    assert "gracePeriodSeconds" not in json.loads(delete.body or b"{}")


def test_killing_an_unknown_pod_names_it_and_deletes_nothing(kube):
    target = k8s_target(kubernetes_kill_mode="delete")
    with pytest.raises(InvalidArgument, match="no pod 'processor-gone' in namespace 'app'"):
        target.kill("processor-gone", "SIGKILL")
    with pytest.raises(InvalidArgument, match="signal must be one of SIGKILL, SIGTERM, got 'SIGHUP'"):
        target.kill("processor-gone", "SIGHUP")
    target.close()
    assert not [r for r in kube.requests() if r.method.name == "DELETE"]


# --- HTTP errors: the processors' real fault hook, reached through the API server's pod proxy ---------------

TOKEN = "drill-token"


def fault_token_secret(token: str = TOKEN) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "gameday-fault-token", "namespace": "app"},
            "data": {"token": base64.b64encode(token.encode()).decode()}}


@pytest.fixture
def processors(kube):
    """Two processor pods, one not ready; each runs the real processor API with its own injector."""
    kube.seed(PODS, pod("processor-7d9f-a"))
    kube.seed(PODS, pod("processor-7d9f-b", ready=False))
    injectors = {}
    for name in ("processor-7d9f-a", "processor-7d9f-b"):
        injectors[name] = DeterministicInjector()
        kube.kmock.proxy_apps[name] = create_app({}, kafka_ok=lambda: True, mongo_ok=lambda: True,
                                                 fault_token=TOKEN, injector=injectors[name])
    return injectors


def test_http_errors_reach_every_ready_replica_and_heal(kube, processors):
    kube.seed(SECRETS, fault_token_secret())
    target = k8s_target()
    before = time.time()
    fault = target.inject_http_errors(0.05, 503, 30.0)
    assert fault.applied_to == ("processor-7d9f-a",) and fault.pending == ("processor-7d9f-b",)
    assert before <= fault.applied_at <= fault.expires_at - 30.0 + 0.001
    assert processors["processor-7d9f-a"].describe()["active"] is True
    assert processors["processor-7d9f-a"].describe()["ratio"] == 0.05
    assert processors["processor-7d9f-b"].describe() == {"active": False}
    healed = target.heal_http_errors()
    target.close()
    assert healed.was_active is True and set(healed.healed) == {"processor-7d9f-a", "processor-7d9f-b"}
    assert processors["processor-7d9f-a"].describe() == {"active": False}


def test_http_error_faults_fail_with_the_reason(kube, processors):
    target = k8s_target()
    with pytest.raises(TargetMisconfigured, match="secret 'gameday-fault-token' is missing.*make kind-up"):
        target.inject_http_errors(0.05, 503, 30.0)
    kube.seed(SECRETS, fault_token_secret("not-the-token"))
    with pytest.raises(TargetMisconfigured, match="refused the token"):
        target.inject_http_errors(0.05, 503, 30.0)
    kube.seed(SECRETS, fault_token_secret())
    with pytest.raises(InvalidArgument, match="ratio"):
        target.inject_http_errors(1.5, 503, 30.0)
    target.close()
    assert processors["processor-7d9f-a"].describe() == {"active": False}
    assert kube.kmock.proxied[0] == "PUT /api/v1/namespaces/app/pods/processor-7d9f-a:8080/proxy/_gameday/fault"


def test_a_replica_left_out_of_its_service_is_asked_itself_through_the_pod_proxy(kube):
    """/health of a replica that fails it (so its readiness probe keeps it out of the Service) still reaches the
    probe, with the replica's own status and answer; the API server's own error is no answer at all."""
    kube.seed(PODS, pod("processor-7d9f-a", ready=False))
    kube.seed(PODS, pod("processor-7d9f-b"))
    kube.kmock.proxy_apps["processor-7d9f-a"] = create_app({}, kafka_ok=lambda: True, mongo_ok=lambda: False,
                                                           fault_token=TOKEN, injector=DeterministicInjector())
    target = k8s_target()
    unready, unreachable = target.instances("processor")
    status, answer = target.ask_replica(unready, "/health")
    assert (status, answer["mongo"], answer["kafka"]) == (503, False, True)
    with pytest.raises(TargetUnreachable, match="pod processor-7d9f-b gave no answer to GET /health"):
        target.ask_replica(unreachable, "/health")
    with pytest.raises(InvalidArgument, match="no HTTP port is known for mongo replicas"):
        target.ask_replica(replace(unready, component="mongo"), "/health")
    target.close()
    assert kube.kmock.proxied[0] == "GET /api/v1/namespaces/app/pods/processor-7d9f-a:8080/proxy/health"


# --- provider faults: the provider simulator's own fault API, through the API server's service proxy ---------

@pytest.fixture
def simulator(kube):
    providers = pytest.importorskip("chaos_dr_stack.providers.app", reason="the provider simulator comes with issue 5")
    kube.seed(SECRETS, fault_token_secret())
    kube.kmock.proxy_apps["provider-simulator"] = providers.create_app(TOKEN)


def test_provider_faults_are_set_listed_and_restored_on_the_simulator(kube, simulator):
    target = k8s_target()
    fault = target.fail_provider("openai", "error", 30.0, status=503)
    assert fault["kind"] == "provider" and fault["provider"] == "openai" and fault["mode"] == "error"
    assert fault["expires_at"] == pytest.approx(fault["applied_at"] + 30.0)
    assert [(f["kind"], f["provider"]) for f in target.active_faults()] == [("provider", "openai")]
    assert target.restore_provider("openai")["was_active"] is True
    target.fail_provider("alpaca", "timeout", 30.0)
    assert target.restore_all_providers()["healed"] == ["alpaca"]
    assert target.active_faults() == []
    proxied_before = len(kube.kmock.proxied)
    with pytest.raises(InvalidArgument, match="latency_ms must be a number"):
        target.fail_provider("openai", "latency", 30.0)  # latency_ms is required
    with pytest.raises(InvalidArgument, match="provider 'bard' is not one of openai"):
        target.fail_provider("bard", "error", 30.0)
    assert len(kube.kmock.proxied) == proxied_before, "bad provider faults must be refused before any request"
    target.close()
    assert kube.kmock.proxied[0] == \
        "PUT /api/v1/namespaces/app/services/provider-simulator:http/proxy/_faults/openai"


# --- partition -------------------------------------------------------------------------------------------------

def test_partition_creates_a_chaos_policy_owned_by_its_reaper_and_heal_removes_both(kube):
    target = k8s_target()
    before = time.time()
    fault = target.partition(["processor"], "hold", 30.0)
    assert fault["between"] == ["processor"] and fault["mode"] == "hold"
    assert before + 30 <= fault["expires_at"] <= time.time() + 30

    policies, jobs = kube.live(POLICIES), kube.live(JOBS)
    assert list(policies) == [fault["policy"]] and list(jobs) == [fault["reaper"]]
    policy, job = policies[fault["policy"]], jobs[fault["reaper"]]
    for obj in (policy, job):
        assert obj["metadata"]["labels"][MANAGED_BY_LABEL] == CHAOS_MADE
        assert float(obj["metadata"]["annotations"][EXPIRES_AT_ANNOTATION]) == pytest.approx(fault["expires_at"])
    assert policy["metadata"]["ownerReferences"] == [{
        "apiVersion": "batch/v1", "kind": "Job", "name": job["metadata"]["name"], "uid": job["metadata"]["uid"],
        "blockOwnerDeletion": False}]
    spec = policy["spec"]
    assert spec["policyTypes"] == ["Egress"]
    assert spec["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/name", "operator": "In", "values": ["processor"]}]
    assert spec["egress"][0]["to"][0]["podSelector"]["matchExpressions"] == [
        {"key": "app.kubernetes.io/name", "operator": "NotIn", "values": ["kafka"]}]
    assert job["spec"]["activeDeadlineSeconds"] == 30 and job["spec"]["ttlSecondsAfterFinished"] == 0

    assert [f["policy"] for f in target.active_faults()] == [fault["policy"]]
    healed = target.heal_partition()
    assert healed["was_active"] is True and healed["removed"] == [fault["policy"]]
    assert kube.live(POLICIES) == {} and kube.live(JOBS) == {}
    assert target.heal_partition()["was_active"] is False
    target.close()


def test_isolating_a_broker_cuts_it_from_the_other_brokers_both_ways_and_heals_with_the_partition(kube):
    for name in ("kafka-0", "kafka-1", "kafka-2"):
        kube.seed(PODS, pod(name, component="kafka"))
    target = k8s_target()
    fault = target.isolate_kafka_node("kafka-1", "hold", 30.0)
    assert fault["isolate"] == "kafka-1" and fault["mode"] == "hold" and fault["ttl_seconds"] == 30.0

    policies, jobs = kube.live(POLICIES), kube.live(JOBS)
    assert sorted(policies) == sorted(fault["policies"]) and list(jobs) == [fault["reaper"]]
    job = jobs[fault["reaper"]]
    pod_name = "statefulset.kubernetes.io/pod-name"
    cuts = {}
    for policy in policies.values():
        assert policy["metadata"]["ownerReferences"][0]["uid"] == job["metadata"]["uid"]
        assert policy["metadata"]["labels"]["gameday/fault"] == "kafka-partition"
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Egress"]
        selected = {e["key"]: (e["operator"], e["values"]) for e in spec["podSelector"]["matchExpressions"]}
        assert selected["app.kubernetes.io/name"] == ("In", ["kafka"])
        unreachable = spec["egress"][0]["to"][0]["podSelector"]["matchExpressions"]
        cuts[tuple(selected[pod_name][1])] = unreachable
    # The isolated pod reaches every pod but the other brokers, and they every pod but it.
    assert cuts == {
        ("kafka-1",): [{"key": pod_name, "operator": "NotIn", "values": ["kafka-0", "kafka-2"]}],
        ("kafka-0", "kafka-2"): [{"key": pod_name, "operator": "NotIn", "values": ["kafka-1"]}],
    }
    # One fault, listed once, with the node it isolates.
    assert [(f["kind"], f.get("isolate")) for f in target.active_faults()] == [("kafka-partition", "kafka-1")]
    healed = target.heal_partition()
    assert healed["was_active"] is True and sorted(healed["removed"]) == sorted(fault["policies"])
    assert kube.live(POLICIES) == {} and kube.live(JOBS) == {}
    target.close()


def test_isolation_is_refused_before_any_write_for_an_unknown_or_only_broker_and_for_reset(kube):
    kube.seed(PODS, pod("kafka-0", component="kafka"))
    target = k8s_target()
    with pytest.raises(InvalidArgument, match="no Kafka pod 'kafka-7' in namespace 'app'; it runs kafka-0"):
        target.isolate_kafka_node("kafka-7", "hold", 30.0)
    with pytest.raises(InvalidArgument, match="'kafka-0' is the only broker"):
        target.isolate_kafka_node("kafka-0", "hold", 30.0)
    with pytest.raises(InvalidArgument, match="mode 'reset' cannot be made with a NetworkPolicy"):
        target.isolate_kafka_node("kafka-0", "reset", 30.0)
    target.close()
    assert [r for r in kube.requests() if r.method.name != "GET"] == []


def test_partition_modes_a_network_policy_cannot_make_are_refused_before_any_write(kube):
    target = k8s_target()
    with pytest.raises(InvalidArgument, match="mode 'latency' cannot be made with a NetworkPolicy"):
        target.partition(["processor"], "latency", 30.0, latency_ms=200)
    with pytest.raises(InvalidArgument, match="between must name"):
        target.partition(["mongo"], "hold", 30.0)
    target.close()
    assert [r for r in kube.requests() if r.method.name != "GET"] == []


# --- sweep -----------------------------------------------------------------------------------------------------

def test_sweep_removes_expired_and_unexpiring_chaos_objects_and_keeps_the_rest(kube):
    now = time.time()
    kube.seed(POLICIES, chaos_object("NetworkPolicy", "chaos-partition-old", now - 120))
    kube.seed(POLICIES, chaos_object("NetworkPolicy", "chaos-partition-live", now + 120))
    kube.seed(POLICIES, chaos_object("NetworkPolicy", "chaos-partition-no-expiry", None))
    kube.seed(JOBS, chaos_object("Job", "chaos-partition-old", now - 120))
    kube.seed(POLICIES, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "spec": {"podSelector": {}},
                         "metadata": {"name": "default-deny-ingress", "namespace": "app"}})
    target = k8s_target()
    report = target.sweep(now=now)
    removed = {(r["object"], r["name"]): r["reason"] for r in report["healed"]}
    assert report["failed"] == [] and {r["kind"] for r in report["healed"]} == {"kafka-partition"}
    assert removed == {
        ("NetworkPolicy", "chaos-partition-old"): "expired 120 s ago",
        ("NetworkPolicy", "chaos-partition-no-expiry"): f"no valid {EXPIRES_AT_ANNOTATION} annotation",
        ("Job", "chaos-partition-old"): "expired 120 s ago",
    }
    assert [(k["object"], k["name"]) for k in report["kept"]] == [("NetworkPolicy", "chaos-partition-live")]
    assert sorted(kube.live(POLICIES)) == ["chaos-partition-live", "default-deny-ingress"]
    assert kube.live(JOBS) == {}
    forced = target.sweep(now=now, force=True)
    target.close()
    assert [(r["object"], r["name"], r["reason"]) for r in forced["healed"] if "object" in r] == [
        ("NetworkPolicy", "chaos-partition-live", "forced")]
    assert sorted(kube.live(POLICIES)) == ["default-deny-ingress"]
    # Nothing else to heal here: no processor pods, no simulator; said so, never hidden.
    assert {f["kind"] for f in forced["failed"]} == {"http-errors", "provider"}


# --- endpoints -------------------------------------------------------------------------------------------------

def test_endpoints_are_the_node_ports_unless_overridden(kube):
    target = k8s_target(kubernetes_endpoints={"prometheus": "http://prom.example:9090/"})
    assert target.endpoint("processor_api") == f"http://127.0.0.1:{NODE_PORTS['processor_api']}"
    assert target.endpoint("prometheus") == "http://prom.example:9090"
    assert target.mongo_uri() == f"mongodb://127.0.0.1:{NODE_PORTS['mongo']}/?directConnection=true"
    with pytest.raises(TargetMisconfigured, match="no endpoint 'kafka'"):
        target.endpoint("kafka")
    target.close()
    assert kube.requests() == []


# --- the experiments' own actions, unchanged, on the Kubernetes target ------------------------------------------

def test_the_pod_kill_action_and_its_rollback_run_unchanged_on_kubernetes(kube, tmp_path):
    from chaoslib_ext.actions.pods import kill_processor_pods, wait_for_processor_replicas
    from chaoslib_ext.timeline import read

    kube.seed(PODS, pod("processor-7d9f-a", container_id=CONTAINER_ID))
    kube.seed(PODS, pod("processor-7d9f-b", ready=False))
    kube.kmock.on_exec = restart_container
    configuration = {"target": "kubernetes", "gameday_timeline": str(tmp_path / "timeline.jsonl")}
    result = kill_processor_pods(count=1, signal="SIGKILL", configuration=configuration)
    # Only the ready replica could be chosen.
    assert [k["name"] for k in result["killed"]] == ["processor-7d9f-a"] and result["killed"][0]["pid"] == 0xAB12CD3
    [event] = [e for e in read(configuration) if e["kind"] == "fault.kill"]
    assert event["target"] == "kubernetes" and event["instance"] == "processor-7d9f-a"
    with pytest.raises(BudgetExceeded, match="processor replicas processor-7d9f-b not ready after 0.3 s"):
        wait_for_processor_replicas(timeout=0.3, configuration=configuration)


def test_the_partition_action_and_its_rollback_run_unchanged_on_kubernetes(kube, tmp_path):
    from chaoslib_ext.actions.network import heal_kafka, partition_kafka

    configuration = {"target": "kubernetes", "gameday_timeline": str(tmp_path / "timeline.jsonl")}
    fault = partition_kafka(between=["producers", "processor"], ttl_seconds=20, wait=False, configuration=configuration)
    assert fault["between"] == ["processor", "producers"] and fault["healed_at"] is None
    [policy] = kube.live(POLICIES).values()
    assert policy["spec"]["podSelector"]["matchExpressions"][0]["values"] == ["processor", "producers"]
    healed = heal_kafka(configuration=configuration)
    assert healed["was_active"] is True and kube.live(POLICIES) == {} and kube.live(JOBS) == {}


# --- disaster recovery: component holds and data destruction ----------------------------------------------------

DEPLOYMENTS, PVCS = "apps/v1/deployments", "v1/persistentvolumeclaims"


def deployment(name: str, replicas: int) -> dict:
    labels = {"app.kubernetes.io/name": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "app", "labels": labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": []}}},
            "status": {"replicas": replicas, "readyReplicas": replicas}}


def test_a_held_component_is_scaled_to_zero_with_a_reaper_and_started_again(kube):
    kube.seed(DEPLOYMENTS, deployment("processor", 2))
    target = k8s_target()
    hold = target.stop_component("processor", 60.0)
    held = kube.live(DEPLOYMENTS)["processor"]
    assert held["spec"]["replicas"] == 0
    assert held["metadata"]["annotations"]["gameday/replicas-before"] == "2"
    assert float(held["metadata"]["annotations"][EXPIRES_AT_ANNOTATION]) == pytest.approx(hold["expires_at"])
    assert hold["expires_at"] == pytest.approx(hold["stopped_at"] + 60.0)
    [reaper] = kube.live(JOBS).values()
    spec = reaper["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "chaos-reaper"
    assert spec["containers"][0]["command"][:3] == ["python", "-m", "chaoslib_ext.targets.kubernetes.holds"]
    assert spec["containers"][0]["command"][-4:] == ["--name", "processor", "--at", f"{hold['expires_at']:.3f}"]
    assert [(f["kind"], f["component"]) for f in target.active_faults()] == [("component-hold", "processor")]

    started = target.start_component("processor")
    assert started["was_stopped"] is True and started["replicas"] == 2
    released = kube.live(DEPLOYMENTS)["processor"]
    assert released["spec"]["replicas"] == 2
    assert not (released["metadata"].get("annotations") or {}).get("gameday/replicas-before")
    assert kube.live(JOBS) == {}
    assert target.start_component("processor")["was_stopped"] is False
    target.close()


def test_holds_refuse_bad_input_before_any_write(kube):
    target = k8s_target()
    with pytest.raises(InvalidArgument, match="ttl_seconds must be a number > 0 and <= 3600, got 0"):
        target.stop_component("processor", 0)
    with pytest.raises(InvalidArgument, match="no Deployment or StatefulSet 'processr'"):
        target.stop_component("processr", 60)
    with pytest.raises(InvalidArgument, match="scope 'disk' is not one of database, data-directory"):
        target.destroy_data("disk")
    target.close()
    assert [r for r in kube.requests() if r.method.name != "GET"] == []


def test_the_sweep_does_an_overdue_reapers_work_before_removing_it(kube):
    kube.seed(DEPLOYMENTS, deployment("processor", 2))
    target = k8s_target()
    hold = target.stop_component("processor", 30.0)
    report = target.sweep(now=hold["expires_at"] + 5)
    target.close()
    assert [(r["kind"], r["object"]) for r in report["healed"]] == [("component-hold", "Job")]
    assert kube.live(DEPLOYMENTS)["processor"]["spec"]["replicas"] == 2 and kube.live(JOBS) == {}


def test_wiping_the_data_directory_deletes_the_members_claim_and_pod_together(kube):
    kube.seed(PODS, pod("mongo-0", component="mongo"))
    kube.seed(PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": "data-mongo-0", "namespace": "app"}, "spec": {}})
    target = k8s_target()
    before = time.time()
    assert before <= target._wipe_mongo_volume() <= time.time()
    target.close()
    assert kube.live(PODS) == {} and kube.live(PVCS) == {}


def test_a_wiped_member_without_replset_initiate_must_say_it_is_the_replica_sets_primary():
    """The SecantusDB stand-in has no replSetInitiate (its replica set comes from its settings): after a PVC wipe
    the driver accepts it only as mongo-init's check does, by its own hello."""
    from chaoslib_ext.targets.kubernetes.recovery import replica_set_membership

    member = "mongo-0.mongo.app.svc.cluster.local:27017"
    hello = {"setName": "rs0", "hosts": [member], "isWritablePrimary": True}
    assert "a member of rs0" in replica_set_membership(hello, "rs0", member)
    for wrong in ({**hello, "setName": "rs1"}, {**hello, "hosts": ["other:27017"]}, {**hello, "isWritablePrimary": False},
                  {"isWritablePrimary": True}):
        with pytest.raises(TargetUnreachable, match="cannot initiate a replica set"):
            replica_set_membership(wrong, "rs0", member)
