"""The one interface every target implements: what actions and probes may ask of a running stack."""
from __future__ import annotations

import abc
from dataclasses import dataclass

ALLOWED_SIGNALS = ("SIGKILL", "SIGTERM")
"""Signals a pod-kill fault may send: a crash (SIGKILL) or a graceful stop (SIGTERM)."""

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

    @abc.abstractmethod
    def instances(self, component: str = "processor") -> list[Instance]:
        """Every replica of ``component``, ready or not."""

    @abc.abstractmethod
    def kill(self, name: str, signal: str = "SIGKILL") -> Killed:
        """Send ``signal`` to instance ``name``. The supervisor restarts it."""

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

        Locally the fault proxy in front of the broker does it (stack.local.partition). On Kubernetes (issue 7)
        the driver must create a NetworkPolicy in the app namespace that selects the pods of ``between`` and
        denies their egress to the broker's pods and port (``hold``/``drop`` are the same there: packets are
        dropped; ``reset`` needs a CNI that rejects, or is refused as InvalidArgument; the partial modes need a
        CNI/mesh fault and may be refused), labelled ``app.kubernetes.io/managed-by=chaos-made`` and annotated
        with its expiry (``gameday/expires-at``, Unix seconds), and it must delete it at the expiry itself
        (a Job or CronJob it creates with the policy, so the fault never outlives a killed `chaos run`).
        """

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
        """Faults in force now: ``[{"kind", ..., "applied_at", "expires_at"}]``."""

    def close(self) -> None:
        """Release connections. Targets are cheap and made fresh for every activity."""


# Disaster recovery (issue 6): the database, its backups, and restores. One block, so the Kubernetes driver's
# methods (issue 7) merge beside it.
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
