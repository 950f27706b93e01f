"""The Kubernetes target's driver: the Target interface over the Kubernetes API and chaostoolkit-kubernetes."""
from __future__ import annotations

import re
import secrets as random_tokens
import time
from collections.abc import Mapping
from typing import Any


from chaoslib_ext.errors import InvalidArgument, TargetMisconfigured, TargetUnreachable
from chaoslib_ext.targets.stack_http import fetch_producer_acks
from chaoslib_ext.targets.base import (
    PARTITION_MODES, PARTITION_SERVICES, REPLICA_TIMEOUT_SECONDS, Healed, HttpErrorFault, Instance, Killed, Target,
    DisasterRecovery,
    fault_ttl, validate_provider_fault,
)
from chaoslib_ext.targets.kubernetes.holds import COMPONENT_LABEL, HOLD_FAULT, release_hold
from chaoslib_ext.targets.kubernetes.objects import (
    CHAOS_MADE, FAULT_LABEL, ISOLATE_ANNOTATION, ISOLATED_FROM_ANNOTATION, KAFKA_COMPONENT, MANAGED_BY_LABEL,
    NAME_LABEL, PARTITION_FAULT, expiry_of, instance_from_pod, seconds_of, is_chaos_made, leftover_reason,
    isolation_policies, partition_policy, reaper_job,
)
from chaoslib_ext.targets.kubernetes.recovery import KubernetesRecovery
from chaoslib_ext.targets.kubernetes.settings import (
    CHAOSK8S_CONTEXT_SECRET, IN_CLUSTER, KubernetesSettings, check_blast_radius,
)

NODE_PORTS = {
    "control": 30000,
    "loadgen": 30020,
    "providers": 30021,
    "ai_decision": 30022,
    "market_data": 30023,
    "backup": 30024,
    "producers": 30070,
    "processor_api": 30080,
    "prometheus": 30090,
    "alertmanager": 30093,
    "mongo": 30017,
}
"""NodePorts of the stack's Services, mapped to the same host ports by deploy/kind/cluster.yaml. ``control``
is the in-cluster alert webhook receiver (``GET /alerts``), the part of the local runner's control API that the
alert probes read."""

SERVICES = {
    "control": ("alert-webhook", 8080),
    "loadgen": ("loadgen", 8080),
    "providers": ("provider-simulator", 8080),
    "ai_decision": ("ai-decision", 8080),
    "market_data": ("market-data", 8080),
    "backup": ("backup", 8080),
    "producers": ("producers", 8080),
    "processor_api": ("processor", 8080),
    "prometheus": ("prometheus", 9090),
    "alertmanager": ("alertmanager", 9093),
}
"""Endpoint name -> (Service, port), for a driver running inside the cluster (a scheduled game day's pod), where
the NodePorts on 127.0.0.1 mean nothing."""
MONGO_IN_CLUSTER = "mongodb://mongo-0.mongo.{namespace}.svc.cluster.local:27017/?replicaSet=rs0"

PROCESSOR_HTTP_PORT = 8080
REPLICA_HTTP_PORTS = {"processor": PROCESSOR_HTTP_PORT}
"""The port ``ask_replica`` reaches in each component's pods."""
PROVIDER_SIMULATOR_SERVICE = "provider-simulator"
"""The provider simulator's Service; its fault API is reached through the API server's service proxy."""
FAULT_TOKEN_SECRET, FAULT_TOKEN_KEY = "gameday-fault-token", "token"
TOKEN_HEADER = "X-Gameday-Token"
KILL_COMMANDS = {
    # The image runs tini as PID 1, so the service is not PID 1 and `kill -1` (every process but PID 1 and the
    # caller) reaches it; tini then exits with it and the kubelet restarts the container.
    "SIGKILL": ["/bin/sh", "-c", "kill -s KILL -- -1"],
    "SIGTERM": ["/bin/sh", "-c", "kill -s TERM -- -1"],
}
FREEZE_COMMAND = ["/bin/sh", "-c", "kill -s STOP -- -1"]
"""Stops every process of the container but tini, which then passes the deletion's SIGTERM to a process that
cannot act on it, until the SIGKILL at the end of the grace period."""
KILL_CONFIRM_SECONDS = 20.0
"""How long a kill waits to see the container die (or the pod go) before calling the kill ineffective."""
HTTP_TIMEOUT_SECONDS = 5.0
SUPPORTED_PARTITION_MODES = ("hold", "drop")
"""A NetworkPolicy drops packets: ``hold`` and ``drop`` are the same here; the others need a CNI fault."""


class KubernetesTarget(KubernetesRecovery, Target, DisasterRecovery):
    kind = "kubernetes"

    def __init__(self, settings: KubernetesSettings):
        self.settings = settings
        # The guard runs first: nothing below talks to a cluster before it has passed.
        self.context = check_blast_radius(settings)
        from kubernetes import config

        from kubernetes import client

        if self.context == IN_CLUSTER:
            own = client.Configuration()
            config.load_incluster_config(client_configuration=own)
            self._api = client.ApiClient(own)
            self._chaosk8s_secrets: dict[str, str] = {}
        else:
            self._api = config.new_client_from_config(config_file=settings.kubeconfig, context=self.context)
            # chaosk8s builds its own client from the same kubeconfig: pin it to the context the guard allowed.
            self._chaosk8s_secrets = {CHAOSK8S_CONTEXT_SECRET: self.context}

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    # --- Kubernetes API helpers ----------------------------------------------------------------------------
    def _core(self):
        from kubernetes import client

        return client.CoreV1Api(self._api)

    def _batch(self):
        from kubernetes import client

        return client.BatchV1Api(self._api)

    def _networking(self):
        from kubernetes import client

        return client.NetworkingV1Api(self._api)

    def _call(self, what: str, func, *args, **kwargs):
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            return func(*args, **kwargs)
        except ApiException as exc:
            if exc.status in (400, 404, 409, 422):
                raise InvalidArgument(f"Kubernetes refused to {what} ({exc.status} {exc.reason}): "
                                      f"{(exc.body or '')[:300]}") from exc
            raise TargetUnreachable(f"Kubernetes API failed to {what} ({exc.status} {exc.reason})") from exc
        except (HTTPError, OSError) as exc:
            raise TargetUnreachable(
                f"the Kubernetes API of context {self.context!r} did not answer ({what}): {exc}. "
                "Is the cluster up? `make kind-up` creates it."
            ) from exc

    def _pods(self, component: str) -> list[Any]:
        pods = self._call(f"list the {component} pods", self._core().list_namespaced_pod, self.namespace,
                          label_selector=f"{NAME_LABEL}={component}").items
        # Filter again: a label selector the server ignores must not widen what a fault reaches.
        return sorted((p for p in pods if (p.metadata.labels or {}).get(NAME_LABEL) == component),
                      key=lambda p: p.metadata.name)

    # --- Target interface ----------------------------------------------------------------------------------
    def instances(self, component: str = "processor") -> list[Instance]:
        return [instance_from_pod(pod, component) for pod in self._pods(component)]

    def _read_pod(self, name: str) -> Any | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._call(f"read pod {name}", self._core().read_namespaced_pod, name, self.namespace)
        except InvalidArgument as exc:
            if isinstance(exc.__cause__, ApiException) and exc.__cause__.status == 404:
                return None
            raise

    def _kill(self, name: str, signal: str) -> Killed:
        pod = self._read_pod(name)
        if pod is None:
            raise InvalidArgument(f"no pod {name!r} in namespace {self.namespace!r} (context {self.context!r})")
        component = (pod.metadata.labels or {}).get(NAME_LABEL)
        if not component:
            raise InvalidArgument(f"pod {name!r} carries no {NAME_LABEL} label: it is not part of the stack")
        before = instance_from_pod(pod, component)
        if before.pid is None:
            raise InvalidArgument(f"pod {name!r} has no running {component} container to kill (state {before.state})")
        killed_at = time.time()
        if self.settings.kill_mode == "delete":
            if signal == "SIGKILL":
                # Deleting a pod always stops it with SIGTERM first (grace 0 becomes 1 s), which the processor
                # answers by leaving its group: a graceful stop. Frozen first, it answers nothing, as a crash.
                self._exec_in_pod(name, component, FREEZE_COMMAND, "freeze the processes")
            self._delete_pod(name, component, signal)
        else:
            self._kill_process(name, component, signal)
        self._confirm_killed(name, before)
        return Killed(name=name, pid=before.pid, signal=signal, killed_at=killed_at,
                      restart_expected=self.settings.kill_mode != "delete")

    def _delete_pod(self, name: str, component: str, signal: str) -> None:
        from chaosk8s.pod.actions import terminate_pods

        deleted = self._call(
            f"delete pod {name}", terminate_pods,
            label_selector=f"{NAME_LABEL}={component}", name_pattern=f"^{re.escape(name)}$", qty=1,
            # Grace 0 is a crash; -1 keeps the pod's own terminationGracePeriodSeconds for a graceful stop.
            grace_period=0 if signal == "SIGKILL" else -1, ns=self.namespace, secrets=self._chaosk8s_secrets,
        )
        if name not in (deleted or []):
            raise TargetUnreachable(f"terminate_pods did not delete pod {name!r} (it deleted {deleted!r})")

    def _kill_process(self, name: str, component: str, signal: str) -> None:
        # The exec session ends with the container it killed, so its own exit status says little;
        # _confirm_killed checks what happened to the container instead.
        self._exec_in_pod(name, component, KILL_COMMANDS[signal], "the kill")

    def _exec_in_pod(self, name: str, component: str, command: list[str], what: str) -> None:
        from chaosk8s.pod.actions import exec_in_pods

        self._call(
            f"exec {what} in pod {name}", exec_in_pods,
            cmd=command, label_selector=f"{NAME_LABEL}={component}",
            name_pattern=f"^{re.escape(name)}$", qty=1, ns=self.namespace, container_name=component,
            request_timeout=int(KILL_CONFIRM_SECONDS), secrets=self._chaosk8s_secrets,
        )

    def _confirm_killed(self, name: str, before: Instance) -> None:
        deadline = time.monotonic() + KILL_CONFIRM_SECONDS
        while True:
            pod = self._read_pod(name)
            if pod is None or pod.metadata.deletion_timestamp is not None:
                return
            now = instance_from_pod(pod, before.component)
            if now.restarts > before.restarts or now.pid != before.pid:
                return
            if time.monotonic() > deadline:
                raise TargetUnreachable(
                    f"pod {name!r} still runs the same {before.component} container {KILL_CONFIRM_SECONDS:g} s "
                    f"after the {self.settings.kill_mode} kill (restarts {now.restarts}): the kill had no effect"
                )
            time.sleep(0.25)

    def endpoint(self, service: str) -> str:
        endpoints = endpoints_for(self.settings, in_cluster=self.context == IN_CLUSTER)
        if service not in endpoints:
            raise TargetMisconfigured(
                f"the Kubernetes stack has no endpoint {service!r}; it has: {', '.join(sorted(endpoints))}"
            )
        return str(endpoints[service]).rstrip("/")

    def mongo_uri(self) -> str:
        return self.endpoint("mongo_uri")

    def producer_acks(self) -> list[dict]:
        return fetch_producer_acks(self.endpoint("producers"), HTTP_TIMEOUT_SECONDS)

    # --- HTTP error fault: the processors' own hook, reached through the API server's pod proxy ------------
    def _fault_token(self) -> str:
        import base64

        from kubernetes.client.exceptions import ApiException

        try:
            secret = self._core().read_namespaced_secret(FAULT_TOKEN_SECRET, self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                raise TargetMisconfigured(
                    f"secret {FAULT_TOKEN_SECRET!r} is missing from namespace {self.namespace!r}: the processors' "
                    "fault hook is disabled without it. `make kind-up` creates it."
                ) from exc
            raise TargetUnreachable(f"cannot read secret {FAULT_TOKEN_SECRET!r}: {exc.status} {exc.reason}") from exc
        try:
            return base64.b64decode((secret.data or {})[FAULT_TOKEN_KEY]).decode()
        except (KeyError, ValueError) as exc:
            raise TargetMisconfigured(f"secret {FAULT_TOKEN_SECRET!r} has no {FAULT_TOKEN_KEY!r} key") from exc

    def _proxied(self, what: str, method: str, path: str, token: str | None, body: dict | None = None,
                 timeout: float = HTTP_TIMEOUT_SECONDS) -> tuple[int, object]:
        """One call, with the fault token if given, through the API server's proxy ``path``; the status and the
        JSON answer (a non-JSON answer becomes ``{"detail": its first 200 characters}``)."""
        import json

        headers = {"Accept": "application/json"} | ({TOKEN_HEADER: token} if token else {})
        if body is not None:
            headers["Content-Type"] = "application/json"
        serialized = self._api.param_serialize(method, path, header_params=headers, body=body,
                                               auth_settings=["BearerToken"])
        response = self._call(what, self._api.call_api, *serialized, _request_timeout=timeout)
        response.read()
        try:
            return int(response.status), json.loads(response.data or b"{}")
        except ValueError:
            return int(response.status), {"detail": (response.data or b"")[:200].decode(errors="replace")}

    def ask_replica(self, instance: Instance, path: str) -> tuple[int, dict]:
        """Through the API server's pod proxy, which reaches a pod its Service leaves out for being unready."""
        port = REPLICA_HTTP_PORTS.get(instance.component)
        if port is None:
            raise InvalidArgument(f"no HTTP port is known for {instance.component} replicas "
                                  f"(known: {', '.join(sorted(REPLICA_HTTP_PORTS))})")
        proxy = f"/api/v1/namespaces/{self.namespace}/pods/{instance.name}:{port}/proxy{path}"
        status, answer = self._proxied(f"GET {path} from pod {instance.name}", "GET", proxy, token=None,
                                       timeout=REPLICA_TIMEOUT_SECONDS)
        if isinstance(answer, dict) and answer.get("kind") == "Status":
            # The API server's own error (the pod refused or timed out), not the replica's answer.
            raise TargetUnreachable(f"pod {instance.name} gave no answer to GET {path}: {answer.get('message')}")
        return status, answer if isinstance(answer, dict) else {}

    def _pod_hook(self, pod: str, method: str, token: str, body: dict | None = None) -> tuple[int, dict]:
        path = f"/api/v1/namespaces/{self.namespace}/pods/{pod}:{PROCESSOR_HTTP_PORT}/proxy/_gameday/fault"
        status, payload = self._proxied(f"{method} the fault hook of pod {pod}", method, path, token, body)
        return status, payload if isinstance(payload, dict) else {"detail": payload}

    def inject_http_errors(self, ratio: float, status: int, ttl_seconds: float) -> HttpErrorFault:
        token = self._fault_token()
        pods = self._pods("processor")
        applied_at = time.time()
        applied, pending = [], []
        body = {"ratio": ratio, "status": status, "ttl_seconds": ttl_seconds}
        for pod in pods:
            if not instance_from_pod(pod, "processor").ready:
                pending.append(pod.metadata.name)
                continue
            code, answer = self._pod_hook(pod.metadata.name, "PUT", token, body)
            if code == 400:
                raise InvalidArgument(f"the processors' fault hook refused the fault: {answer.get('detail')}")
            if code == 403:
                raise TargetMisconfigured(f"the processors' fault hook refused the token: {answer.get('detail')}")
            (applied if code == 200 else pending).append(pod.metadata.name)
        if not applied:
            raise TargetUnreachable(f"no processor replica took the HTTP error fault (not ready: {pending})")
        return HttpErrorFault(
            ratio=float(ratio), status=int(status), ttl_seconds=float(ttl_seconds), applied_at=applied_at,
            expires_at=applied_at + float(ttl_seconds), applied_to=tuple(applied), pending=tuple(pending),
        )

    def heal_http_errors(self) -> Healed:
        token = self._fault_token()
        healed, was_active = [], False
        for pod in self._pods("processor"):
            try:
                code, answer = self._pod_hook(pod.metadata.name, "DELETE", token)
            except TargetUnreachable:
                continue  # a replica that cannot be reached lost its in-memory fault with its process, or will at TTL
            if code == 200:
                healed.append(pod.metadata.name)
                was_active = was_active or bool(answer.get("healed"))
        return Healed(healed_at=time.time(), was_active=was_active, healed=tuple(healed))

    # --- provider faults: the simulator's own fault API (it enforces the TTL), through the service proxy --------
    def _simulator(self, method: str, path: str, body: dict | None = None) -> dict:
        proxy = f"/api/v1/namespaces/{self.namespace}/services/{PROVIDER_SIMULATOR_SERVICE}:http/proxy{path}"
        status, answer = self._proxied(f"{method} {path} on the provider simulator", method, proxy,
                                       self._fault_token(), body)
        detail = answer.get("detail") if isinstance(answer, dict) else answer
        if status in (400, 404):
            raise InvalidArgument(f"the provider simulator refused {method} {path} ({status}): {detail}")
        if status == 403:
            raise TargetMisconfigured(f"the provider simulator refused the fault token: {detail}")
        if status != 200:
            raise TargetUnreachable(f"the provider simulator did not take {method} {path} ({status}): {detail}")
        return answer

    def fail_provider(self, provider: str, mode: str, ttl_seconds: float, **params: float) -> dict:
        """Set ``provider``'s fault on the in-cluster simulator (``PUT /_faults/{provider}``); the simulator
        checks the body again (400 naming the field) and ends the fault at its expiry."""
        body = validate_provider_fault(provider, mode, ttl_seconds, **params)
        answer = self._simulator("PUT", f"/_faults/{provider}", body)
        return {"kind": "provider", **answer}

    def restore_provider(self, provider: str) -> dict:
        return self._simulator("DELETE", f"/_faults/{provider}")

    def restore_all_providers(self) -> dict:
        return self._simulator("DELETE", "/_faults")

    def _provider_faults(self) -> list[dict]:
        try:
            listing = self._simulator("GET", "/_faults")
        except (TargetMisconfigured, TargetUnreachable, InvalidArgument):
            return []  # no simulator deployed, or none reachable: it holds no fault anyone could heal
        return [{"kind": "provider", **fault} for fault in listing.get("faults", [])]

    # --- Kafka partition -----------------------------------------------------------------------------------
    @staticmethod
    def _check_cut_mode(mode: str) -> None:
        if mode not in PARTITION_MODES:
            raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(PARTITION_MODES)}")
        if mode not in SUPPORTED_PARTITION_MODES:
            raise InvalidArgument(
                f"mode {mode!r} cannot be made with a NetworkPolicy, which only drops packets; on Kubernetes use "
                f"{' or '.join(SUPPORTED_PARTITION_MODES)} (the same fault here)"
            )

    def _cut(self, prefix: str, ttl_seconds: float, policies_for) -> tuple[str, float, list[str]]:
        """Create a fault's reaper Job, then the NetworkPolicies it owns (``policies_for(name, expires_at,
        owner)``). Returns the fault's name, its expiry and the policies' names; nothing is left if one fails."""
        from chaosk8s.networking.actions import create_network_policy

        name = f"{prefix}-{int(time.time())}-{random_tokens.token_hex(3)}"
        expires_at = time.time() + float(ttl_seconds)
        job = self._call("create the fault's reaper Job", self._batch().create_namespaced_job, self.namespace,
                         reaper_job(name, ttl_seconds, expires_at, self.settings.reaper_image))
        created: list[str] = []
        try:
            for policy in policies_for(name, expires_at, {"name": job.metadata.name, "uid": job.metadata.uid}):
                self._call(f"create NetworkPolicy {policy['metadata']['name']}", create_network_policy, spec=policy,
                           ns=self.namespace, secrets=self._chaosk8s_secrets)
                created.append(policy["metadata"]["name"])
        except Exception:
            for policy_name in created:
                self._delete_policy(policy_name)
            self._delete_job(name)
            raise
        return name, expires_at, created

    def partition(self, between: list[str], mode: str = "hold", ttl_seconds: float = 30.0, **params: float) -> dict:
        services = sorted(set(between))
        unknown = [s for s in services if s not in PARTITION_SERVICES]
        if not services or unknown:
            raise InvalidArgument(f"between must name some of {', '.join(PARTITION_SERVICES)}, got {between!r}")
        self._check_cut_mode(mode)
        if params:
            raise InvalidArgument(f"{', '.join(sorted(params))} do not apply to mode {mode!r}")
        ttl_seconds = fault_ttl(ttl_seconds)
        name, expires_at, _ = self._cut(
            "chaos-partition", ttl_seconds,
            lambda name, expires_at, owner: [partition_policy(name, services, expires_at, owner)])
        return {"between": services, "mode": mode, "ttl_seconds": float(ttl_seconds), "applied_at": time.time(),
                "expires_at": expires_at, "policy": name, "reaper": name}

    def isolate_kafka_node(self, node: str, mode: str = "hold", ttl_seconds: float = 30.0) -> dict:
        """Cut the Kafka pod ``node`` from the other Kafka pods with two egress NetworkPolicies (one on it, one on
        the others), owned by a reaper Job that ends them at the expiry even if this process dies. ``hold`` and
        ``drop`` are the same here. Connections already open are cut only where the policy engine re-evaluates
        them (the kind cluster's does, docs/kind-offline.md)."""
        self._check_cut_mode(mode)
        ttl_seconds = fault_ttl(ttl_seconds)
        nodes = [i.name for i in self.instances(KAFKA_COMPONENT)]
        if node not in nodes:
            raise InvalidArgument(f"no Kafka pod {node!r} in namespace {self.namespace!r}; it runs "
                                  f"{', '.join(nodes) or 'none'}")
        others = [n for n in nodes if n != node]
        if not others:
            raise InvalidArgument(f"Kafka pod {node!r} is the only broker: there is nothing to isolate it from")
        name, expires_at, policies = self._cut(
            "chaos-isolate", ttl_seconds,
            lambda name, expires_at, owner: isolation_policies(name, node, others, expires_at, owner))
        return {"isolate": node, "mode": mode, "ttl_seconds": float(ttl_seconds), "applied_at": time.time(),
                "expires_at": expires_at, "policies": policies, "reaper": name}

    def _chaos_policies(self, fault: str | None = None) -> list[Any]:
        items = self._call("list NetworkPolicies", self._networking().list_namespaced_network_policy,
                           self.namespace, label_selector=f"{MANAGED_BY_LABEL}={CHAOS_MADE}").items
        return [p for p in items if is_chaos_made(p, fault)]

    def _chaos_jobs(self, fault: str | None = None) -> list[Any]:
        items = self._call("list Jobs", self._batch().list_namespaced_job, self.namespace,
                           label_selector=f"{MANAGED_BY_LABEL}={CHAOS_MADE}").items
        return [j for j in items if is_chaos_made(j, fault)]

    def _delete_policy(self, name: str) -> None:
        from chaosk8s.networking.actions import remove_network_policy
        from kubernetes.client.exceptions import ApiException

        try:
            remove_network_policy(name, ns=self.namespace, secrets=self._chaosk8s_secrets)
        except ApiException as exc:
            if exc.status != 404:  # gone already: its reaper got there first
                raise TargetUnreachable(f"cannot delete NetworkPolicy {name!r}: {exc.status} {exc.reason}") from exc

    def _delete_job(self, name: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self._batch().delete_namespaced_job(name, self.namespace,
                                                body=client.V1DeleteOptions(propagation_policy="Background"))
        except ApiException as exc:
            if exc.status != 404:
                raise TargetUnreachable(f"cannot delete Job {name!r}: {exc.status} {exc.reason}") from exc

    def heal_partition(self) -> dict:
        policies = self._chaos_policies(PARTITION_FAULT)
        for policy in policies:
            self._delete_policy(policy.metadata.name)
        for job in self._chaos_jobs(PARTITION_FAULT):
            self._delete_job(job.metadata.name)
        return {"was_active": bool(policies), "healed_at": time.time(),
                "removed": sorted(p.metadata.name for p in policies)}

    def active_faults(self) -> list[dict]:
        now = time.time()
        faults = []
        for policy in self._chaos_policies(PARTITION_FAULT):
            annotations = policy.metadata.annotations or {}
            if ISOLATED_FROM_ANNOTATION in annotations:
                continue  # the other half of an isolation, reported with the policy on the isolated node
            expires_at = expiry_of(policy.metadata)
            if ISOLATE_ANNOTATION in annotations:
                cut = {"isolate": annotations[ISOLATE_ANNOTATION]}
            else:
                selector = (policy.spec.pod_selector.match_expressions or [None])[0] if policy.spec else None
                cut = {"between": list(selector.values) if selector is not None else []}
            faults.append({
                "kind": PARTITION_FAULT, "policy": policy.metadata.name, **cut,
                "applied_at": seconds_of(policy.metadata.creation_timestamp), "expires_at": expires_at,
                "expires_in": None if expires_at is None else round(expires_at - now, 3),
            })
        for job in self._chaos_jobs(HOLD_FAULT):
            expires_at = expiry_of(job.metadata)
            faults.append({
                "kind": HOLD_FAULT, "component": (job.metadata.labels or {}).get(COMPONENT_LABEL),
                "applied_at": seconds_of(job.metadata.creation_timestamp), "expires_at": expires_at,
                "expires_in": None if expires_at is None else round(expires_at - now, 3),
            })
        return faults + self._provider_faults()

    def sweep(self, now: float | None = None, force: bool = False) -> dict:
        """Remove the chaos-made objects nothing else will remove: NetworkPolicies and Jobs past their expiry (a
        reaper that died with its node, an API server down at the deadline) or without a readable one. Unexpired
        ones are kept: a running experiment may own them, and their reaper ends them. ``force`` (no experiment is
        running) removes every chaos-made object and heals the HTTP error and provider faults as well.

        Returns ``{"healed": [{"kind", "object", "name", "reason"}], "failed": [{"kind", "error", ...}],
        "kept": [{"kind", "object", "name", "expires_at"}]}``: ``kind`` is the fault kind, as ``sweep_faults``
        reports it."""
        now = time.time() if now is None else now
        healed: list[dict] = []
        failed: list[dict] = []
        kept: list[dict] = []
        for object_kind, objects, delete in (
            ("NetworkPolicy", self._chaos_policies(), self._delete_policy),
            ("Job", self._chaos_jobs(), self._delete_job),
        ):
            for obj in objects:
                entry = {"kind": (obj.metadata.labels or {}).get(FAULT_LABEL, "unknown"), "object": object_kind,
                         "name": obj.metadata.name}
                reason = leftover_reason(obj.metadata, now) or ("forced" if force else None)
                if reason is None:
                    kept.append({**entry, "expires_at": expiry_of(obj.metadata)})
                    continue
                try:
                    if object_kind == "Job" and entry["kind"] == HOLD_FAULT:
                        # Its reaper is late or gone: do its work (scale the component back) before removing it.
                        self._call("release a hold", release_hold, self._apps(), self.namespace,
                                   (obj.metadata.labels or {}).get(COMPONENT_LABEL, ""))
                    delete(obj.metadata.name)
                except (TargetUnreachable, InvalidArgument) as exc:
                    failed.append({**entry, "error": str(exc)})
                else:
                    healed.append({**entry, "reason": reason})
        if force:
            for kind, heal in (("http-errors", self.heal_http_errors), ("provider", self.restore_all_providers)):
                try:
                    heal()
                except (TargetMisconfigured, TargetUnreachable, InvalidArgument) as exc:
                    failed.append({"kind": kind, "error": f"{type(exc).__name__}: {exc}"})
                else:
                    healed.append({"kind": kind, "reason": "forced"})
        return {"healed": healed, "failed": failed, "kept": kept}

    def close(self) -> None:
        self._api.close()


def endpoints_for(settings: KubernetesSettings, in_cluster: bool) -> dict[str, str]:
    """Base URLs by endpoint name: the NodePorts kind publishes on the host, or, from inside the cluster, the
    Services' own names; ``kubernetes_endpoints`` overrides any of them."""
    if in_cluster:
        namespace = settings.namespace
        endpoints = {name: f"http://{service}.{namespace}.svc:{port}" for name, (service, port) in SERVICES.items()}
        endpoints["mongo_uri"] = MONGO_IN_CLUSTER.format(namespace=namespace)
    else:
        host = settings.node_host
        endpoints = {name: f"http://{host}:{port}" for name, port in NODE_PORTS.items() if name != "mongo"}
        endpoints["mongo_uri"] = f"mongodb://{host}:{NODE_PORTS['mongo']}/?directConnection=true"
    endpoints.update(settings.endpoint_overrides)
    return endpoints


def target_from_configuration(configuration: Mapping[str, Any] | None) -> KubernetesTarget:
    return KubernetesTarget(KubernetesSettings.from_configuration(configuration))
