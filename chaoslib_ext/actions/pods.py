"""Pod faults: kill processor replicas, the way a node failure or an OOM kill would, and wait for them back."""
from __future__ import annotations

import random
from typing import Any

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.actions._ready import wait_until_ready
from chaoslib_ext.arguments import number, whole_number
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration, kill_signal

__all__ = ["kill_processor_pods", "wait_for_processor_replicas"]

COMPONENT = "processor"


def _validate_kill_arguments(count: Any, signal: Any) -> tuple[int, str]:
    whole_number("count", count, at_least=1)
    kill_signal(signal)
    return count, signal


def kill_processor_pods(
    count: int = 1,
    signal: str = "SIGKILL",
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Kill ``count`` ready processor replicas with ``signal``: those restarted least often, chosen at random
    among equals.

    SIGKILL is a crash: the consumer does not leave its group, so its partitions wait for the session timeout.
    SIGTERM is a graceful stop: the processor commits and leaves the group at once. The supervisor restarts the
    replica either way, and the restart counts against the restart budget; the ``fault.kill`` event says whether
    it should show as a restart (``restart_expected``: not for a pod deleted on Kubernetes), which is what
    ``probes.restarts.processor_restarts_explained`` expects.

    Returns ``{"killed": [{"name", "pid", "signal", "killed_at"}], "signal", "count"}``.
    Raises ``InvalidArgument`` (before killing anything) for a bad count or signal, or when fewer than ``count``
    replicas are ready.
    """
    count, signal = _validate_kill_arguments(count, signal)
    with from_configuration(configuration, secrets) as target:
        ready = [i for i in target.instances(COMPONENT) if i.ready]
        if len(ready) < count:
            raise InvalidArgument(
                f"asked to kill {count} processor replica(s) but only {len(ready)} are ready "
                f"({', '.join(i.name for i in ready) or 'none'})"
            )
        killed = []
        for instance in least_restarted(ready, count):
            result = target.kill(instance.name, signal)
            timeline.record(
                "fault.kill", configuration, at=result.killed_at,
                target=target.kind, instance=result.name, pid=result.pid, signal=result.signal,
                restart_expected=result.restart_expected,
            )
            killed.append(
                {"name": result.name, "pid": result.pid, "signal": result.signal, "killed_at": result.killed_at}
            )
        return {"killed": killed, "signal": signal, "count": count}


def least_restarted(ready: list, count: int) -> list:
    """``count`` of the ``ready`` replicas, fewest restarts first, at random among equals. On Kubernetes a
    container killed again within minutes of its last restart waits out the kubelet's crash back-off first
    (measured on kind: 10 s for the second kill of a pod three minutes after the first, 20 s for the third), so a
    game day repeated on one stack spreads its kills over the replicas rather than measure the back-off."""
    return sorted(random.sample(ready, len(ready)), key=lambda instance: instance.restarts)[:count]


def wait_for_processor_replicas(
    timeout: float = 60.0, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Wait until every processor replica is ready; the rollback after a pod kill.

    Returns ``{"ready": [names], "waited_seconds"}``. Raises ``BudgetExceeded`` naming the replicas still not
    ready after ``timeout`` seconds.
    """
    timeout = number("timeout", timeout, greater_than=0)
    return wait_until_ready(COMPONENT, "processor replicas", timeout, configuration, secrets)
