"""The kind cluster's versions live in deploy/kind/versions.env, and the online and offline paths agree on them."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "scripts" / "kind-build.sh"


def pins() -> dict[str, str]:
    values = {}
    for line in (REPO / "deploy" / "kind" / "versions.env").read_text().splitlines():
        match = re.fullmatch(r"([A-Z_]+)=(\S+)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_every_node_of_the_cluster_runs_the_pinned_kubernetes_by_digest():
    cluster = yaml.safe_load((REPO / "deploy" / "kind" / "cluster.yaml").read_text())
    images = {node["image"] for node in cluster["nodes"]}
    assert len(images) == 1
    assert re.fullmatch(rf"kindest/node:{re.escape(pins()['KUBERNETES_VERSION'])}@sha256:[0-9a-f]{{64}}", images.pop())


def test_the_missing_kind_hint_and_the_patch_name_the_pinned_kind():
    kind = pins()["KIND_VERSION"]
    assert f"({kind}:" in (REPO / "scripts" / "kind-common.sh").read_text()
    assert (REPO / "deploy" / "kind" / "patches" / f"kind-{kind}-unprivileged.patch").is_file()


def test_the_patch_applies_to_the_pinned_kind_and_removes_every_privileged_flag_of_the_docker_provider(tmp_path):
    if shutil.which("go") is None or shutil.which("patch") is None:
        pytest.skip("needs go and patch to fetch kind's source from the module proxy")
    kind = pins()["KIND_VERSION"]
    download = subprocess.run(["go", "mod", "download", "-json", f"sigs.k8s.io/kind@{kind}"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "GOTOOLCHAIN": "local"})
    if download.returncode != 0:
        pytest.skip(f"kind {kind} could not be fetched from the module proxy: {download.stdout[-300:]}")
    source = tmp_path / "kind"
    shutil.copytree(re.search(r'"Dir": "([^"]+)"', download.stdout).group(1), source)
    for path in source.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    patched = subprocess.run(["patch", "-p1", "-d", str(source), "-i",
                              str(REPO / "deploy" / "kind" / "patches" / f"kind-{kind}-unprivileged.patch")],
                             capture_output=True, text=True, timeout=60)
    assert patched.returncode == 0, patched.stdout + patched.stderr
    docker_provider = source / "pkg" / "cluster" / "internal" / "providers" / "docker"
    flags = [line for path in docker_provider.glob("*.go") if not path.name.endswith("_test.go")
             for line in path.read_text().splitlines() if '"--privileged"' in line]
    assert flags == []
    assert '"--cap-drop=SYS_RESOURCE"' in (docker_provider / "provision.go").read_text()


def test_the_build_lists_every_artifact_and_refuses_an_unknown_one(tmp_path):
    env = {**os.environ, "GAMEDAY_CACHE": str(tmp_path)}
    listed = subprocess.run([str(BUILD), "--list"], capture_output=True, text=True, timeout=60, env=env)
    assert listed.returncode == 0, listed.stderr
    rows = [line.split() for line in listed.stdout.splitlines()]
    assert [row[0] for row in rows] == ["kind", "kubernetes", "etcd", "coredns", "pause", "containerd", "runc",
                                        "crictl", "cni-plugins", "kube-network-policies"]
    assert all(row[2] == "missing" for row in rows)
    assert rows[1][1] == pins()["KUBERNETES_VERSION"] and rows[0][1] == pins()["KIND_VERSION"]
    refused = subprocess.run([str(BUILD), "--only", "kindnetd"], capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2
    assert "--only needs one of: kind kubernetes etcd" in refused.stderr


def test_the_base_image_names_the_artifacts_it_still_needs(tmp_path):
    result = subprocess.run([str(REPO / "scripts" / "kind-base-image.sh")], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "GAMEDAY_CACHE": str(tmp_path)})
    assert result.returncode == 3
    kind, containerd = pins()["KIND_VERSION"], pins()["CONTAINERD_VERSION"]
    assert f"kind-base-image: not built yet: kind-{kind} containerd-{containerd} runc-" in result.stderr
    assert "run scripts/kind-build.sh first" in result.stderr


def test_the_node_image_names_the_artifacts_it_still_needs(tmp_path):
    result = subprocess.run([str(REPO / "scripts" / "kind-node-image.sh")], capture_output=True, text=True,
                            timeout=60, env={**os.environ, "GAMEDAY_CACHE": str(tmp_path)})
    assert result.returncode == 3
    assert f"kind-node-image: not built yet: kubernetes-{pins()['KUBERNETES_VERSION']} etcd-" in result.stderr
    assert "run scripts/kind-build.sh first" in result.stderr
