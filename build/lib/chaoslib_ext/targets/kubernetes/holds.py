"""Component holds on Kubernetes: a workload scaled to 0 that comes back by itself at its expiry.

``stop_component`` scales a Deployment or StatefulSet to 0 and annotates it with the replica count it had and the
hold's expiry; a reaper Job (``python -m chaoslib_ext.targets.kubernetes.holds``, in the stack's image, with the
``chaos-reaper`` ServiceAccount of deploy/k8s) sleeps until the expiry and scales it back, so a killed ``chaos run``
cannot leave the processors down. ``start_component`` and the reaper share ``release_hold``.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from chaoslib_ext.targets.kubernetes.objects import (
    CHAOS_MADE, EXPIRES_AT_ANNOTATION, FAULT_LABEL, MANAGED_BY_LABEL, NAME_LABEL, chaos_metadata,
)

HOLD_FAULT = "component-hold"
REPLICAS_BEFORE_ANNOTATION = "gameday/replicas-before"
COMPONENT_LABEL = "gameday/component"
REAPER_SERVICE_ACCOUNT = "chaos-reaper"
"""Made by deploy/k8s/chaos-reaper.yaml: may read and scale the stack's workloads, nothing else."""
WORKLOAD_KINDS = ("Deployment", "StatefulSet")


def read_workload(apps: Any, namespace: str, name: str) -> tuple[str, Any] | None:
    """The Deployment or StatefulSet called ``name``, with its kind, or None."""
    from kubernetes.client.exceptions import ApiException

    for kind, read in (("Deployment", apps.read_namespaced_deployment),
                       ("StatefulSet", apps.read_namespaced_stateful_set)):
        try:
            return kind, read(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
    return None


def patch_workload(apps: Any, namespace: str, kind: str, name: str, body: dict) -> Any:
    patch = apps.patch_namespaced_deployment if kind == "Deployment" else apps.patch_namespaced_stateful_set
    return patch(name, namespace, body)


def hold_body(replicas_before: int, expires_at: float) -> dict:
    return {"metadata": {"annotations": {REPLICAS_BEFORE_ANNOTATION: str(replicas_before),
                                         EXPIRES_AT_ANNOTATION: f"{expires_at:.3f}"}},
            "spec": {"replicas": 0}}


def release_hold(apps: Any, namespace: str, name: str) -> int | None:
    """Scale ``name`` back to the replicas it had before its hold and drop the hold's annotations. Returns the
    replica count restored, or None when the workload was not held (already released: not an error)."""
    found = read_workload(apps, namespace, name)
    if found is None:
        return None
    kind, workload = found
    before = (workload.metadata.annotations or {}).get(REPLICAS_BEFORE_ANNOTATION)
    if before is None:
        return None
    replicas = int(before)
    patch_workload(apps, namespace, kind, name, {
        # null removes an annotation in a merge patch
        "metadata": {"annotations": {REPLICAS_BEFORE_ANNOTATION: None, EXPIRES_AT_ANNOTATION: None}},
        "spec": {"replicas": replicas},
    })
    return replicas


def reaper_job(name: str, component: str, namespace: str, expires_at: float, image: str) -> dict:
    metadata = chaos_metadata(name, HOLD_FAULT, expires_at)
    metadata["labels"][COMPONENT_LABEL] = component
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "ttlSecondsAfterFinished": 0,
            "backoffLimit": 5,
            "template": {
                "metadata": {"labels": {MANAGED_BY_LABEL: CHAOS_MADE, FAULT_LABEL: HOLD_FAULT,
                                        NAME_LABEL: "chaos-reaper", COMPONENT_LABEL: component}},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "serviceAccountName": REAPER_SERVICE_ACCOUNT,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
                    "containers": [{
                        "name": "reaper",
                        "image": image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-m", "chaoslib_ext.targets.kubernetes.holds", "--namespace",
                                    namespace, "--name", component, "--at", f"{expires_at:.3f}"],
                        "resources": {"requests": {"cpu": "10m", "memory": "64Mi"},
                                      "limits": {"cpu": "200m", "memory": "192Mi"}},
                    }],
                },
            },
        },
    }


def main(argv: list[str] | None = None) -> int:
    """The reaper: sleep until ``--at``, then release the hold on ``--name`` (in-cluster credentials)."""
    p = argparse.ArgumentParser(prog="python -m chaoslib_ext.targets.kubernetes.holds",
                                description="Scale a held workload back at the hold's expiry.")
    p.add_argument("--namespace", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--at", type=float, required=True, help="Unix seconds: the hold's expiry")
    args = p.parse_args(argv)
    time.sleep(max(0.0, args.at - time.time()))
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_incluster_config(client_configuration=configuration)
    with client.ApiClient(configuration) as api:
        restored = release_hold(client.AppsV1Api(api), args.namespace, args.name)
    print(f"{args.name}: " + ("was not held" if restored is None else f"scaled back to {restored}"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
