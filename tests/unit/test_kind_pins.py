"""The kind cluster's versions live in deploy/kind/versions.env, and the online and offline paths agree on them."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from kind_pins import pins

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "scripts" / "kind-build.sh"


def test_every_node_of_the_cluster_runs_the_pinned_kubernetes_by_digest():
    cluster = yaml.safe_load((REPO / "deploy" / "kind" / "cluster.yaml").read_text())
    images = {node["image"] for node in cluster["nodes"]}
    assert len(images) == 1
    assert re.fullmatch(rf"kindest/node:{re.escape(pins()['KUBERNETES_VERSION'])}@sha256:[0-9a-f]{{64}}", images.pop())


def test_the_missing_kind_hint_and_the_patch_name_the_pinned_kind():
    kind = pins()["KIND_VERSION"]
    assert f"({kind}:" in (REPO / "scripts" / "kind-common.sh").read_text()
    assert (REPO / "deploy" / "kind" / "patches" / f"kind-{kind}-unprivileged.patch").is_file()


def patched_source(tmp_path: Path, module: str, version: str, *patches: str) -> Path:
    """The module's source from the module proxy, with deploy/kind/patches/<patch> applied in turn (each must
    apply)."""
    if shutil.which("go") is None or shutil.which("patch") is None:
        pytest.skip(f"needs go and patch to fetch {module}'s source from the module proxy")
    download = subprocess.run(["go", "mod", "download", "-json", f"{module}@{version}"], capture_output=True,
                              text=True, timeout=300, env={**os.environ, "GOTOOLCHAIN": "local"})
    if download.returncode != 0:
        pytest.skip(f"{module} {version} could not be fetched from the module proxy: {download.stdout[-300:]}")
    source = tmp_path / "source"
    shutil.copytree(re.search(r'"Dir": "([^"]+)"', download.stdout).group(1), source)
    for path in source.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    for patch in patches:
        patched = subprocess.run(["patch", "-p1", "-d", str(source), "-i", str(REPO / "deploy" / "kind" / "patches" / patch)],
                                 capture_output=True, text=True, timeout=60)
        assert patched.returncode == 0, patched.stdout + patched.stderr
    return source


def test_the_patch_applies_to_the_pinned_kind_and_removes_every_privileged_flag_of_the_docker_provider(tmp_path):
    kind = pins()["KIND_VERSION"]
    source = patched_source(tmp_path, "sigs.k8s.io/kind", kind, f"kind-{kind}-unprivileged.patch")
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
                                        "crictl", "cni-plugins", "kube-network-policies", "local-path-provisioner",
                                        "prometheus", "alertmanager", "kube-state-metrics"]
    assert all(row[2] == "missing" for row in rows)
    assert rows[1][1] == pins()["KUBERNETES_VERSION"] and rows[0][1] == pins()["KIND_VERSION"]
    assert rows[11][1] == pins()["PROMETHEUS_VERSION"] and rows[13][1] == pins()["KUBE_STATE_METRICS_VERSION"]
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


def test_the_policy_engine_patch_leaves_no_nftables_queue_expression(tmp_path):
    """Kernels without CONFIG_NFT_QUEUE refuse nftables' queue expression; the patch sends every queued packet
    through the xtables NFQUEUE target instead."""
    version = pins()["KUBE_NETWORK_POLICIES_VERSION"]
    source = patched_source(tmp_path, "sigs.k8s.io/kube-network-policies", version,
                            f"kube-network-policies-{version}-xt-nfqueue.patch")
    code = {path.name: path.read_text() for path in (source / "pkg").rglob("*.go") if not path.name.endswith("_test.go")}
    assert [name for name, text in code.items() if "expr.Queue{" in text] == []
    assert sum(text.count("xtQueue(") for text in code.values()) == 4  # three callers and the definition
    assert 'Name: "NFQUEUE", Rev: 3' in code["xtqueue.go"]


def test_the_policy_engine_re_evaluates_open_connections_after_each_sync(tmp_path):
    """The second patch, in the order kind-build.sh applies them: after every successful sync of the rules, the
    conntrack entries of connections from pods that the policies now deny are deleted. kind-build.sh compiles it in
    the cluster phase, and tests/cluster checks that a policy holds an open connection; compiling it here too took
    both cores for minutes on a machine without Go's build cache, beside timing-sensitive tests."""
    version = pins()["KUBE_NETWORK_POLICIES_VERSION"]
    source = patched_source(tmp_path, "sigs.k8s.io/kube-network-policies", version,
                            f"kube-network-policies-{version}-xt-nfqueue.patch",
                            f"kube-network-policies-{version}-reevaluate-established.patch")
    controller = (source / "pkg" / "networkpolicy" / "controller.go").read_text()
    assert re.search(r"err := c\.syncNFTablesRules\(.*\)\n\tif err == nil \{\n\t\tc\.dropDeniedConnections", controller)
    established = (source / "pkg" / "networkpolicy" / "established.go").read_text()
    assert "netlink.ConntrackDeleteFilters(netlink.ConntrackTable" in established
    assert "d.c.evaluatePacket(d.ctx, p)" in established


def test_the_offline_pod_network_is_kinds_default_cni_manifest_and_runs_nothing_privileged():
    text = (REPO / "deploy" / "kind" / "podnet" / "default-cni.yaml").read_text()
    # kind fills in the pod subnet and adds CONTROL_PLANE_ENDPOINT to the first container only when asked to.
    assert "would you kindly template this file" in text and "would you kindly patch this file" in text
    docs = [d for d in yaml.safe_load_all(text.replace("{{ .PodSubnet }}", "10.244.0.0/16")) if d]
    daemonset = next(d for d in docs if d["kind"] == "DaemonSet")
    containers = daemonset["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["podnet", "network-policies"]
    assert isinstance(containers[0]["env"], list)
    assert all(c["securityContext"]["privileged"] is False for c in containers)
    image = re.search(r"^PODNET_IMAGE=(\S+)$", (REPO / "scripts" / "kind-node-image.sh").read_text(), re.M).group(1)
    assert {c["image"] for c in containers} == {image}
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == \
        next(d for d in docs if d["kind"] == "ServiceAccount")["metadata"]["name"]
    checked = subprocess.run(["bash", "-n", str(REPO / "deploy" / "kind" / "podnet" / "podnet.sh")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_python_base_is_named_for_the_pinned_debian_and_its_recipe(tmp_path):
    named = subprocess.run([str(REPO / "scripts" / "kind-python-base.sh"), "--name"], capture_output=True, text=True,
                           timeout=60, env={**os.environ, "GAMEDAY_CACHE": str(tmp_path)})
    assert named.returncode == 0, named.stderr
    assert re.fullmatch(rf"gameday\.local/python:3\.11-{pins()['DEBIAN_SUITE']}-[0-9a-f]{{12}}\n", named.stdout)
