"""The one interface every target implements: what actions and probes may ask of a running stack."""
from __future__ import annotations

import abc
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaoslib_ext.arguments import number, one_of, whole_number
from chaoslib_ext.errors import InvalidArgument, TargetMisconfigured, TargetUnreachable

REPLICA_TIMEOUT_SECONDS = 2.0
"""How long ``ask_replica`` waits for a replica's answer."""
ALLOWED_SIGNALS = ("SIGKILL", "SIGTERM")
"""Signals a pod-kill fault may send: a crash (SIGKILL) or a graceful stop (SIGTERM)."""

def allow_list(raw: str | None) -> tuple[str, ...]:
    """The entries of a comma-separated allow-list read from the environment; () when unset or blank."""
    return tuple(item.strip() for item in (raw or "").split(",") if item.strip())


MAX_FAULT_TTL_SECONDS = 3600.0
"""The longest any fault may live. Its time-to-live, ``ttl_seconds`` in every action, is the safety net that ends
a fault whose run died before its rollback; an hour covers any game day."""


def fault_ttl(ttl_seconds: object) -> float:
    """``ttl_seconds`` if it is a fault's lifetime the framework allows: > 0 and <= MAX_FAULT_TTL_SECONDS."""
    return number("ttl_seconds", ttl_seconds, greater_than=0, at_most=MAX_FAULT_TTL_SECONDS)


DEFAULT_DATABASE = "ca3"
"""The processor's MongoDB database (docs/local-stack-contract.md); another with the configuration's ``database``."""
_DATABASE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,63}$")


def database_from(configuration: Mapping[str, Any] | None) -> str:
    """The configuration's ``database``, else DEFAULT_DATABASE; TargetMisconfigured for a name MongoDB refuses."""
    name = (configuration or {}).get("database")
    if name is None:
        return DEFAULT_DATABASE
    if not isinstance(name, str) or not _DATABASE_NAME.match(name):
        raise TargetMisconfigured(f"database must be a MongoDB database name (letters, digits, _ or -, at most 63), "
                                  f"got {name!r}")
    return str(name)


def kill_signal(signal: object) -> str:
    """``signal`` if a kill may send it; InvalidArgument naming it and the allowed ones if not. Every kill passes
    through ``Target.kill``, which checks it; actions that work before their first kill check it first too."""
    return one_of("signal", signal, ALLOWED_SIGNALS)


PARTITION_SERVICES = ("processor", "producers")
"""Services a Kafka partition can cut from the broker."""
PARTITION_MODES = ("hold", "drop", "reset", "latency", "bandwidth")
"""hold: connections kept, nothing forwarded; drop: read and discarded; reset: TCP RST, new connections refused;
latency: ``latency_ms`` added per chunk; bandwidth: capped at ``bandwidth_kbps`` kB/s."""


@dataclass(frozen=True)
class Instance:
    """One replica of a component, as a pod is one replica of a Deployment."""

    name: str
    component: str
    pid: int | None
    started_at: float | None
    """Unix seconds when the current process started."""
    restarts: int
    """Restarts counted by the supervisor since the stack started (kubelet's restartCount)."""
    ready: bool
    state: str
    ready_at: float | None = None
    """Unix seconds when the current process first passed its readiness check; None if not yet, or unknown."""
    url: str | None = None
    """The replica's own address (not the service's), for probes that ask each replica; None if unknown."""


@dataclass(frozen=True)
class Killed:
    name: str
    pid: int
    signal: str
    killed_at: float
    """Unix seconds when the signal was sent."""
    restart_expected: bool = True
    """Whether the kill shows as one restart in ``kube_pod_container_status_restarts_total``: True when the
    supervisor restarts the replica in place (locally; the kubelet after a container kill), False for a pod deleted
    on Kubernetes, which is replaced by a new pod (a new series, counting from 0)."""


@dataclass(frozen=True)
class HttpErrorFault:
    ratio: float
    status: int
    ttl_seconds: float
    applied_at: float
    """Unix seconds when the target started applying it: the onset the alert probes measure from."""
    expires_at: float
    applied_to: tuple[str, ...] = ()
    pending: tuple[str, ...] = ()
    """Replicas that were not reachable; they get the fault when they are ready again."""


@dataclass(frozen=True)
class Healed:
    healed_at: float
    was_active: bool
    healed: tuple[str, ...] = ()


class Target(abc.ABC):
    """A running stack that faults can be injected into and measurements read from."""

    kind: str
    database: str = DEFAULT_DATABASE
    """The processor's database, which probes read and disasters destroy (the configuration's ``database``)."""

    @abc.abstractmethod
    def instances(self, component: str = "processor") -> list[Instance]:
        """Every replica of ``component``, ready or not."""

    def substitutions(self) -> list[str]:
        """Parts of the stack that stand in for the real ones on this target, one sentence each (the reports
        repeat them): none, unless a deployment says otherwise."""
        return []

    def kill(self, name: str, signal: str = "SIGKILL") -> Killed:
        """Send ``signal`` (SIGKILL or SIGTERM) to instance ``name``. The supervisor restarts it."""
        return self._kill(name, kill_signal(signal))

    @abc.abstractmethod
    def _kill(self, name: str, signal: str) -> Killed:
        """Send an allowed ``signal`` to instance ``name``."""

    def ask_replica(self, instance: Instance, path: str) -> tuple[int, dict]:
        """GET ``path`` from one replica itself, not through its service, whose balancer leaves out the replicas
        that fail their readiness check: a probe asking whether /health tells the truth must reach those too.
        Returns the status and the JSON answer ({} when it is not a JSON object). TargetUnreachable when the
        replica gives no HTTP answer."""
        import httpx

        if not instance.url:
            raise TargetMisconfigured(f"the {self.kind} target knows no address of replica {instance.name}")
        try:
            response = httpx.get(instance.url + path, timeout=REPLICA_TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise TargetUnreachable(f"replica {instance.name} gave no answer to GET {path}: {exc}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return response.status_code, answer if isinstance(answer, dict) else {}

    @abc.abstractmethod
    def endpoint(self, service: str) -> str:
        """Base URL of ``service``: processor_api, prometheus, alertmanager, producers."""

    @abc.abstractmethod
    def mongo_uri(self) -> str:
        """A MongoDB URI that reaches the processor's database."""

    @abc.abstractmethod
    def producer_acks(self) -> list[dict]:
        """Per producer: what the broker acknowledged (producer_id, acked, max_acked_seq, failed_seqs)."""

    @abc.abstractmethod
    def partition(self, between: list[str], mode: str = "hold", ttl_seconds: float = 30.0, **params: float) -> dict:
        """Cut the Kafka connections of the services in ``between`` (``processor``, ``producers``) from the
        broker for ``ttl_seconds``; ``mode`` is one of PARTITION_MODES, ``params`` are ``latency_ms`` or
        ``bandwidth_kbps`` for the partial modes. The fault must end by itself at its expiry, even if nobody
        heals it. Returns at least ``{"between", "mode", "ttl_seconds", "applied_at", "expires_at"}``.

        Locally the fault proxy in front of the brokers does it (chaos_dr_stack.local.partition). On Kubernetes the
        driver creates a NetworkPolicy in the app namespace that selects the pods of ``between`` and
        denies their egress to the broker's pods and port (``hold``/``drop`` are the same there: packets are
        dropped; ``reset`` needs a CNI that rejects, or is refused as InvalidArgument; the partial modes need a
        CNI/mesh fault and may be refused), labelled ``app.kubernetes.io/managed-by=chaos-made`` and annotated
        with its expiry (``gameday/expires-at``, Unix seconds), and it must delete it at the expiry itself
        (a Job or CronJob it creates with the policy, so the fault never outlives a killed `chaos run`).
        """

    def isolate_kafka_node(self, node: str, mode: str = "hold", ttl_seconds: float = 30.0) -> dict:
        """Cut every link between Kafka node ``node`` (``kafka-N``) and the other nodes, replication and the
        controller quorum alike, for ``ttl_seconds``, while clients still reach it: the controller fences it and
        its leaderships move, and it keeps answering clients with its last view of the cluster. ``heal_partition``
        ends it early, and it ends by itself at its expiry. Returns at least ``{"isolate", "mode", "ttl_seconds",
        "applied_at", "expires_at"}``.

        Locally the fault proxy does it (the node's controller and replication links cross it). On Kubernetes two
        egress NetworkPolicies do it, one on the node and one on the others. A target that cannot cut links
        between brokers raises TargetMisconfigured."""
        raise TargetMisconfigured(f"the {self.kind} target cannot isolate one Kafka node from the others")

    @abc.abstractmethod
    def heal_partition(self) -> dict:
        """Remove the partition now (on Kubernetes: delete every NetworkPolicy labelled chaos-made by
        ``partition``). Healing when nothing is cut is not an error. Returns ``{"was_active", "healed_at"}``."""

    @abc.abstractmethod
    def inject_http_errors(self, ratio: float, status: int, ttl_seconds: float) -> HttpErrorFault:
        """Make every processor replica answer ``ratio`` of its API requests (all but /metrics) with ``status``,
        deterministically, until healed or ``ttl_seconds`` have passed (the fault then clears itself)."""

    @abc.abstractmethod
    def heal_http_errors(self) -> Healed:
        """Remove the HTTP error fault from every replica. Healing when none is active is not an error."""

    @abc.abstractmethod
    def active_faults(self) -> list[dict]:
        """Faults in force now: ``[{"kind", ..., "applied_at", "expires_at"}]``, provider faults included
        (``"kind": "provider"``, with ``provider`` and ``mode``)."""

    # --- provider faults ---
    @abc.abstractmethod
    def fail_provider(self, provider: str, mode: str, ttl_seconds: float, **params: float) -> dict:
        """Make the provider simulator fail ``provider`` (one of PROVIDERS) with ``mode`` (PROVIDER_FAULT_MODES)
        for ``ttl_seconds``, replacing any fault that provider had; ``params`` as ``validate_provider_fault``
        says, which every implementation calls before any side effect. The simulator itself must end the fault
        at its expiry, even if nobody heals it. Returns at least ``{"provider", "mode", "applied_at",
        "expires_at"}`` (Unix seconds; ``applied_at`` is the onset failover is measured from).

        Locally the runner passes it to the simulator (``PUT /faults/providers/{provider}``). On Kubernetes
        the simulator runs in the cluster (deploy/k8s/) and the driver calls the same fault API
        through the simulator's Service (API-server service proxy or port-forward), with the fault token read
        from the simulator's Secret and sent as ``X-Gameday-Token``; the simulator enforces the TTL, so the
        fault ends even when `chaos run` is killed."""

    @abc.abstractmethod
    def restore_provider(self, provider: str) -> dict:
        """End ``provider``'s fault now. Healing a healthy provider is not an error.
        Returns ``{"provider", "was_active", "healed_at"}``. (Kubernetes: ``DELETE`` through the Service.)"""

    @abc.abstractmethod
    def restore_all_providers(self) -> dict:
        """End every provider fault now: the rollback. Returns at least ``{"healed_at", "healed": [providers]}``.
        (Kubernetes: ``DELETE /faults/providers`` through the Service.)"""

    def close(self) -> None:
        """Release connections. Targets are cheap and made fresh for every activity."""

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --- sweep: heal every fault in force ---
SWEEP_HEALERS = {
    "http-errors": "heal_http_errors",
    "kafka-partition": "heal_partition",
    "provider": "restore_all_providers",
}
"""Fault kind (as ``active_faults`` lists it) -> the Target method that heals every fault of that kind."""
PER_FAULT_HEALERS = {
    "component-stopped": lambda target, fault: target.start_component(fault["component"]),
}
"""Fault kinds healed one fault at a time, from what the listing says of it."""


def sweep_faults(target: Target) -> dict:
    """Heal every fault ``target.active_faults()`` lists; returns ``{"healed": [fault, ...], "failed": [{"kind",
    "error"}, ...]}``. A fault kind without a healer is reported as failed, never silently left in force.

    A driver whose faults are not all in ``active_faults`` (on Kubernetes: every NetworkPolicy labelled
    ``app.kubernetes.io/managed-by=chaos-made``, expired or not, whose Job may have died with the node) defines a
    method ``sweep(self) -> dict`` with the same result, and ``sweep_faults`` calls it instead. ``gameday sweep``
    calls this only when no experiment is running against the target.
    """
    own = getattr(target, "sweep", None)
    if callable(own):
        return own()
    healed: list[dict] = []
    failed: list[dict] = []
    done: set[str] = set()
    for fault in target.active_faults():
        kind = str(fault.get("kind"))
        if kind in PER_FAULT_HEALERS:
            try:
                PER_FAULT_HEALERS[kind](target, fault)
            except Exception as exc:  # noqa: BLE001 - reported with the fault; the others are still healed
                failed.append({"kind": kind, "error": f"{type(exc).__name__}: {exc}", "fault": fault})
            else:
                healed.append(fault)
            continue
        method = getattr(target, SWEEP_HEALERS.get(kind, ""), None)
        if method is None:
            failed.append({"kind": kind, "error": f"no healer for fault kind {kind!r}", "fault": fault})
            continue
        try:
            if kind not in done:  # one call heals every fault of the kind
                method()
                done.add(kind)
        except Exception as exc:  # noqa: BLE001 - reported with the fault; the other kinds are still healed
            failed.append({"kind": kind, "error": f"{type(exc).__name__}: {exc}", "fault": fault})
        else:
            healed.append(fault)
    return {"healed": healed, "failed": failed}
# --- provider faults ---
LLM_PROVIDERS = ("openai", "groq", "together")
"""The AI decision service's LLM chain, in fallback order (seed: primary, secondary, tertiary)."""
DATA_PROVIDERS = ("alpaca", "finnhub", "polygon", "coingecko", "newsapi", "gdelt")
"""The market data service's providers (seed: Alpaca → Finnhub → Polygon for quotes, CoinGecko for crypto,
NewsAPI → GDELT for headlines)."""
PROVIDERS = LLM_PROVIDERS + DATA_PROVIDERS
PROVIDER_FAULT_MODES = ("error", "latency", "timeout", "reset", "malformed")
"""error: answer ``status`` (500, 503, or 429 with ``retry_after_s``); latency: add ``latency_ms``; timeout:
accept and never answer (blackhole); reset: drop the connection; malformed: 200 with a body that does not parse."""
PROVIDER_ERROR_STATUSES = (500, 503, 429)
MAX_PROVIDER_LATENCY_MS = 600_000


def validate_provider_fault(provider: object, mode: object, ttl_seconds: object, **params: object) -> dict:
    """The body of a provider fault, checked before any side effect: every target calls this first.

    ``params`` may hold ``status`` (mode error: 500, 503 or 429; default 503), ``retry_after_s`` (only with
    429, whole seconds 0..3600), ``latency_ms`` (mode latency, 1..600000) and ``error_rate`` (any mode, in (0, 1], default 1:
    the share of requests the fault hits). A bad one raises InvalidArgument naming it."""
    if provider not in PROVIDERS:
        raise InvalidArgument(f"provider {provider!r} is not one of {', '.join(PROVIDERS)}")
    if mode not in PROVIDER_FAULT_MODES:
        raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(PROVIDER_FAULT_MODES)}")
    ttl = fault_ttl(ttl_seconds)
    unknown = sorted(set(params) - {"status", "retry_after_s", "latency_ms", "error_rate"})
    if unknown:
        raise InvalidArgument(f"{unknown[0]} is not a provider fault parameter "
                              "(status, retry_after_s, latency_ms, error_rate)")
    body: dict = {"mode": mode, "ttl_seconds": ttl}
    given = {k: v for k, v in params.items() if v is not None}
    if mode == "error":
        status = given.get("status", 503)
        if isinstance(status, bool) or status not in PROVIDER_ERROR_STATUSES:
            raise InvalidArgument(f"status must be one of {', '.join(map(str, PROVIDER_ERROR_STATUSES))}, got {status!r}")
        body["status"] = int(status)
        if "retry_after_s" in given:
            if status != 429:
                raise InvalidArgument(f"retry_after_s only applies to status 429, not {status!r}")
            # Retry-After carries whole seconds (RFC 9110 delay-seconds).
            body["retry_after_s"] = whole_number("retry_after_s", given["retry_after_s"], at_least=0, at_most=3600)
    else:
        for name in ("status", "retry_after_s"):
            if name in given:
                raise InvalidArgument(f"{name} only applies to mode 'error', not {mode!r}")
    if mode == "latency":
        body["latency_ms"] = number("latency_ms", given.get("latency_ms"), at_least=1, at_most=MAX_PROVIDER_LATENCY_MS)
    elif "latency_ms" in given:
        raise InvalidArgument(f"latency_ms only applies to mode 'latency', not {mode!r}")
    if "error_rate" in given:
        body["error_rate"] = number("error_rate", given["error_rate"], greater_than=0, at_most=1)
    return body


# Disaster recovery: the database, its backups, and restores, in one block.
DATA_SCOPES = ("database", "data-directory")
"""database: drop the processor's database; data-directory: delete the database server's data (the PVC)."""
CORRUPTION_MODES = ("truncate", "flip")


class DisasterRecovery(abc.ABC):
    """What the disaster-recovery actions and probes need from a target. Mixed into Target."""

    @abc.abstractmethod
    def destroy_data(self, scope: str = "database") -> dict:
        """Destroy the processor's data: ``database`` drops database ``ca3``; ``data-directory`` stops the
        database server, deletes its data directory and starts it again empty. Returns ``{"scope",
        "destroyed_at"}`` (Unix seconds of the destruction) and what was done.

        On Kubernetes the driver must: for ``database``, run ``dropDatabase`` through the mongo Service; for
        ``data-directory``, delete the mongo StatefulSet's PVC and its pod together (the StatefulSet recreates
        both, empty)."""

    @abc.abstractmethod
    def stop_component(self, component: str, ttl_seconds: float) -> dict:
        """Stop every instance of ``component`` (``mongo``, ``processor``) until ``start_component`` or the TTL,
        which the target enforces itself. Returns ``{"component", "stopped_at", "expires_at"}``.

        On Kubernetes: scale the StatefulSet/Deployment to 0 and annotate it with the previous replica count and
        ``gameday/expires-at``; a Job created with it scales it back at the expiry."""

    @abc.abstractmethod
    def start_component(self, component: str) -> dict:
        """Undo ``stop_component``; returns once the instances are started. Starting a running component is not
        an error. Returns ``{"component", "was_stopped", "started_at"}``."""

    @abc.abstractmethod
    def backups(self, verify: bool = False) -> dict:
        """The backup store: ``{"backups": [manifest + valid/problem], "changelog": {...}, "disasters": [...]}``.

        On Kubernetes: the backup agent's Service (the same agent image, its store on a PVC; ``mongodump --oplog``
        or the same pymongo dump against the mongo replica set)."""

    @abc.abstractmethod
    def take_backup(self) -> dict:
        """Take a snapshot now; returns its manifest."""

    @abc.abstractmethod
    def restore(self, backup_id: str | None = None, until: float | None = None, replay: bool = True) -> dict:
        """Restore the newest valid backup taken before the pending disaster (or ``backup_id``, or up to
        ``until``) with the processors' writes frozen, optionally replaying Kafka from the backup's point up to the
        processors' committed offsets (``replay``), then let the processors go on. Returns the agent's restore
        report plus ``{"processors_frozen_at", "processors_resumed_at"}``. Raises InvalidArgument naming the backups
        refused. Locally the freeze is a held Kafka partition of the processors (a TTL the proxy enforces); on
        Kubernetes, scale the processor Deployment to 0 (apache/kafka has no trouble with an empty group)."""

    @abc.abstractmethod
    def corrupt_backup(self, mode: str = "truncate", ttl_seconds: float = 300.0) -> dict:
        """Corrupt the backup a restore would choose now (its largest file), healed at the TTL by the agent."""

    @abc.abstractmethod
    def heal_backup_corruption(self) -> dict:
        """Undo ``corrupt_backup``; healing nothing is not an error. Returns ``{"was_active", "healed_at"}``."""
