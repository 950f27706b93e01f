"""Kafka broker faults as numbers: how long each partition could not be written, and how long until every
partition has all its replicas in sync again.

Write unavailability comes from the stored events' ``kafka_ts``: with the topics' ``LogAppendTime`` (the local
stack's Apache Kafka topics) it is when the partition's leader appended the event, so the gap across the fault in
a partition's append times is the time nobody could write to it (the producers keep producing and retrying;
their events carry our sequence numbers, and the loss probe checks that every acknowledged one was stored).
Replication comes from the brokers' own gauges on Prometheus (job ``kafka``), the series the Kafka SLO alerts read.
"""
from __future__ import annotations

import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData, TargetMisconfigured
from chaoslib_ext.targets import from_configuration
from probes._clients import mongo, prometheus_query
from probes._partitions import writes_after
from probes.measure import distribution, write_gap_across

__all__ = ["partition_write_unavailability", "replicas_back_in_sync"]

POLL_SECONDS = 0.5
LOOKBACK_SECONDS = 30.0
"""Appends this long before the fault are read: every active partition has several."""
UNDER_REPLICATED_SERIES = 'kafka_server_replicamanager_underreplicatedpartitions{job="kafka"}'
"""One series per broker: the partitions it leads that are under-replicated."""
UNDER_REPLICATED = f"sum({UNDER_REPLICATED_SERIES})"
BROKERS_REPORTING = f"count({UNDER_REPLICATED_SERIES})"
STABLE_STEPS = 5
"""1 s steps of nothing under-replicated after which the cluster counts as back in sync."""


def _broker_kill(configuration: Configuration) -> dict | None:
    kills = [k for k in timeline.faults_of_this_run({"fault.kill"}, configuration, "no Kafka broker was killed")
             if k.get("component") == "kafka"]
    if not kills and timeline.method_started(timeline.current_run(configuration)):
        raise NoData("the method ran but no Kafka broker kill (fault.kill of component kafka) was recorded")
    return kills[-1] if kills else None


def _number(name: str, value, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= minimum:
        raise InvalidArgument(f"{name} must be a number > {minimum:g}, got {value!r}")
    return float(value)


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
    """Per partition of ``topic`` active before this run's Kafka broker kill: seconds from its last append before
    the kill to its first append after it. Waits up to ``timeout`` seconds for every such partition to be
    written again (BudgetExceeded names the ones that were not). Also reports the producers' delivery errors
    since the kill (``app_produce_errors_total``).

    Judge ``target: p95`` (or ``max``) with a range tolerance. Before the method it returns zeros with
    ``"phase": "before"``. Returns ``{"phase", "n", "p50", "p95", "max", "partitions": {n: seconds},
    "producer_errors", "killed"}``."""
    if not isinstance(topic, str) or not topic:
        raise InvalidArgument(f"topic must be a topic name, got {topic!r}")
    timeout = _number("timeout", timeout)
    kill = _broker_kill(configuration)
    if kill is None:
        return {"phase": "before", "n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0, "partitions": {}}
    killed_at = float(kill["at"])
    target = from_configuration(configuration, secrets)
    client, db = mongo(target)
    try:
        while True:
            appends = _appends(db["events"], killed_at - LOOKBACK_SECONDS, topic)
            active = {p for p, times in appends.items() if any(t <= killed_at for t in times)}
            if not active:
                raise NoData(f"no event of {topic} was appended in the {LOOKBACK_SECONDS:g} s before the kill")
            gaps = {p: write_gap_across(appends[p], killed_at) for p in sorted(active)}
            waiting = [p for p, gap in gaps.items() if gap is None]
            if not waiting:
                break
            if time.time() - killed_at > timeout:
                raise BudgetExceeded(f"{topic} partitions {', '.join(map(str, waiting))} not written again "
                                     f"{timeout:g} s after the kill of {kill.get('instance')}")
            time.sleep(POLL_SECONDS)
        since_kill = max(2, round(time.time() - killed_at) + 1)
        errors = prometheus_query(target, f"sum(increase(app_produce_errors_total[{since_kill}s]))")
    finally:
        client.close()
        target.close()
    result = {"phase": "after", **distribution(gaps.values()),
              "partitions": {str(p): round(g, 3) for p, g in gaps.items()},
              "producer_errors": int(float(errors[0]["value"][1])) if errors else None,
              "killed": {"instance": kill.get("instance"), "at": killed_at,
                         "led_partitions": kill.get("led_partitions")}}
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
    """Seconds from this run's Kafka broker kill until no partition is under-replicated any more, as the brokers
    report it: every broker reporting again and the sum of their under-replicated partitions 0, for good. Read
    from Prometheus' history at 1 s steps, so it does not matter when the probe runs. Also the largest count in
    between. Before the method: the count now, which a steady state expects to be 0.

    Returns ``{"phase", "seconds", "under_replicated", "max_under_replicated"}``; BudgetExceeded after
    ``timeout`` seconds."""
    timeout = _number("timeout", timeout)
    kill = _broker_kill(configuration)
    target = from_configuration(configuration, secrets)
    try:
        if kill is None:
            rows = prometheus_query(target, UNDER_REPLICATED)
            if not rows:
                raise NoData(f"Prometheus has no {UNDER_REPLICATED}: are the brokers' JMX exporters scraped?")
            return {"phase": "before", "seconds": 0.0, "under_replicated": float(rows[0]["value"][1])}
        killed_at = float(kill["at"])
        brokers = len(kill.get("leader_counts") or {}) or 1
        while True:
            under = _history(target, UNDER_REPLICATED, killed_at)
            reporting = _history(target, BROKERS_REPORTING, killed_at)
            steps = sorted(at for at in set(under) | set(reporting) if at >= killed_at)
            bad = [at for at in steps if under.get(at, 1.0) > 0 or reporting.get(at, 0.0) < brokers]
            # In sync at the first good step after the last bad one; the kill itself always makes a bad step (the
            # killed broker stops reporting), so a good step before any bad one is too early to count.
            good = [at for at in steps if bad and at > bad[-1]]
            # Held for a few steps: a restarted broker reports 0 for a moment before the controller drops its old
            # incarnation from the ISRs.
            if len(good) >= STABLE_STEPS:
                in_sync_at = good[0]
                break
            if time.time() - killed_at > timeout:
                raise BudgetExceeded(f"partitions still under-replicated or brokers not reporting {timeout:g} s after "
                                     f"the kill of {kill.get('instance')}")
            time.sleep(POLL_SECONDS)
    finally:
        target.close()
    result = {"phase": "after", "seconds": round(in_sync_at - killed_at, 3), "under_replicated": 0.0,
              "max_under_replicated": max((under.get(at, 0.0) for at in steps), default=0.0)}
    timeline.record("observation.replicas_back_in_sync", configuration, **result)
    return result
