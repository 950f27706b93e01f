"""The one interface every target implements: what actions and probes may ask of a running stack."""
from __future__ import annotations

import abc
from dataclasses import dataclass

ALLOWED_SIGNALS = ("SIGKILL", "SIGTERM")
"""Signals a pod-kill fault may send: a crash (SIGKILL) or a graceful stop (SIGTERM)."""


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

    def close(self) -> None:
        """Release connections. Targets are cheap and made fresh for every activity."""
