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


# --- sweep: heal every fault in force (issue 8) ---
SWEEP_HEALERS = {
    "http-errors": "heal_http_errors",
    "kafka-partition": "heal_partition",
    "provider": "restore_all_providers",
}
"""Fault kind (as ``active_faults`` lists it) -> the Target method that heals every fault of that kind."""


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
