"""Failover as numbers: how long processing stops after a fault, measured from what MongoDB stores.

What is measured (``probes.measure.partition_resumed_at``): for every partition that was processed in the
``ACTIVE_LOOKBACK_SECONDS`` before the fault, the *stall* is the first gap longer than ``gap_seconds`` between
its writes (``written_at``) that begins within ``gap_seconds`` of the fault, and the partition *resumed* at the
first write after that gap (at its first write after the fault if it never stalled). The failover is the time
from the fault to the moment the last partition resumed. ``gap_seconds`` in the result is the longest such gap;
``stall_seconds`` is that gap less the partition's normal spacing between writes (median before the fault),
i.e. the outage itself: a planted 5.0 s proxy hold measures as 5.0 s within 250 ms.
The write times come from the processor's own clock (same host), read every ``POLL_SECONDS``; the resolution is
the processor's batching (``--batch-timeout-s`` 0.2 s), not the poll.
"""
from __future__ import annotations

import random
import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData
from chaoslib_ext.targets import ALLOWED_SIGNALS, Target, from_configuration
from probes._clients import mongo, prometheus_query
from probes._partitions import ACTIVE_LOOKBACK_SECONDS, active_partitions
from probes.measure import distribution, failover_seconds, partition_resumed_at, quantile

__all__ = ["failover_trials", "failover_distribution", "processing_stall", "backlog_drain_seconds"]

POLL_SECONDS = 0.1
FAILOVER_BUDGET_SECONDS = 30.0
"""The platform's failover budget."""


def _positive(name: str, value, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (value == 0 and not allow_zero):
        raise InvalidArgument(f"{name} must be a {'non-negative' if allow_zero else 'positive'} number, got {value!r}")
    return float(value)


def _writes(events, topic: str, partition: int, since: float) -> list[float]:
    return [
        float(d["written_at"])
        for d in events.find({"kafka_topic": topic, "kafka_partition": partition, "written_at": {"$gte": since}},
                             projection={"written_at": 1, "_id": 0})
    ]


def measure_failover(events, fault_at: float, gap_seconds: float, timeout: float, what: str) -> dict:
    """Poll until every active partition resumed after ``fault_at``; see the module's docstring."""
    partitions = active_partitions(events, fault_at, what)
    since = fault_at - ACTIVE_LOOKBACK_SECONDS
    while True:
        resumed = {
            f"{t}/{p}": partition_resumed_at(_writes(events, t, p, since), fault_at, gap_seconds)
            for t, p in partitions
        }
        seconds = failover_seconds(fault_at, resumed)
        if seconds is not None:
            stalls = {k: r[1] for k, r in resumed.items() if r is not None and r[1] > 0}
            # The outage is the gap less the partition's normal spacing between writes (one batch cadence).
            outage = max((stalls[k] - _cadence(events, k, fault_at) for k in stalls), default=0.0)
            return {
                "seconds": round(seconds, 3),
                "stall_seconds": round(max(0.0, outage), 3),
                "gap_seconds": round(max(stalls.values(), default=0.0), 3),
                "resumed_at": round(fault_at + seconds, 3),
                "partitions": {k: round(r[0] - fault_at, 3) for k, r in resumed.items()},
            }
        if time.time() - fault_at > timeout:
            waiting = [k for k, r in resumed.items() if r is None]
            raise BudgetExceeded(f"processing not resumed {timeout:g} s after {what}; still stalled: {', '.join(waiting)}")
        time.sleep(POLL_SECONDS)


def _cadence(events, key: str, fault_at: float) -> float:
    """Median spacing of a partition's writes in the lookback before the fault."""
    topic, partition = key.rsplit("/", 1)
    writes = sorted(w for w in _writes(events, topic, int(partition), fault_at - ACTIVE_LOOKBACK_SECONDS) if w <= fault_at)
    gaps = [b - a for a, b in zip(writes, writes[1:]) if b > a]
    return quantile(gaps, 0.5) if gaps else 0.0


def _owners(target: Target) -> dict[str, float]:
    """Partitions each processor replica owns, from Prometheus (``app_assigned_partitions``)."""
    try:
        rows = prometheus_query(target, 'app_assigned_partitions{job="processor"}')
    except NoData:
        return {}
    return {r["metric"].get("pod", "?"): float(r["value"][1]) for r in rows}


def _wait_ready(target: Target, timeout: float) -> None:
    started = time.monotonic()
    while True:
        instances = target.instances("processor")
        if instances and all(i.ready for i in instances):
            return
        if time.monotonic() - started > timeout:
            raise BudgetExceeded(f"processor replicas not all ready after {timeout:g} s: "
                                 + ", ".join(f"{i.name} {i.state}" for i in instances if not i.ready))
        time.sleep(0.2)


def failover_trials(
    trials: int = 3,
    signal: str = "SIGKILL",
    settle_seconds: float = 5.0,
    gap_seconds: float = 1.0,
    timeout: float = 60.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Run ``trials`` failovers in a row: each kills (``signal``: SIGKILL crash, SIGTERM graceful stop) the
    processor replica that owns the most partitions, measures the seconds until every partition is being
    processed again, then waits for every replica to be ready plus ``settle_seconds`` before the next trial.

    Every kill is recorded as ``fault.kill`` and every measurement as ``observation.failover`` in the timeline,
    where ``failover_distribution`` reads them. Returns ``{"signal", "trials": [{"instance", "killed_at",
    "seconds", "stall_seconds", "partitions"}], "n", "p50", "p95", "max"}``.
    Raises InvalidArgument before any kill for a bad argument, BudgetExceeded when a trial does not resume
    within ``timeout`` seconds.
    """
    if isinstance(trials, bool) or not isinstance(trials, int) or not 1 <= trials <= 100:
        raise InvalidArgument(f"trials must be a whole number within 1..100, got {trials!r}")
    if signal not in ALLOWED_SIGNALS:
        raise InvalidArgument(f"signal {signal!r} is not one of {', '.join(ALLOWED_SIGNALS)}")
    settle_seconds = _positive("settle_seconds", settle_seconds, allow_zero=True)
    gap_seconds = _positive("gap_seconds", gap_seconds)
    timeout = _positive("timeout", timeout)
    target = from_configuration(configuration, secrets)
    client, db = mongo(target)
    results = []
    try:
        for trial in range(1, trials + 1):
            _wait_ready(target, timeout)
            time.sleep(settle_seconds)
            owners = _owners(target)
            ready = [i for i in target.instances("processor") if i.ready]
            most = max((owners.get(i.name, 0.0) for i in ready), default=0.0)
            victim = random.choice([i for i in ready if owners.get(i.name, 0.0) == most])
            killed = target.kill(victim.name, signal)
            timeline.record("fault.kill", configuration, at=killed.killed_at, target=target.kind,
                            instance=killed.name, pid=killed.pid, signal=killed.signal, trial=trial)
            measured = measure_failover(db["events"], killed.killed_at, gap_seconds, timeout,
                                        f"{signal} of {killed.name}")
            result = {"trial": trial, "instance": killed.name, "owned_partitions": owners.get(killed.name),
                      "killed_at": killed.killed_at, **measured}
            timeline.record("observation.failover", configuration, signal=signal,
                            **{k: v for k, v in result.items() if k != "partitions"})
            results.append(result)
        _wait_ready(target, timeout)
        return {"signal": signal, "trials": results, **distribution(r["seconds"] for r in results)}
    finally:
        client.close()
        target.close()


def failover_distribution(
    signal: str | None = None, budget_seconds: float = FAILOVER_BUDGET_SECONDS,
    configuration: Configuration = None, secrets: Secrets = None,
) -> dict:
    """p50, p95 and max of this run's ``observation.failover`` measurements (of ``signal`` only, if given).

    Judge it with a range tolerance on ``target: p95`` against the 30 s budget. Before the method has run it
    returns zeros with ``"phase": "before"`` (nothing has been broken yet); after it, raises NoData when no
    trial was recorded. ``finding`` says in words whether p95 is within ``budget_seconds``."""
    if signal is not None and signal not in ALLOWED_SIGNALS:
        raise InvalidArgument(f"signal {signal!r} is not one of {', '.join(ALLOWED_SIGNALS)}")
    budget_seconds = _positive("budget_seconds", budget_seconds)
    run = timeline.current_run(configuration)
    measured = [e for e in run if e.get("kind") == "observation.failover" and signal in (None, e.get("signal"))]
    if not measured:
        if any(e.get("kind") == "run.method_started" for e in run):
            raise NoData(f"the method ran but recorded no failover trial{f' of {signal}' if signal else ''}")
        return {"phase": "before", "signal": signal, "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0,
                "budget_seconds": budget_seconds}
    result = {"phase": "after", "signal": signal, **distribution(e["seconds"] for e in measured),
              "seconds": [e["seconds"] for e in measured], "budget_seconds": budget_seconds}
    over = result["p95"] > budget_seconds
    result["finding"] = (
        f"failover p95 {result['p95']} s {'EXCEEDS' if over else 'is within'} the {budget_seconds:g} s budget "
        f"over {result['n']} {signal or 'kill'} trial(s)"
    )
    return result


def processing_stall(
    gap_seconds: float = 1.0, timeout: float = 60.0, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Failover after this run's newest ``fault.partition`` or ``fault.kill``: ``{"fault", "seconds"
    (fault → every partition processed again), "stall_seconds" (the longest gap in a partition's writes),
    "resumed_at", "partitions"}``. Before the method it returns zeros; after it, NoData without a fault."""
    gap_seconds = _positive("gap_seconds", gap_seconds)
    timeout = _positive("timeout", timeout)
    run = timeline.current_run(configuration)
    faults = [e for e in run if e.get("kind") in ("fault.partition", "fault.kill")]
    if not faults:
        if any(e.get("kind") == "run.method_started" for e in run):
            raise NoData("the method ran but no fault.partition or fault.kill was recorded in this run")
        return {"fault": None, "seconds": 0.0, "stall_seconds": 0.0}
    fault = faults[-1]
    target = from_configuration(configuration, secrets)
    client, db = mongo(target)
    try:
        measured = measure_failover(db["events"], float(fault["at"]), gap_seconds, timeout, fault["kind"])
    finally:
        client.close()
        target.close()
    timeline.record("observation.failover", configuration, fault=fault["kind"],
                    **{k: v for k, v in measured.items() if k != "partitions"})
    return {"fault": fault["kind"], **measured}


def backlog_drain_seconds(
    caught_up_lag_seconds: float = 1.0, timeout: float = 120.0,
    configuration: Configuration = None, secrets: Secrets = None,
) -> float:
    """Seconds from this run's newest ``fault.healed`` until the backlog has drained: the first event written
    after the heal whose own lag (``written_at - produced_at``) is at most ``caught_up_lag_seconds`` *and* was
    produced after the heal, so the processor is back at the head of every partition it reads.

    Before the method: 0.0. After it: NoData without a heal, BudgetExceeded after ``timeout`` seconds."""
    caught_up_lag_seconds = _positive("caught_up_lag_seconds", caught_up_lag_seconds)
    timeout = _positive("timeout", timeout)
    run = timeline.current_run(configuration)
    heals = [e for e in run if e.get("kind") == "fault.healed"]
    if not heals:
        if any(e.get("kind") == "run.method_started" for e in run):
            raise NoData("the method ran but no fault.healed was recorded in this run")
        return 0.0
    healed_at = float(heals[-1]["at"])
    faults = [e for e in run if e.get("kind", "").startswith("fault.") and e.get("kind") != "fault.healed"]
    fault_at = float(faults[-1]["at"]) if faults else healed_at
    target = from_configuration(configuration, secrets)
    client, db = mongo(target)
    events = db["events"]
    try:
        partitions = active_partitions(events, fault_at)
        drained: dict[tuple[str, int], float] = {}
        while True:
            for doc in events.find({"written_at": {"$gt": healed_at}, "produced_at": {"$gt": healed_at}},
                                   projection={"written_at": 1, "produced_at": 1, "kafka_topic": 1,
                                               "kafka_partition": 1, "_id": 0}):
                key = (doc["kafka_topic"], int(doc["kafka_partition"]))
                if key in partitions and doc["written_at"] - doc["produced_at"] <= caught_up_lag_seconds:
                    drained[key] = min(drained.get(key, doc["written_at"]), doc["written_at"])
            if len(drained) == len(partitions):
                seconds = round(max(drained.values()) - healed_at, 3)
                timeline.record("observation.drained", configuration, seconds=seconds,
                                caught_up_lag_seconds=caught_up_lag_seconds)
                return seconds
            if time.time() - healed_at > timeout:
                waiting = [f"{t}/{p}" for t, p in partitions if (t, p) not in drained]
                raise BudgetExceeded(f"backlog not drained {timeout:g} s after the heal; still behind: "
                                     + ", ".join(waiting))
            time.sleep(POLL_SECONDS * 5)
    finally:
        client.close()
        target.close()
