"""Manifests the cluster tests run: small pods of the test image (busybox under tini), and the scheduled game
day's identity."""
from __future__ import annotations

import json
import uuid

import yaml
from kind_cluster import ROOT

ECHO_PORT = 9000
SCHEDULED_GAMEDAY = ROOT / "deploy" / "k8s" / "gameday-cronjob.yaml"


def rbac_documents(namespace: str) -> list[dict]:
    """The ServiceAccount, Role and RoleBinding of the scheduled game day, moved into namespace."""
    docs = [d for d in yaml.safe_load_all(SCHEDULED_GAMEDAY.read_text())
            if d and d["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
    for doc in docs:
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects", []):
            subject["namespace"] = namespace
    return docs


def pod(name: str, image: str, command: str, labels: dict | None = None, node: str | None = None,
        env: dict | None = None, container: str = "main") -> str:
    spec: dict = {
        "containers": [{
            "name": container, "image": image, "imagePullPolicy": "Never", "command": ["/sbin/tini", "--", "sh", "-c", command],
            "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
        }],
        "terminationGracePeriodSeconds": 1,
    }
    if node:
        spec["nodeName"] = node
    return json.dumps({"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "labels": labels or {"app": name}}, "spec": spec})


def echo_server(name: str, image: str, node: str | None = None, labels: dict | None = None) -> str:
    """A TCP echo server on ECHO_PORT (busybox nc, one `cat` per connection, for as many as come)."""
    return pod(name, image, f"exec nc -ll -p {ECHO_PORT} -e cat", node=node, labels=labels)


def connection_holder(name: str, image: str, server: str, node: str | None = None) -> str:
    """One TCP connection to server, kept open: a numbered line every 0.2 s, and each echo logged as it returns
    ("echoed N"). Its log shows whether that one connection still carries data."""
    loop = (f'i=0; while :; do i=$((i+1)); echo "$i"; sleep 0.2; done | nc "$SERVER" {ECHO_PORT}'
            ' | while read n; do echo "echoed $n"; done; echo "connection closed"; sleep 3600')
    return pod(name, image, loop, node=node, env={"SERVER": server})


def deployment(name: str, image: str, command: str) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": json.loads(pod(name, image, command))["spec"]}},
    })


def service(name: str, port: int = ECHO_PORT) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                       "spec": {"selector": {"app": name}, "ports": [{"port": port, "targetPort": port}]}})


def deny_egress(name: str, app: str) -> str:
    """A NetworkPolicy that selects app's pods and allows them no egress at all."""
    return json.dumps({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name},
                       "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Egress"],
                                "egress": []}})


def component(name: str, image: str, replicas: int) -> str:
    """A Deployment the game-day driver takes for one of the stack's components: its name label, and a container
    of the component's name (here a shell that sleeps under tini, as the stack's services run under tini)."""
    labels = {"app.kubernetes.io/name": name}
    template = json.loads(pod(name, image, "sleep 3600", labels=labels, container=name))
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": template["metadata"], "spec": template["spec"]}},
    })


def echo_through(kube, namespace: str, client: str, address: str, timeout: int = 3) -> str | None:
    """Send one line from client to the echo server at address over a new connection; the echo, or None."""
    token = f"ping-{uuid.uuid4().hex[:8]}"
    proc = kube.exec(namespace, client, f"echo {token} | nc -w {timeout} {address} {ECHO_PORT}", timeout=timeout + 20)
    return token if proc.returncode == 0 and proc.stdout.strip() == token else None


def claim(name: str, size: str = "16Mi") -> str:
    """A PersistentVolumeClaim of the cluster's default StorageClass."""
    return json.dumps({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
                       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}})


def pod_with_claim(name: str, image: str, command: str, claim_name: str) -> str:
    spec = json.loads(pod(name, image, command))
    spec["spec"]["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    spec["spec"]["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": claim_name}}]
    return json.dumps(spec)
