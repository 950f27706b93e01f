"""Failover as numbers: how long processing stops after a fault, measured from what MongoDB stores.

What is measured (``probes.measure.partition_resumed_at``): for every partition that was processed in the
``ACTIVE_LOOKBACK_SECONDS`` before the fault, the *stall* is the first gap longer than ``gap_seconds`` between
its writes (``written_at``) that begins within ``gap_seconds`` of the fault, and the partition *resumed* at the
first write after that gap (at its first write after the fault if it never stalled). The failover is the time
from the fault to the moment the last partition resumed. ``gap_seconds`` in the result is the longest such gap;
``stall_seconds`` is that gap less the partition's normal spacing between writes (median before the fault),
i.e. the outage itself: a planted 5.0 s proxy hold measures as 5.0 s within 250 ms.
The write times come from the processor's own clock (same host), re-read every ``POLL_SECONDS``; the resolution
is the processor's batching (``--batch-timeout-s`` 0.2 s), not the poll.
"""
from __future__ import annotations

import logging
import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import BudgetExceeded, NoData, TargetUnreachable
from chaoslib_ext.targets import Target, kill_signal
from probes._clients import prometheus_query, target_and_database
from probes._partitions import ACTIVE_LOOKBACK_SECONDS, active_partitions, writes_after
from probes.measure import distribution, failover_seconds, partition_resumed_at, quantile

__all__ = ["failover_distribution", "processing_stall", "backlog_drain_seconds"]

log = logging.getLogger("chaostoolkit")

POLL_SECONDS = 0.5
"""How often an undecided failover is re-read. The resolution comes from the stored write times, not from this:
polling faster only loads the single-threaded Mongo-compatible server the processor is writing to."""
FAILOVER_BUDGET_SECONDS = 30.0
"""The platform's failover budget."""
IDENTITY_LABELS = ("__name__", "job", "instance", "pod", "namespace")


def _writes(events, since: float, until: float | None = None) -> dict[str, list[float]]:
    """Write times per ``topic/partition`` after ``since`` (and up to ``until``): one indexed range read, so a poll
    costs the single-threaded Mongo-compatible server one scan, whatever the number of partitions."""
    found: dict[str, list[float]] = {}
    for d in writes_after(events, since, until, ("kafka_topic", "kafka_partition")):
        found.setdefault(f"{d['kafka_topic']}/{d['kafka_partition']}", []).append(float(d["written_at"]))
    return found


def _resumption(events, partitions: list[tuple[str, int]], fault_at: float, gap_seconds: float,
                until: float | None) -> tuple[dict | None, list[str]]:
    """The failover after ``fault_at`` from the writes before ``until`` (the next fault, if any), or None with the
    partitions still undecided."""
    writes = _writes(events, fault_at - ACTIVE_LOOKBACK_SECONDS, until)
    resumed = {f"{t}/{p}": partition_resumed_at(writes.get(f"{t}/{p}", []), fault_at, gap_seconds)
               for t, p in partitions}
    seconds = failover_seconds(fault_at, resumed)
    if seconds is None:
        return None, [k for k, r in resumed.items() if r is None]
    stalls = {k: r[1] for k, r in resumed.items() if r is not None and r[1] > 0}
    # The outage is the gap less the partition's normal spacing between writes (one batch cadence).
    outage = max((stalls[k] - _cadence(writes.get(k, []), fault_at) for k in stalls), default=0.0)
    return {
        "seconds": round(seconds, 3),
        "stall_seconds": round(max(0.0, outage), 3),
        "gap_seconds": round(max(stalls.values(), default=0.0), 3),
        "resumed_at": round(fault_at + seconds, 3),
        "partitions": {k: round(r[0] - fault_at, 3) for k, r in resumed.items() if r is not None},
    }, []


def measure_failover(events, fault_at: float, gap_seconds: float, timeout: float, what: str,
                     until: float | None = None) -> dict:
    """Poll until every active partition resumed after ``fault_at``; see the module's docstring. With ``until``
    (the next fault) only the writes before it count, and a partition not resumed by then is BudgetExceeded."""
    partitions = active_partitions(events, fault_at, what)
    while True:
        measured, waiting = _resumption(events, partitions, fault_at, gap_seconds, until)
        if measured is not None:
            return measured
        if until is not None and time.time() > until:
            raise BudgetExceeded(f"processing not resumed after {what} before the next fault "
                                 f"{until - fault_at:.1f} s later; still stalled: {', '.join(waiting)}")
        if time.time() - fault_at > timeout:
            raise BudgetExceeded(f"processing not resumed {timeout:g} s after {what}; still stalled: {', '.join(waiting)}")
        time.sleep(POLL_SECONDS)


def _cadence(writes: list[float], fault_at: float) -> float:
    """Median spacing of a partition's writes in the lookback before the fault."""
    before = sorted(w for w in writes if w <= fault_at)
    gaps = [b - a for a, b in zip(before, before[1:]) if b > a]
    return quantile(gaps, 0.5) if gaps else 0.0


def consumer_settings(target: Target) -> dict[str, str]:
    """The consumer settings the processor replicas report (``app_consumer_info``); {} when none is scraped."""
    try:
        rows = prometheus_query(target, 'app_consumer_info{job="processor"}')
    except (NoData, TargetUnreachable):
        return {}
    settings = [{k: v for k, v in r["metric"].items() if k not in IDENTITY_LABELS} for r in rows]
    return settings[0] if settings and all(s == settings[0] for s in settings) else {}


def _finding(result: dict, signal: str | None, settings: dict[str, str]) -> str:
    over = result["p95"] > result["budget_seconds"]
    words = (f"{signal or 'kill'} failover p95 {result['p95']} s (max {result['max']} s, n={result['n']}) "
             f"{'EXCEEDS' if over else 'is within'} the {result['budget_seconds']:g} s platform budget")
    session_ms = settings.get("session_timeout_ms")
    if settings.get("group_protocol") == "consumer":
        words += "; the processor runs the consumer group protocol (KIP-848: the broker owns the session)"
    elif session_ms:
        words += f"; the processor runs session.timeout.ms={session_ms}"
        if settings.get("heartbeat_interval_ms"):
            words += f", heartbeat.interval.ms={settings['heartbeat_interval_ms']}"
        if settings.get("assignment_strategy"):
            words += f", {settings['assignment_strategy']}"
        if over and signal == "SIGKILL" and float(session_ms) / 1000 >= result["budget_seconds"]:
            words += (": a crashed member keeps its partitions until its session expires, so crash failover "
                      "cannot be within the budget; lower session.timeout.ms")
    return words


def failover_distribution(
    signal: str | None = None,
    budget_seconds: float = FAILOVER_BUDGET_SECONDS,
    gap_seconds: float = 1.0,
    timeout: float = 90.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """p50, p95 and max of the failover seconds of this run's ``fault.kill`` events (of ``signal`` only, if
    given), each computed read-only from MongoDB's write times: from the kill until every partition that was
    being processed before it has been written again (see the module's docstring), counting only the writes
    before the next kill. The trials come from ``chaoslib_ext.actions.kill_trials``.

    Judge it with a range tolerance on ``target: p95`` against the 30 s budget. Before the method it returns its
    baseline, zeros with ``"phase": "before"`` (nothing has been broken yet); after it, NoData when no kill of
    ``signal`` was recorded, BudgetExceeded when a trial had not resumed before the next kill (or, for the last,
    within ``timeout`` seconds). ``finding`` says in words whether p95 is within ``budget_seconds``, with the
    consumer settings the processor reports; when over, it is also logged as a warning."""
    if signal is not None:
        kill_signal(signal)
    budget_seconds = number("budget_seconds", budget_seconds, greater_than=0)
    gap_seconds = number("gap_seconds", gap_seconds, greater_than=0)
    timeout = number("timeout", timeout, greater_than=0)
    kills = timeline.faults_of_this_run({"fault.kill"}, configuration, "no failover trial to measure")
    if not kills:
        return {"phase": "before", "signal": signal, "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0,
                "budget_seconds": budget_seconds}
    chosen = [(i, k) for i, k in enumerate(kills) if signal in (None, k.get("signal"))]
    if not chosen:
        raise NoData(f"the method ran but no fault.kill with {signal} was recorded in this run")
    with target_and_database(configuration, secrets) as (target, db):
        trials = []
        for index, kill in chosen:
            fault_at = float(kill["at"])
            until = float(kills[index + 1]["at"]) if index + 1 < len(kills) else None
            what = f"the {kill.get('signal')} of {kill.get('instance')} (trial {kill.get('trial', index + 1)})"
            measured = measure_failover(db["events"], fault_at, gap_seconds, timeout, what, until)
            trials.append({"trial": kill.get("trial"), "instance": kill.get("instance"),
                           "owned_partitions": kill.get("owned_partitions"),
                           "events_per_second": kill.get("events_per_second"), "killed_at": fault_at,
                           **{k: v for k, v in measured.items() if k != "partitions"}})
        settings = consumer_settings(target)
    result = {"phase": "after", "signal": signal, **distribution(t["seconds"] for t in trials),
              "seconds": [t["seconds"] for t in trials], "budget_seconds": budget_seconds,
              "consumer_settings": settings, "trials": trials}
    result["finding"] = _finding(result, signal, settings)
    if result["p95"] > budget_seconds:
        log.warning("finding: %s", result["finding"])
    timeline.record("observation.failover_distribution", configuration,
                    **{k: v for k, v in result.items() if k != "trials"})
    return result


def processing_stall(
    gap_seconds: float = 1.0, timeout: float = 60.0, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Failover after this run's newest ``fault.partition`` or ``fault.kill``: ``{"fault", "seconds"
    (fault → every partition processed again), "stall_seconds" (the longest gap in a partition's writes),
    "resumed_at", "partitions"}``. Before the method it returns zeros; after it, NoData without a fault."""
    gap_seconds = number("gap_seconds", gap_seconds, greater_than=0)
    timeout = number("timeout", timeout, greater_than=0)
    faults = timeline.faults_of_this_run({"fault.partition", "fault.kill"}, configuration)
    if not faults:
        return {"fault": None, "seconds": 0.0, "stall_seconds": 0.0}
    fault = faults[-1]
    with target_and_database(configuration, secrets) as (target, db):
        measured = measure_failover(db["events"], float(fault["at"]), gap_seconds, timeout, fault["kind"])
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
    caught_up_lag_seconds = number("caught_up_lag_seconds", caught_up_lag_seconds, greater_than=0)
    timeout = number("timeout", timeout, greater_than=0)
    heals = timeline.faults_of_this_run({"fault.healed"}, configuration, "nothing to drain from")
    if not heals:
        return 0.0
    run = timeline.current_run(configuration)
    healed_at = float(heals[-1]["at"])
    faults = [e for e in run if e.get("kind", "").startswith("fault.") and e.get("kind") != "fault.healed"]
    fault_at = float(faults[-1]["at"]) if faults else healed_at
    with target_and_database(configuration, secrets) as (target, db):
        events = db["events"]
        partitions = active_partitions(events, fault_at)
        drained: dict[tuple[str, int], float] = {}
        while True:
            for doc in writes_after(events, healed_at, fields=("produced_at", "kafka_topic", "kafka_partition")):
                if doc.get("produced_at") is None or doc["produced_at"] <= healed_at:
                    continue
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
            time.sleep(POLL_SECONDS * 2)
