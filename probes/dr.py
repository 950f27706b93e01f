"""Disaster-recovery probes: RPO and RTO from the data itself, and what a restore left behind.

**RPO** (seconds): the time of the disaster minus the recovery point. The recovery point is, per producer, the
produce time of the newest event acknowledged before the disaster that is stored after the restore *with no
acknowledged event missing before it*; the stack's recovery point is the oldest of them. (With nothing lost this
is exactly "the newest acknowledged event present"; with a gap, an event after the gap does not hide the gap.)
The producers' acknowledgements at the moment of the disaster are recorded by ``destroy_data`` in the timeline.
It is reported twice: ``with_replay`` over everything stored now, and ``without_replay`` over the events that
the backup and its change log brought back (``written_at`` before the disaster); events re-consumed from Kafka
after the restore carry a later ``written_at``. Without a replay the processors resume from their committed
offsets, which are past every event they had consumed, so those re-consumed events would be missing.

**RTO** (seconds): from the destroy action to the first moment, polled from the user's side, when the processor
API's ``/health`` is 200 AND ``/gpu/info`` lists every GPU with the newest stored event for it AND the history
from before the disaster is back (each producer's oldest acknowledged event of the window is stored).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx
from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import BudgetExceeded, InvalidArgument, NoData
from chaoslib_ext.targets import from_configuration
from probes._clients import target_and_database
from probes._partitions import first_seq_at_or_after
from probes.measure import ProducerAcks

__all__ = ["rpo_report", "rpo_seconds", "rto_seconds", "restore_report", "backup_store_report",
           "corrupt_backups_refused", "integrity_report"]

LISTED_LOST_EVENTS = 100
POLL_SECONDS = 0.5


# Pure logic: no I/O, tested in tests/unit/test_dr_probes.py.
@dataclass(frozen=True)
class Rpo:
    seconds: float
    recovery_point: float | None
    lost: list[tuple[str, int]]
    checked: int


def rpo_from(disaster_at: float, acked: Iterable[ProducerAcks], stored: Mapping[str, Mapping[int, float]]) -> Rpo:
    """RPO from what was acknowledged before the disaster and what is stored (producer → seq → produced_at)."""
    points: list[float] = []
    lost: list[tuple[str, int]] = []
    checked = 0
    for window in acked:
        expected = sorted(window.expected())
        checked += len(expected)
        have = stored.get(window.producer_id, {})
        missing = [s for s in expected if s not in have]
        lost.extend((window.producer_id, s) for s in missing)
        horizon = missing[0] if missing else window.max_acked_seq + 1
        before = [s for s in expected if s < horizon and s in have]
        if before:
            points.append(have[before[-1]])
        elif expected:
            # Nothing of the window survived: the recovery point is the window's start, at best.
            first = [have[s] for s in have if s < window.first_seq]
            points.append(max(first) if first else float("-inf"))
    if not points:
        return Rpo(0.0, None, lost, checked)
    point = min(points)
    seconds = float("inf") if point == float("-inf") else max(0.0, disaster_at - point)
    return Rpo(round(seconds, 3), None if point == float("-inf") else point, lost, checked)


def gpu_info_consistent(api_gpus: list[dict], newest: Mapping[str, float]) -> bool:
    """Does ``/gpu/info`` list every GPU the stored events know, each at least as new as its newest stored
    event (it was read after the events, so under load it may only be newer)?"""
    by_id = {g.get("gpu_id"): g for g in api_gpus}
    return bool(newest) and all(
        gpu in by_id and float(by_id[gpu].get("produced_at") or 0) >= produced for gpu, produced in newest.items()
    )


# Probes.
def _disaster(configuration: Configuration) -> dict:
    event = timeline.last("fault.destroy_data", configuration)
    if event is None:
        raise NoData("no fault.destroy_data in the timeline: nothing to measure RPO or RTO from")
    return event


def _windows(events, acked: list[dict], since: float | None) -> list[ProducerAcks]:
    windows = []
    for a in acked:
        first = first_seq_at_or_after(events, a["producer_id"], since)
        windows.append(ProducerAcks(a["producer_id"], int(a["max_acked_seq"]),
                                    frozenset(int(s) for s in a.get("failed_seqs", [])), first))
    return windows


def _stored(events, windows: list[ProducerAcks], written_before: float | None) -> dict[str, dict[int, float]]:
    stored: dict[str, dict[int, float]] = {}
    for w in windows:
        # The (producer_id, seq) range alone: with written_at in the filter too the read scans the collection.
        query = {"producer_id": w.producer_id, "seq": {"$gte": max(1, w.first_seq - 1), "$lte": w.max_acked_seq}}
        docs = events.find(query, projection={"seq": 1, "produced_at": 1, "written_at": 1, "_id": 0})
        stored[w.producer_id] = {int(d["seq"]): float(d["produced_at"]) for d in docs
                                 if written_before is None or (d.get("written_at") is not None and d["written_at"] < written_before)}
    return stored


def rpo_report(since: float | str | None = "run-start", settle_timeout: float = 60.0,
               configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """RPO without and with the Kafka replay, and the lost events by ``producer_id:seq``, for the newest
    ``fault.destroy_data`` of the timeline. ``since``: only events produced from then on are checked
    (``run-start``, default; ``start``; or Unix seconds). Waits up to ``settle_timeout`` seconds for the replay to
    bring back what it can (until nothing is missing, or no progress for 10 s).

    Returns ``{"disaster_at", "checked", "rpo_seconds" (with replay), "rpo_seconds_without_replay", "lost",
    "without_replay": {"rpo_seconds", "recovery_point", "lost", "lost_events"}, "with_replay": {...}}``; judge
    ``rpo_seconds`` with a range tolerance (``target: rpo_seconds``) against the 60 s RPO target. Before the method
    of an experiment it returns zeros with ``before_fault: true``."""
    settle_timeout = number("settle_timeout", settle_timeout, at_least=0)
    run = timeline.current_run(configuration)
    if run and run[0].get("kind") == "run.started" and not any(e.get("kind") == "fault.destroy_data" for e in run):
        if any(e.get("kind") == "run.method_started" for e in run):
            raise NoData("the method ran but recorded no fault.destroy_data: nothing to measure RPO from")
        # The steady state before the method: nothing has been destroyed, nothing can be lost yet.
        return {"rpo_seconds": 0.0, "rpo_seconds_without_replay": 0.0, "before_fault": True}
    disaster = _disaster(configuration)
    disaster_at = float(disaster["at"])
    if since == "run-start":
        since_at = timeline.run_started_at(configuration)
    elif since in (None, "start"):
        since_at = None
    elif isinstance(since, (int, float)) and not isinstance(since, bool):
        since_at = float(since)
    else:
        raise InvalidArgument(f"since must be 'run-start', 'start' or Unix seconds, got {since!r}")
    with target_and_database(configuration, secrets) as (target, db):
        events = db["events"]
        windows = _windows(events, disaster.get("acked") or [], since_at)
        if not windows:
            raise NoData("the timeline's fault.destroy_data recorded no producer acknowledgements")
        without = rpo_from(disaster_at, windows, _stored(events, windows, written_before=disaster_at))
        started, last_change, previous = time.monotonic(), time.monotonic(), None
        while True:
            with_replay = rpo_from(disaster_at, windows, _stored(events, windows, None))
            if not with_replay.lost or time.monotonic() - started >= settle_timeout:
                break
            if previous is None or len(with_replay.lost) < previous:
                previous, last_change = len(with_replay.lost), time.monotonic()
            elif time.monotonic() - last_change > 10:
                break
            time.sleep(1.0)

    if with_replay.checked == 0:
        # An RPO of zero over no events would pass any target: that is no measurement.
        window = "" if since_at is None else f" between the run's start and the disaster {disaster_at - since_at:.1f} s later"
        raise NoData(f"no event was acknowledged{window}: nothing to measure RPO from. Are the producers "
                     "producing? Give them time before the destroy action (pauses: before)")

    def part(r: Rpo) -> dict:
        return {"rpo_seconds": r.seconds, "recovery_point": r.recovery_point, "lost": len(r.lost),
                "lost_events": [f"{p}:{s}" for p, s in r.lost[:LISTED_LOST_EVENTS]]}

    report = {"disaster_at": disaster_at, "checked": with_replay.checked, "rpo_seconds": with_replay.seconds,
              "rpo_seconds_without_replay": without.seconds, "lost": len(with_replay.lost),
              "without_replay": part(without), "with_replay": part(with_replay)}
    timeline.record("observation.rpo", configuration, rpo_without_replay=without.seconds,
                    rpo_with_replay=with_replay.seconds, lost_without_replay=len(without.lost),
                    lost_with_replay=len(with_replay.lost))
    return report


def rpo_seconds(replay: bool = True, since: float | str | None = "run-start", settle_timeout: float = 60.0,
                configuration: Configuration = None, secrets: Secrets = None) -> float:
    """The RPO of ``rpo_report``, with or without the Kafka replay."""
    report = rpo_report(since, settle_timeout, configuration, secrets)
    return float(report["rpo_seconds" if replay else "rpo_seconds_without_replay"])


def _history_back(events, windows: list[ProducerAcks]) -> bool:
    for w in windows:
        first = min(w.expected(), default=None)
        if first is not None and events.count_documents({"producer_id": w.producer_id, "seq": first}, limit=1) == 0:
            return False
    return True


def _newest_per_gpu(events) -> dict[str, float]:
    return {row["_id"]: row["produced_at"] for row in events.aggregate([
        {"$match": {"kind": "gpu"}}, {"$group": {"_id": "$gpu_id", "produced_at": {"$max": "$produced_at"}}}])}


def rto_seconds(timeout: float = 900.0, configuration: Configuration = None, secrets: Secrets = None) -> float:
    """Seconds from the newest ``fault.destroy_data`` until the user sees the restored service (module doc).
    Before the method has run it returns 0.0. Raises BudgetExceeded, saying what was still wrong, after
    ``timeout`` seconds from the disaster."""
    timeout = number("timeout", timeout, greater_than=0)
    run = timeline.current_run(configuration)
    if not any(e.get("kind") == "fault.destroy_data" for e in run):
        if any(e.get("kind") == "run.method_started" for e in run):
            raise NoData("the method ran but recorded no fault.destroy_data: nothing to measure RTO from")
        return 0.0
    disaster = _disaster(configuration)
    disaster_at = float(disaster["at"])
    since_at = timeline.run_started_at(configuration)
    with target_and_database(configuration, secrets) as (target, db):
        api = target.endpoint("processor_api")
        waiting = "nothing checked yet"
        windows: list[ProducerAcks] | None = None
        while True:
            now = time.time()
            try:
                health = httpx.get(api + "/health", timeout=2.0).status_code
                if windows is None and health == 200:
                    # Once: the window's first sequence numbers do not change, and the query behind them is a
                    # scan on SecantusDB, which serves one request at a time.
                    windows = _windows(db["events"], disaster.get("acked") or [], since_at)
                if health != 200:
                    waiting = f"/health answered {health}"
                elif not _history_back(db["events"], windows or []):
                    waiting = "the events from before the disaster are not back"
                else:
                    newest = _newest_per_gpu(db["events"])
                    info = httpx.get(api + "/gpu/info", timeout=2.0)
                    if info.status_code != 200:
                        waiting = f"/gpu/info answered {info.status_code}"
                    elif not gpu_info_consistent(info.json().get("gpus", []), newest):
                        waiting = "/gpu/info does not match the stored events"
                    else:
                        seconds = round(now - disaster_at, 3)
                        timeline.record("observation.rto", configuration, seconds=seconds)
                        return seconds
            except httpx.HTTPError as exc:
                waiting = f"the processor API did not answer: {type(exc).__name__}"
            except Exception as exc:  # noqa: BLE001 - a database still coming back is "not yet", not a probe crash
                waiting = f"the database did not answer: {type(exc).__name__}"
            if now - disaster_at > timeout:
                raise BudgetExceeded(f"service not restored {timeout:g} s after the disaster: {waiting}")
            time.sleep(POLL_SECONDS)


def restore_report(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """The newest restore of this run, from the timeline: ``{"backup_id", "fallbacks", "replay"}``; NoData when
    none ran."""
    event = timeline.last("action.restore", configuration)
    if event is None:
        raise NoData("no restore was recorded in the timeline")
    return {"backup_id": event["backup_id"], "fallbacks": event.get("fallbacks", []), "replay": event.get("replay"),
            "fell_back": bool(event.get("fallbacks"))}


def backup_store_report(max_age_seconds: float = 120.0, configuration: Configuration = None,
                        secrets: Secrets = None) -> dict:
    """The backup store, verified: ``{"backups", "valid", "newest_age_seconds", "newest_bytes", "newest_duration_s",
    "fresh"}``. ``fresh`` is whether the newest valid backup is younger than ``max_age_seconds``."""
    with from_configuration(configuration, secrets) as target:
        store = target.backups(verify=True)
    valid = [b for b in store["backups"] if b.get("valid")]
    if not valid:
        raise NoData("the backup store holds no valid backup")
    newest = valid[0]
    age = round(time.time() - float(newest["finished_at"]), 3)
    return {"backups": len(store["backups"]), "valid": len(valid), "newest_age_seconds": age,
            "newest_bytes": newest["bytes"], "newest_duration_s": newest["duration_s"],
            "fresh": age <= max_age_seconds}


def corrupt_backups_refused(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """No restore of this run used a backup that a ``fault.corrupt_backup`` of the run had corrupted, and every
    restore after such a fault named the corrupt backup among its fallbacks (it was detected, not skipped by luck).

    Returns ``{"restores", "corruptions", "violations", "details"}``; judge ``violations`` == 0. Before the method
    (no fault yet) it returns zero of everything; after the method with no restore it raises NoData."""
    run = timeline.current_run(configuration)
    corruptions = [e for e in run if e.get("kind") == "fault.corrupt_backup"]
    restores = [e for e in run if e.get("kind") == "action.restore"]
    if any(e.get("kind") == "run.method_started" for e in run) and corruptions and not restores:
        raise NoData("a backup was corrupted but no restore ran: nothing shows it was refused")
    details = []
    for restore in restores:
        earlier = [c for c in corruptions if c["at"] <= restore["at"]]
        for corruption in earlier:
            passed = [p for p in corruption.get("passed_over", []) if p.startswith(f"{restore['backup_id']}: ")]
            if restore["backup_id"] == corruption["backup_id"]:
                details.append(f"restore at {restore['at']} used corrupt backup {corruption['backup_id']}")
            elif passed:
                # The corruption had to pass over a newer backup with no data file, and the restore took that
                # one: the corrupt backup was never reached, so its refusal was not shown.
                details.append(f"restore at {restore['at']} used backup {passed[0]}, which the corruption passed "
                               f"over, and never reached corrupt backup {corruption['backup_id']}")
            elif not any(f.startswith(f"{corruption['backup_id']}: {corruption['file']}")
                         for f in restore.get("fallbacks", [])):
                details.append(f"restore at {restore['at']} did not report corrupt backup {corruption['backup_id']}")
    return {"restores": len(restores), "corruptions": len(corruptions), "violations": len(details),
            "details": details, "fallbacks": [f for r in restores for f in r.get("fallbacks", [])]}


def integrity_report(settle_timeout: float = 15.0, configuration: Configuration = None,
                     secrets: Secrets = None) -> dict:
    """Every stored aggregate equals the value recomputed from the stored events, allowing ``settle_timeout``
    seconds for batches in flight: ``probes.processing.gpu_latest_consistent``, under the name the
    disaster-recovery experiments use. Returns the last check plus ``attempts``."""
    from probes.processing import gpu_latest_consistent

    return gpu_latest_consistent(settle_timeout=settle_timeout, configuration=configuration, secrets=secrets)
