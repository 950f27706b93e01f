"""Probes of the processor replicas' state, as the supervisor (runner or kubelet) reports it."""
from __future__ import annotations

from chaoslib.types import Configuration, Secrets

from chaoslib_ext.targets import from_configuration

__all__ = ["all_processor_replicas_ready", "ready_processor_replicas"]


def ready_processor_replicas(configuration: Configuration = None, secrets: Secrets = None) -> int:
    """How many processor replicas are ready now."""
    with from_configuration(configuration, secrets) as target:
        return sum(1 for i in target.instances("processor") if i.ready)


def all_processor_replicas_ready(configuration: Configuration = None, secrets: Secrets = None) -> bool:
    """True when there is at least one processor replica and every one of them is ready."""
    with from_configuration(configuration, secrets) as target:
        instances = target.instances("processor")
        return bool(instances) and all(i.ready for i in instances)
