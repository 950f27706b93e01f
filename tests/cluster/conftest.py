"""The cluster tests' fixtures: one kind cluster for the session, made on demand and removed after.

On a machine without Docker the tests skip, saying why; under CI (CI=true) a cluster that cannot be made fails
them instead, so a green run always means the cluster ran."""
from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator

import pytest

from kind_cluster import (DOCKERD_MARKER, ROOT, TEST_CLUSTER, Kube, build_test_image, cluster_exists,
                                        docker_available, tools_path)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
RUN_LAST = "test_no_node_pulled_an_image"
"""It judges every pod the other cluster tests ran, so it runs after all of them."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name == RUN_LAST)  # stable: the rest keeps its order


@pytest.fixture(scope="session")
def kube() -> Iterator[Kube]:
    """kubectl on the test cluster (kube context kind-gameday-test), Ready: every node and system pod."""
    reason = docker_available()
    if reason:
        if IN_CI:
            pytest.fail(f"CI must run the cluster tests, but {reason}")
        pytest.skip(f"no kind cluster can run here: {reason}")
    path = tools_path()
    engine_was_ours = DOCKERD_MARKER.exists()
    env = {**os.environ, "PATH": path, "KIND_CLUSTER_NAME": TEST_CLUSTER, "KIND_HOST_PORTS": "0"}
    existed = subprocess.run(["docker", "info"], capture_output=True).returncode == 0 and \
        cluster_exists(path, TEST_CLUSTER)
    up = subprocess.run([str(ROOT / "scripts" / "kind-cluster-up.sh")], env=env, capture_output=True, text=True,
                        timeout=3600)
    path = tools_path()  # the offline build may have just made kind and kubectl
    try:
        if up.returncode != 0:
            pytest.fail(f"scripts/kind-cluster-up.sh exited {up.returncode}:\n{up.stdout[-3000:]}\n{up.stderr[-3000:]}")
        print(up.stdout.strip().splitlines()[-1])
        yield Kube(context=f"kind-{TEST_CLUSTER}", path=path)
    finally:
        if not existed:
            subprocess.run(["kind", "delete", "cluster", "--name", TEST_CLUSTER], capture_output=True,
                           env={**os.environ, "PATH": path})
        if not engine_was_ours and DOCKERD_MARKER.exists():
            # The engine this session started, and only that one, stops with it (kind-down.sh checks its PID).
            subprocess.run(["bash", "-c", ". scripts/kind-common.sh && stop_docker_engine_if_ours"], cwd=ROOT,
                           capture_output=True)


@pytest.fixture(scope="session")
def test_image(kube: Kube) -> str:
    """A locally built image, loaded into every node: busybox under tini."""
    tag = build_test_image()
    subprocess.run(["kind", "load", "docker-image", tag, "--name", TEST_CLUSTER], check=True, capture_output=True,
                   env={**os.environ, "PATH": kube.path})
    return tag


@pytest.fixture
def namespace(kube: Kube) -> Iterator[str]:
    """A namespace of its own per test, deleted after it (with everything in it)."""
    name = f"cluster-test-{uuid.uuid4().hex[:8]}"
    kube.run("create", "namespace", name)
    yield name
    kube.run("delete", "namespace", name, "--wait=false", check=False)
