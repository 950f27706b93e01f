"""The scheduled game day's Role covers every request the Kubernetes driver sends, and grants nothing it does not.

Every driver operation runs against the fake API server (kmock); each request is turned into the (API group,
resource, verb, name) the API server's RBAC authoriser would check, and looked up in the Role `gameday schedule`
writes."""
from __future__ import annotations

import re

import pytest
import yaml
from fake_kube import pod
from test_kubernetes_target import (
    CONTAINER_ID, DEPLOYMENTS, JOBS, PODS, PVCS, SECRETS, TOKEN, deployment, fault_token_secret, k8s_target,
    kube, restart_container,
)

from chaoslib_ext.gameday.schedule import kubernetes_manifest
from chaoslib_ext.targets.kubernetes.access import API_ACCESS
from chaos_dr_stack.processor.api import create_app
from chaos_dr_stack.processor.faults import DeterministicInjector

__all__ = ["kube"]  # the fixture, shared with the driver's tests

STATEFULSETS = "apps/v1/statefulsets"
PATH = re.compile(r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/[^/]+)/namespaces/(?P<ns>[^/]+)/(?P<resource>[^/]+)"
                  r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[^/]+))?)?")
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def authorisation(method: str, path: str, query: dict | None = None) -> tuple[str, str, str, str | None]:
    """(group, resource[/subresource], verb, name) as the API server's RBAC check sees a request."""
    match = PATH.match(path)
    assert match, f"not a namespaced API path: {path}"
    group = "" if match["core"] else match["group"]
    resource, name, sub = match["resource"], match["name"], match["sub"]
    if name and ":" in name:  # pods/NAME:PORT/proxy/...
        name = name.split(":", 1)[0]
    if sub:
        resource = f"{resource}/{sub}"
    if method == "GET":
        verb = "get" if name else ("watch" if (query or {}).get("watch") in ("true", "1") else "list")
    elif method == "DELETE" and not name:
        verb = "deletecollection"
    else:
        verb = VERBS[method]
    return group, resource, verb, name


def role_allows(rules: list[dict], group: str, resource: str, verb: str, name: str | None) -> bool:
    return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"]
               and (not r.get("resourceNames") or name in r["resourceNames"]) for r in rules)


def exercise_every_driver_call(kube) -> list[tuple[str, str, str, str | None]]:
    """Run each operation of the driver once; return what the API server would have authorised."""
    simulator = pytest.importorskip("chaos_dr_stack.providers.app", reason="the provider simulator comes with issue 5")
    kube.seed(PODS, pod("processor-7d9f-a", container_id=CONTAINER_ID))
    kube.seed(PODS, pod("processor-7d9f-b"))
    kube.seed(PODS, pod("mongo-0", component="mongo"))
    kube.seed(SECRETS, fault_token_secret())
    kube.seed(DEPLOYMENTS, deployment("processor", 2))
    kube.seed(STATEFULSETS, {**deployment("mongo", 1), "kind": "StatefulSet"})
    kube.seed(PVCS, {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": "data-mongo-0", "namespace": "app"}, "spec": {}})
    kube.kmock.on_exec = restart_container
    for name in ("processor-7d9f-a", "processor-7d9f-b"):
        kube.kmock.proxy_apps[name] = create_app({}, kafka_ok=lambda: True, mongo_ok=lambda: True,
                                                 fault_token=TOKEN, injector=DeterministicInjector())
    kube.kmock.proxy_apps["provider-simulator"] = simulator.create_app(TOKEN)

    target = k8s_target()
    target.ask_replica(target.instances("processor")[1], "/health")
    target.kill("processor-7d9f-a", "SIGKILL")  # restart mode: exec
    target.inject_http_errors(0.05, 503, 30.0)
    target.heal_http_errors()
    target.fail_provider("openai", "error", 30.0, status=503)
    target.active_faults()
    target.restore_provider("openai")
    target.partition(["processor"], "hold", 30.0)
    target.heal_partition()
    target.stop_component("processor", 60.0)  # a Deployment
    target.start_component("processor")
    target.stop_component("mongo", 60.0)  # a StatefulSet (the Deployment is looked up first: 404)
    target.partition(["processor"], "hold", 30.0)
    target.sweep(force=True)
    target._wipe_mongo_volume()
    target.close()
    deleting = k8s_target(kubernetes_kill_mode="delete")
    deleting.kill("processor-7d9f-b", "SIGKILL")  # delete mode: chaosk8s terminate_pods
    deleting.close()

    seen = [authorisation(r.method.name, r.url.path, dict(r.params)) for r in kube.requests()]
    for call in kube.kmock.proxied:
        method, path = call.split(" ", 1)
        seen.append(authorisation(method, path))
    for execution in kube.kmock.execs:
        # A websocket upgrade is a GET; API servers from 1.35 also require create on pods/exec.
        for verb in ("get", "create"):
            seen.append(("", "pods/exec", verb, execution["pod"]))
    return seen


def test_the_role_covers_every_request_the_driver_sends_and_nothing_more(kube):
    manifest = list(yaml.safe_load_all(kubernetes_manifest("experiments/suites/gate.yaml", "gate", "@daily")))
    [role] = [d for d in manifest if d["kind"] == "Role"]
    seen = exercise_every_driver_call(kube)
    missing = sorted({(g, r, v, n) for g, r, v, n in seen if not role_allows(role["rules"], g, r, v, n)},
                     key=str)
    assert not missing, f"the driver sends requests its Role refuses: {missing}"
    used = {(g, r, v) for g, r, v, _ in seen}
    granted = {(a.group, a.resource, verb) for a in API_ACCESS for verb in a.verbs}
    assert granted - used == set(), "the Role grants what no driver call needs"
    assert "*" not in str(role["rules"])


def test_the_role_check_catches_a_missing_grant():
    """The check above can fail: without the partition rule, creating a NetworkPolicy is refused."""
    manifest = list(yaml.safe_load_all(kubernetes_manifest("experiments/suites/gate.yaml", "gate", "@daily")))
    [role] = [d for d in manifest if d["kind"] == "Role"]
    rules = [r for r in role["rules"] if r["resources"] != ["networkpolicies"]]
    assert not role_allows(rules, "networking.k8s.io", "networkpolicies", "create", "chaos-partition-1")
    assert role_allows(role["rules"], "", "secrets", "get", "gameday-fault-token")
    assert not role_allows(role["rules"], "", "secrets", "get", "some-other-secret")
    assert authorisation("PUT", "/api/v1/namespaces/app/pods/processor-a:8080/proxy/_gameday/fault") == (
        "", "pods/proxy", "update", "processor-a")
    assert authorisation("GET", "/apis/batch/v1/namespaces/app/jobs", {"labelSelector": "x"}) == (
        "batch", "jobs", "list", None)
