"""Repeated pod kills for a failover distribution: N trials of one signal, each on a settled consumer group.

The action only breaks things and records when: every kill is a ``fault.kill`` in the run's timeline (with its
trial number), and every wait for a settled group an ``observation.group_settled``. The failover seconds of each
trial are computed afterwards, read-only, from what MongoDB stored (``probes.failover.failover_distribution``).

A trial starts only on a *settled* group, or the next kill would land in the previous trial's rebalance and
measure the two together: every processor replica is ready and has joined the group (Prometheus reports its
``app_partition_assignments_total`` > 0 from its current process), the replicas together own every partition they
owned before the first trial, and neither the owned partitions nor the assignment counts have changed for
``settle_seconds``. Balance is not required: cooperative-sticky may leave a rejoined replica with no partition
(measured on the broker the local stack ran before Apache Kafka), and that group is stable; ``balanced`` in
``observation.group_settled`` says which it was.

The victim is the replica that processed the most events per second over the last ``RATE_WINDOW_SECONDS``
(``app_processed_messages_total``), not merely the one owning the most partitions: the producers key events by
producer id, so only some partitions carry data, and killing a replica that owns only idle partitions stalls
nothing and would measure a failover of zero.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number, whole_number
from chaoslib_ext.errors import BudgetExceeded, NoData
from chaoslib_ext.targets import Target, from_configuration, kill_signal
from chaoslib_ext.targets.prometheus import prometheus_query

__all__ = ["kill_processor_pods_in_trials"]

COMPONENT = "processor"
POLL_SECONDS = 0.25
MAX_TRIALS = 100
RATE_WINDOW_SECONDS = 3
"""Window of the processing rate that picks the victim: at least two scrapes of the local stack (1 s apart)."""
START_TIME_SLACK_SECONDS = 2.0
"""A replica's metrics come from its current process when ``process_start_time_seconds`` is within this of the
start time the supervisor reports (the two clocks read the same host's time at slightly different moments)."""


@dataclass(frozen=True)
class Assignment:
    """Partitions each replica owns, and how many assignments it has received, as Prometheus last scraped them
    from its current process."""

    owned: dict[str, int]
    assignments: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.owned.values())

    @property
    def balanced(self) -> bool:
        return bool(self.owned) and max(self.owned.values()) - min(self.owned.values()) <= 1

    def settled(self, replicas: int, expected_total: int | None) -> bool:
        """Every replica counted and joined, and every partition owned (all of ``expected_total``, if given)."""
        if len(self.owned) != replicas or self.total == 0:
            return False
        if expected_total is not None and self.total != expected_total:
            return False
        return all(self.assignments.get(name, 0) >= 1 for name in self.owned)


def current_assignment(target: Target) -> tuple[Assignment, list[str]]:
    """The assignment of every ready replica whose metrics come from its current process, and the names of the
    replicas not (yet) counted, with why."""
    instances = target.instances(COMPONENT)
    owned = {r["metric"].get("pod"): float(r["value"][1])
             for r in prometheus_query(target, f'app_assigned_partitions{{job="{COMPONENT}"}}')}
    started = {r["metric"].get("pod"): float(r["value"][1])
               for r in prometheus_query(target, f'process_start_time_seconds{{job="{COMPONENT}"}}')}
    assignments = {r["metric"].get("pod"): int(float(r["value"][1]))
                   for r in prometheus_query(target, f'app_partition_assignments_total{{job="{COMPONENT}"}}')}
    counted, waiting = {}, []
    for instance in instances:
        if not instance.ready:
            waiting.append(f"{instance.name} {instance.state}")
        elif instance.name not in owned or instance.name not in started or instance.started_at is None:
            waiting.append(f"{instance.name} not scraped yet")
        elif abs(started[instance.name] - instance.started_at) > START_TIME_SLACK_SECONDS:
            waiting.append(f"{instance.name} scraped from its previous process")
        elif assignments.get(instance.name, 0) < 1:
            waiting.append(f"{instance.name} has not joined the group yet")
        else:
            counted[instance.name] = int(owned[instance.name])
    return Assignment(counted, {n: assignments[n] for n in counted}), waiting


def busiest_replica(target: Target, candidates: list[str], timeout: float) -> tuple[str, float]:
    """The candidate with the highest processing rate (events/s) over the last ``RATE_WINDOW_SECONDS``. Waits up
    to ``timeout`` seconds for any processing at all (a loaded machine can take seconds per batch)."""
    deadline = time.monotonic() + timeout
    query = f'sum by (pod) (rate(app_processed_messages_total{{job="{COMPONENT}"}}[{RATE_WINDOW_SECONDS}s]))'
    while True:
        rates = {r["metric"].get("pod"): float(r["value"][1]) for r in prometheus_query(target, query)}
        best = max(candidates, key=lambda name: (rates.get(name, 0.0), random.random()))
        if rates.get(best, 0.0) > 0:
            return best, round(rates[best], 2)
        if time.monotonic() > deadline:
            raise NoData(f"no processor replica processed an event in any {RATE_WINDOW_SECONDS} s window for "
                         f"{timeout:g} s ({', '.join(candidates)}): a kill would stall nothing and measure no failover")
        time.sleep(POLL_SECONDS)


def wait_until_settled(target: Target, settle_seconds: float, timeout: float,
                       expected_total: int | None = None) -> Assignment:
    """Block until the group is settled (see the module's docstring); BudgetExceeded after ``timeout``."""
    started = time.monotonic()
    stable_since: float | None = None
    last: Assignment | None = None
    waiting: list[str] = []
    while True:
        replicas = len(target.instances(COMPONENT))
        assignment, waiting = current_assignment(target)
        now = time.monotonic()
        if not waiting and assignment.settled(replicas, expected_total):
            if last is None or assignment != last:
                stable_since = now
            elif stable_since is not None and now - stable_since >= settle_seconds:
                return assignment
        else:
            stable_since = None
        last = assignment
        if now - started > timeout:
            expected = f" of {expected_total}" if expected_total is not None else ""
            raise BudgetExceeded(
                f"the processor group did not settle within {timeout:g} s: owned partitions "
                f"{dict(sorted(assignment.owned.items())) or '{}'} (total {assignment.total}{expected})"
                + (f"; not counted: {', '.join(waiting)}" if waiting else "")
            )
        time.sleep(POLL_SECONDS)


def kill_processor_pods_in_trials(
    trials: int = 3,
    signal: str = "SIGKILL",
    settle_seconds: float = 3.0,
    settle_timeout: float = 90.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Run ``trials`` kills with ``signal`` (SIGKILL: a crash; SIGTERM: a graceful stop), one at a time: wait for
    a settled group (``settle_seconds`` unchanged, at most ``settle_timeout`` seconds), then kill the busiest
    replica. After the last kill it waits for the group to settle once more, so the next
    activity starts from a healthy pipeline.

    Each kill is recorded as ``fault.kill`` (``trial``, ``instance``, ``signal``, ``owned_partitions``).
    Returns ``{"signal", "trials": [{"trial", "instance", "pid", "owned_partitions", "events_per_second",
    "killed_at", "settled_after_s"}], "partitions"}`` (``settled_after_s``: from the kill until the group had
    been settled for ``settle_seconds``); it measures no failover itself. Raises InvalidArgument before any kill for a
    bad argument, BudgetExceeded naming the assignment when the group does not settle in time (a stuck group),
    NoData when no replica is processing anything.
    """
    whole_number("trials", trials, at_least=1, at_most=MAX_TRIALS)
    kill_signal(signal)
    settle_seconds = number("settle_seconds", settle_seconds, at_least=0)
    settle_timeout = number("settle_timeout", settle_timeout, at_least=1)
    with from_configuration(configuration, secrets) as target:
        baseline = wait_until_settled(target, settle_seconds, settle_timeout)
        timeline.record("observation.group_settled", configuration, owned=baseline.owned,
                        balanced=baseline.balanced, before_trial=1)
        done: list[dict] = []
        assignment = baseline
        for trial in range(1, trials + 1):
            if trial > 1:
                settle_started = time.time()
                assignment = wait_until_settled(target, settle_seconds, settle_timeout, baseline.total)
                done[-1]["settled_after_s"] = round(time.time() - done[-1]["killed_at"], 3)
                timeline.record("observation.group_settled", configuration, owned=assignment.owned,
                                balanced=assignment.balanced, before_trial=trial,
                                waited_s=round(time.time() - settle_started, 3))
            victim, rate = busiest_replica(target, sorted(assignment.owned), settle_timeout)
            owned = assignment.owned[victim]
            killed = target.kill(victim, signal)
            timeline.record("fault.kill", configuration, at=killed.killed_at, target=target.kind,
                            instance=killed.name, pid=killed.pid, signal=killed.signal, trial=trial,
                            owned_partitions=owned, events_per_second=rate, restart_expected=killed.restart_expected)
            done.append({"trial": trial, "instance": killed.name, "pid": killed.pid, "owned_partitions": owned,
                         "events_per_second": rate, "killed_at": killed.killed_at})
        final = wait_until_settled(target, settle_seconds, settle_timeout, baseline.total)
        done[-1]["settled_after_s"] = round(time.time() - done[-1]["killed_at"], 3)
        timeline.record("observation.group_settled", configuration, owned=final.owned,
                        balanced=final.balanced, after_trial=trials)
        return {"signal": signal, "trials": done, "partitions": baseline.total}
