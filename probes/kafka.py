"""Kafka broker faults (a crash, an isolation) as numbers: how long each partition could not be written, and how
long until every partition has all its replicas in sync again.

Write unavailability comes from the stored events' ``kafka_ts``: with the topics' ``LogAppendTime`` (the stack's
Apache Kafka topics, locally and on Kubernetes) it is when the partition's leader appended the event, so the
longest pause in a partition's append times as the fault takes hold is the time nobody could write to it (the
producers keep producing and retrying; their events carry our sequence numbers, and the loss probe checks that
every acknowledged one was stored).
Replication comes from the brokers' own gauges on Prometheus (job ``kafka``), the series the Kafka SLO alerts read.
"""
from __future__ import annotations

import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData, TargetMisconfigured
from chaoslib_ext.targets import from_configuration
from probes._clients import prometheus_query, target_and_database
from probes._partitions import writes_after
from probes.measure import distribution, write_gap_across
from probes.windows import fault_ended

__all__ = ["partition_write_unavailability", "replicas_back_in_sync"]

POLL_SECONDS = 0.5
LOOKBACK_SECONDS = 30.0
"""Appends this long before the fault are read: every active partition has several."""
UNDER_REPLICATED_SERIES = 'kafka_server_replicamanager_underreplicatedpartitions{job="kafka"}'
"""One series per broker: the partitions it leads that are under-replicated."""
UNDER_REPLICATED = f"sum({UNDER_REPLICATED_SERIES})"
BROKERS_REPORTING = f"count({UNDER_REPLICATED_SERIES})"
FENCED_BROKERS = 'max(kafka_controller_kafkacontroller_fencedbrokercount{job="kafka"})'
"""The active controller's count of fenced brokers (the other nodes report 0)."""
STABLE_STEPS = 5
"""1 s steps of nothing under-replicated after which the cluster counts as back in sync."""
FAULT_ONSET_SECONDS = 5.0
"""How long after its recorded start a broker fault may bite: a kill sent through the API server lands a moment
later, and the pause in a partition's writes begins then (on kind, 0.05 to 0.15 s after it). A pause that
begins this soon after the start, or at any time before an isolation is healed, is the fault's."""


def _broker_fault(configuration: Configuration) -> dict | None:
    """This run's last Kafka broker fault, as ``{"kind": "crash"|"isolation", "at", "ended_at", "instance",
    "led_partitions", "leader_counts"}``: a crash ends at its kill, an isolation at its heal (None until then).
    None before the method; NoData once the method ran without one."""
    faults = [e for e in timeline.faults_of_this_run({"fault.kill", "fault.partition", "fault.healed"}, configuration)
              if e.get("component") == "kafka" or e.get("kind") == "fault.healed"]
    broker_faults = [e for e in faults if e.get("kind") != "fault.healed"]
    if not broker_faults:
        if timeline.method_started(timeline.current_run(configuration)):
            raise NoData("the method ran but no Kafka broker fault (a fault.kill or an isolating fault.partition of "
                         "component kafka) was recorded")
        return None
    fault = broker_faults[-1]
    at = float(fault["at"])
    if fault["kind"] == "fault.kill":
        kind, ended_at = "crash", at
    else:
        kind, (ended_at, _) = "isolation", fault_ended(fault, faults[faults.index(fault) + 1:])
    return {"kind": kind, "at": at, "ended_at": ended_at, "instance": fault.get("instance") or fault.get("isolate"),
            "led_partitions": fault.get("led_partitions"), "leader_counts": fault.get("leader_counts") or {}}


def _appends(events, since: float, topic: str) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for d in writes_after(events, since, fields=("kafka_topic", "kafka_partition", "kafka_ts", "kafka_ts_type")):
        if d.get("kafka_topic") != topic or d.get("kafka_ts") is None:
            continue
        if d.get("kafka_ts_type") != "append":
            raise TargetMisconfigured(
                f"topic {topic} stamps records with the producer's time ({d.get('kafka_ts_type')!r}), not the "
                "leader's append time: set message.timestamp.type=LogAppendTime on it to measure write gaps")
        found.setdefault(int(d["kafka_partition"]), []).append(float(d["kafka_ts"]))
    return found


def partition_write_unavailability(
    topic: str = "gpu-events", timeout: float = 90.0, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Per partition of ``topic`` active before this run's Kafka broker fault (a crash or an isolation): the longest
    pause in its appends that began at its last append before the fault, or while the fault was taking hold (up
    to FAULT_ONSET_SECONDS after a crash; until the heal of an isolation). Waits up to ``timeout`` seconds for
    every such partition to be written after that (BudgetExceeded names the ones that were not). Also reports the
    producers' delivery errors since the fault began (``app_produce_errors_total``).

    Judge ``target: p95`` (or ``max``) with a range tolerance. Before the method it returns zeros with
    ``"phase": "before"``. Returns ``{"phase", "n", "p50", "p95", "max", "partitions": {n: seconds},
    "producer_errors", "fault": {"kind", "instance", "at", "led_partitions"}}``."""
    if not isinstance(topic, str) or not topic:
        raise InvalidArgument(f"topic must be a topic name, got {topic!r}")
    timeout = number("timeout", timeout, greater_than=0)
    fault = _broker_fault(configuration)
    if fault is None:
        return {"phase": "before", "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "partitions": {}}
    began = fault["at"]
    onset_until = max(began + FAULT_ONSET_SECONDS, fault["ended_at"] or began)
    with target_and_database(configuration, secrets) as (target, db):
        while True:
            appends = _appends(db["events"], began - LOOKBACK_SECONDS, topic)
            active = {p for p, times in appends.items() if any(t <= began for t in times)}
            if not active:
                raise NoData(f"no event of {topic} was appended in the {LOOKBACK_SECONDS:g} s before the fault")
            gaps = {p: write_gap_across(appends[p], began, onset_until) for p in sorted(active)}
            waiting = [p for p, gap in gaps.items() if gap is None]
            if not waiting:
                break
            if time.time() - began > timeout:
                raise BudgetExceeded(f"{topic} partitions {', '.join(map(str, waiting))} not written again "
                                     f"{timeout:g} s after the {fault['kind']} of {fault['instance']}")
            time.sleep(POLL_SECONDS)
        since = max(2, round(time.time() - began) + 1)
        errors = prometheus_query(target, f"sum(increase(app_produce_errors_total[{since}s]))")
    result = {"phase": "after", **distribution(gaps.values()),
              "partitions": {str(p): round(g, 3) for p, g in gaps.items()},
              "producer_errors": int(float(errors[0]["value"][1])) if errors else None,
              "fault": {k: fault[k] for k in ("kind", "instance", "at", "led_partitions")}}
    timeline.record("observation.partition_write_unavailability", configuration,
                    **{k: v for k, v in result.items() if k != "partitions"})
    return result


def _history(target, promql: str, since: float) -> dict[float, float]:
    """Unix second → value of ``promql`` at 1 s steps since ``since`` (a subquery; missing steps had no data)."""
    window = max(2, int(time.time() - since) + 2)
    rows = prometheus_query(target, f"({promql})[{window}s:1s]")
    return {float(at): float(value) for row in rows for at, value in row.get("values", [])}


def replicas_back_in_sync(
    timeout: float = 120.0, configuration: Configuration = None, secrets: Secrets = None
) -> dict:
    """Seconds from the end of this run's Kafka broker fault (a crash ends at its kill, an isolation at its heal)
    until no partition is under-replicated any more, as the brokers report it: every broker reporting and the sum
    of their under-replicated partitions 0, for good. Read from Prometheus' history at 1 s steps, so it does not
    matter when the probe runs. Also: the largest count from the fault's start, how long after the start the
    in-sync replica sets first shrank, and the most brokers the controller reported fenced meanwhile. Before the
    method: the count now, which a steady state expects to be 0.

    Returns ``{"phase", "fault", "seconds", "under_replicated", "max_under_replicated", "shrank_after",
    "max_fenced"}``; BudgetExceeded ``timeout`` seconds after the fault ended (or began, while it lasts)."""
    timeout = number("timeout", timeout, greater_than=0)
    fault = _broker_fault(configuration)
    with from_configuration(configuration, secrets) as target:
        if fault is None:
            rows = prometheus_query(target, UNDER_REPLICATED)
            if not rows:
                raise NoData(f"Prometheus has no {UNDER_REPLICATED}: are the brokers' JMX exporters scraped?")
            return {"phase": "before", "seconds": 0.0, "under_replicated": float(rows[0]["value"][1])}
        began = fault["at"]
        brokers = len(fault["leader_counts"]) or 1
        while True:
            ended = fault["ended_at"] if fault["ended_at"] is not None else time.time()
            under = _history(target, UNDER_REPLICATED, began)
            reporting = _history(target, BROKERS_REPORTING, began)
            steps = sorted(at for at in set(under) | set(reporting) if at >= began)
            bad = [at for at in steps if under.get(at, 1.0) > 0 or reporting.get(at, 0.0) < brokers]
            # In sync at the first good step after the last bad one; the fault itself always makes a bad step (a
            # killed broker stops reporting, an isolated one leaves the ISRs), so a good step before any bad one,
            # or before the fault ended, is too early to count.
            good = [at for at in steps if bad and at > bad[-1] and at >= ended]
            # Held for a few steps: a restarted broker reports 0 for a moment before the controller drops its old
            # incarnation from the ISRs.
            if len(good) >= STABLE_STEPS:
                in_sync_at = good[0]
                break
            if time.time() - ended > timeout:
                raise BudgetExceeded(f"partitions still under-replicated or brokers not reporting {timeout:g} s after "
                                     f"the {fault['kind']} of {fault['instance']} ended")
            time.sleep(POLL_SECONDS)
        fenced = _history(target, FENCED_BROKERS, began)
    shrank = [at for at in steps if under.get(at, 0.0) > 0]
    result = {"phase": "after", "fault": fault["kind"], "seconds": round(max(0.0, in_sync_at - ended), 3),
              "under_replicated": 0.0,
              "max_under_replicated": max((under.get(at, 0.0) for at in steps), default=0.0),
              "shrank_after": round(shrank[0] - began, 3) if shrank else None,
              "max_fenced": max((v for at, v in fenced.items() if began <= at <= in_sync_at), default=None)}
    timeline.record("observation.replicas_back_in_sync", configuration, **result)
    return result
