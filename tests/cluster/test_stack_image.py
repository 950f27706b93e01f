"""The stack's image, built here without a registry: the Dockerfile unchanged on Debian's Python 3.11
(scripts/kind-python-base.sh) where python:3.11-slim cannot be pulled, loaded into the cluster, starts its services
under tini as user 10001."""
from __future__ import annotations

import json
import os
import subprocess

import pytest
from kind_cluster import ROOT, TEST_CLUSTER, Kube

pytestmark = pytest.mark.timeout(300, func_only=True)
STACK_IMAGE = "gameday.local/stack-test:dev"


@pytest.fixture(scope="module")
def stack_image(kube: Kube) -> str:
    """Built as kind-up.sh builds it (scripts/kind-stack-image.sh), under a name of the tests' own, and loaded into
    every node."""
    env = {**os.environ, "PATH": kube.path}
    built = subprocess.run([str(ROOT / "scripts" / "kind-stack-image.sh"), STACK_IMAGE], capture_output=True,
                           text=True, timeout=1800, env=env)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    subprocess.run(["kind", "load", "docker-image", STACK_IMAGE, "--name", TEST_CLUSTER], check=True,
                   capture_output=True, env=env, timeout=600)
    return STACK_IMAGE


def test_the_stack_image_runs_its_services_under_tini_as_user_10001(kube: Kube, namespace: str, stack_image: str):
    # args, not command: the image's own entrypoint (tini) stays PID 1, as in deploy/k8s.
    kube.apply(json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stack"}, "spec": {
        "terminationGracePeriodSeconds": 1,
        "containers": [{"name": "stack", "image": stack_image, "imagePullPolicy": "Never",
                        "args": ["sleep", "3600"]}]}}), namespace)
    kube.ready_pod(namespace, "stack")
    identity = kube.exec(namespace, "stack", "id -u; cat /proc/1/comm; python --version")
    assert identity.stdout.split() == ["10001", "tini", "Python", identity.stdout.split()[-1]]
    assert identity.stdout.split()[-1].startswith("3.11.")
    for service in ("processor", "producers", "loadgen", "alert_webhook"):
        started = kube.exec(namespace, "stack", f"python -m chaos_dr_stack.{service} --help", timeout=60)
        assert started.returncode == 0 and "usage:" in started.stdout, f"{service}: {started.stderr[-500:]}"
