"""Probes of the pipeline's data: lost and duplicated events, and end-to-end lag (SLO-3), from what is stored.

Every event carries ``producer_id`` and a per-producer ``seq``; the producers report what the broker
acknowledged. An acknowledged event missing from MongoDB is lost; an event written more than once has
``deliveries > 1``. Lag is ``written_at - produced_at`` of each stored event. Nothing here trusts the broker's
high watermark: what was acknowledged is the producers' own ledger.
"""
from __future__ import annotations

import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import number
from chaoslib_ext.errors import InvalidArgument, NoData
from probes._clients import target_and_database
from probes._partitions import first_seq_at_or_after
from probes.measure import ProducerAcks, missing_events, quantile, share_within

__all__ = [
    "events_lost", "events_duplicated", "delivery_report", "end_to_end_lag_seconds", "share_processed_within",
    "gpu_latest_consistent",
]

LISTED_LOST_EVENTS = 50
"""How many lost events the report names; the count is always exact."""


def _since_time(since: float | str | None, configuration: Configuration) -> float | None:
    if since is None or since == "start":
        return None
    if since == "run-start":
        return timeline.run_started_at(configuration)
    if since == "last-fault":
        fault = timeline.last("fault.", configuration)
        if fault is None:
            raise NoData("since='last-fault' but the timeline holds no fault yet")
        return float(fault["at"])
    if isinstance(since, (int, float)) and not isinstance(since, bool):
        return float(since)
    raise InvalidArgument(f"since must be 'start', 'run-start', 'last-fault' or Unix seconds, got {since!r}")


def _ack_windows(acks_raw: list[dict], events, since_at: float | None) -> list[ProducerAcks]:
    return [
        ProducerAcks(
            producer_id=a["producer_id"],
            max_acked_seq=int(a["max_acked_seq"]),
            failed_seqs=frozenset(int(s) for s in a.get("failed_seqs", [])),
            first_seq=first_seq_at_or_after(events, a["producer_id"], since_at),
        )
        for a in acks_raw
    ]


def delivery_report(
    since: float | str | None = None,
    settle_timeout: float = 30.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """Compare what the broker acknowledged with what MongoDB holds, after waiting up to ``settle_timeout``
    seconds for the backlog to drain.

    ``since`` limits the check to events produced from then on: ``'start'`` (default, the producers' whole
    life), ``'run-start'`` (when this experiment started; the whole timeline outside one), ``'last-fault'`` (the newest fault in the run's timeline) or Unix seconds.
    Returns ``{"checked", "lost", "duplicated", "lost_events": ["producer:seq", ...], "settled_seconds"}``.
    """
    settle_timeout = number("settle_timeout", settle_timeout, at_least=0)
    since_at = _since_time(since, configuration)
    with target_and_database(configuration, secrets) as (target, db):
        events = db["events"]
        started = time.monotonic()
        # A window that starts now (``run-start`` in a baseline) holds no acknowledged event until the producers'
        # next acknowledgements: wait for them within the settle time instead of judging an empty window.
        while True:
            windows = _ack_windows(target.producer_acks(), events, since_at)
            expected_total = sum(len(w.expected()) for w in windows)
            if expected_total or time.monotonic() - started >= settle_timeout:
                break
            time.sleep(0.5)
        if not windows:
            raise NoData("the producers report no acknowledged events to check")
        if expected_total == 0:
            raise NoData("no acknowledged events fall in the window being checked")

        def stored() -> list[tuple[ProducerAcks, list[dict]]]:
            # One index range read per producer: a count filtered on deliveries too would read the whole collection.
            return [(w, list(events.find(
                {"producer_id": w.producer_id, "seq": {"$gte": w.first_seq, "$lte": w.max_acked_seq}},
                projection={"seq": 1, "deliveries": 1, "_id": 0},
            ))) for w in windows]

        def missing(reads: list[tuple[ProducerAcks, list[dict]]]) -> list[str]:
            # Compared as sets, not counts: an event whose send was reported failed can still have been written
            # (a broker killed after it stored the batch, before it answered), and counting it would end the wait
            # while an acknowledged one was still on its way.
            return [f"{w.producer_id}:{s}" for w, docs in reads for s in missing_events(w, [d["seq"] for d in docs])]

        reads = stored()
        while (lost := missing(reads)) and time.monotonic() - started < settle_timeout:
            time.sleep(0.5)
            reads = stored()
        settled = round(time.monotonic() - started, 3)
        duplicated = sum(1 for _, docs in reads for d in docs if (d.get("deliveries") or 0) > 1)
        report = {
            "checked": expected_total,
            "lost": len(lost),
            "duplicated": duplicated,
            "lost_events": lost[:LISTED_LOST_EVENTS],
            "settled_seconds": settled,
        }
        timeline.record("observation.delivery", configuration, **{k: v for k, v in report.items() if k != "lost_events"})
        return report


def events_lost(
    since: float | str | None = None, settle_timeout: float = 30.0,
    configuration: Configuration = None, secrets: Secrets = None,
) -> int:
    """How many acknowledged events never reached MongoDB (see ``delivery_report``). The budget is 0."""
    return int(delivery_report(since, settle_timeout, configuration, secrets)["lost"])


def events_duplicated(
    since: float | str | None = None, settle_timeout: float = 30.0,
    configuration: Configuration = None, secrets: Secrets = None,
) -> int:
    """How many stored events were delivered more than once. Idempotent writes absorb them; this reports them."""
    return int(delivery_report(since, settle_timeout, configuration, secrets)["duplicated"])


def _lag_quantile(events, q: float, window_seconds: float) -> float | None:
    since = time.time() - window_seconds
    lags = [
        d["written_at"] - d["produced_at"]
        for d in events.find({"written_at": {"$gte": since}}, projection={"written_at": 1, "produced_at": 1, "_id": 0})
    ]
    return round(quantile(lags, q), 4) if lags else None


def end_to_end_lag_seconds(
    q: float = 0.95,
    window_seconds: float = 10.0,
    within: float | None = None,
    settle_timeout: float = 0.0,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> float:
    """The q-quantile of ``written_at - produced_at`` over events written in the last ``window_seconds``.

    With ``within``, waits up to ``settle_timeout`` seconds for the quantile to come back to ``within`` or
    below (after a fault the backlog drains with high lag first), and returns the last value measured; the
    wait is recorded in the timeline. The experiment's tolerance judges the value; SLO-3's budget is 10 s.
    Raises NoData when nothing was written in the window: a stalled pipeline is not a fast one.
    """
    q = number("q", q, greater_than=0, at_most=1)
    window_seconds = number("window_seconds", window_seconds, greater_than=0)
    if within is not None:
        within = number("within", within, greater_than=0)
    settle_timeout = number("settle_timeout", settle_timeout, at_least=0)
    with target_and_database(configuration, secrets) as (target, db):
        started = time.monotonic()
        while True:
            lag = _lag_quantile(db["events"], q, window_seconds)
            settled = lag is not None and (within is None or lag <= within)
            if settled or time.monotonic() - started >= settle_timeout:
                break
            time.sleep(0.5)
        if lag is None:
            raise NoData(f"no events were written in the last {window_seconds} s: processing has stalled")
        if within is not None:
            timeline.record("observation.lag", configuration, q=q, seconds=lag, within=within,
                            waited_seconds=round(time.monotonic() - started, 3))
        return lag


def share_processed_within(
    budget_seconds: float = 10.0,
    since: float | str | None = "run-start",
    window_seconds: float | None = None,
    configuration: Configuration = None,
    secrets: Secrets = None,
) -> dict:
    """SLO-3 from the stored timestamps: the share of events processed (``written_at - produced_at``) within
    ``budget_seconds``, over events produced from ``since`` (see ``delivery_report``) or, with
    ``window_seconds``, over those written in the last ``window_seconds``.

    Returns ``{"share", "events", "within", "budget_seconds"}``; judge ``share`` (target 0.99) with a range
    tolerance. Raises NoData when no event falls in the window."""
    budget_seconds = number("budget_seconds", budget_seconds, greater_than=0)
    if window_seconds is not None:
        window_seconds = number("window_seconds", window_seconds, greater_than=0)
    if window_seconds is not None:
        query = {"written_at": {"$gte": time.time() - window_seconds}}
    else:
        since_at = _since_time(since, configuration)
        query = {} if since_at is None else {"produced_at": {"$gte": since_at}}
    with target_and_database(configuration, secrets) as (target, db):
        lags = [d["written_at"] - d["produced_at"]
                for d in db["events"].find(query, projection={"written_at": 1, "produced_at": 1, "_id": 0})]
    share = share_within(lags, float(budget_seconds))
    if share is None:
        raise NoData(f"no event in the window ({query}) to judge SLO-3 on")
    return {"share": round(share, 4), "events": len(lags), "within": sum(1 for v in lags if v <= budget_seconds),
            "budget_seconds": float(budget_seconds)}


def gpu_latest_consistent(settle_timeout: float = 15.0, configuration: Configuration = None,
                          secrets: Secrets = None) -> dict:
    """Whether the stored aggregate ``gpu_latest`` equals what the stored events recompute: per GPU, the
    event with the newest ``produced_at``. Duplicate deliveries must not change it.

    The processor writes a batch's events, then its aggregates, so a read in between sees an aggregate one batch
    old (seen in CI: 0.5 s behind, right after a partition's backlog drained). The check is repeated every 0.5 s
    for up to ``settle_timeout`` seconds; a mismatch that outlasts it is reported as last seen.

    Returns ``{"consistent": bool, "gpus", "mismatches": [{"gpu_id", "stored", "recomputed"}], "attempts"}``;
    NoData when there is no GPU to compare."""
    settle_timeout = number("settle_timeout", settle_timeout, at_least=0)
    started, attempts = time.monotonic(), 0
    while True:
        attempts += 1
        result = _gpu_latest_check(configuration, secrets)
        if result["consistent"] or time.monotonic() - started >= settle_timeout:
            return {**result, "attempts": attempts}
        time.sleep(0.5)


def _is_stored_event(events, gpu: str, latest: dict) -> bool:
    """Whether a gpu_latest entry is a stored event of that GPU, read by the (producer_id, seq) index alone."""
    stored = events.find_one({"producer_id": latest.get("producer_id"), "seq": latest.get("seq")},
                             projection={"_id": 0, "gpu_id": 1, "produced_at": 1})
    return stored is not None and stored.get("gpu_id") == gpu and stored.get("produced_at") == latest["produced_at"]


def _gpu_latest_check(configuration: Configuration, secrets: Secrets) -> dict:
    with target_and_database(configuration, secrets) as (target, db):
        newest = {
            row["_id"]: row["produced_at"]
            for row in db["events"].aggregate([
                {"$match": {"kind": "gpu"}},
                {"$group": {"_id": "$gpu_id", "produced_at": {"$max": "$produced_at"}}},
            ])
        }
        # Read after the events, so under load the aggregate may only be newer than this recomputation, never
        # older; a newer one must itself be a stored event.
        stored = {d["_id"]: d for d in db["gpu_latest"].find(projection={"produced_at": 1, "producer_id": 1, "seq": 1})}
        mismatches = []
        for gpu, produced in sorted(newest.items()):
            doc = stored.get(gpu) or {}
            ok = doc.get("produced_at") is not None and doc["produced_at"] >= produced and _is_stored_event(
                db["events"], gpu, doc)
            if not ok:
                mismatches.append({"gpu_id": gpu, "stored": doc.get("produced_at"), "recomputed": produced})
    if not newest:
        raise NoData("no GPU event is stored: nothing to recompute gpu_latest from")
    return {"consistent": not mismatches, "gpus": len(newest), "mismatches": mismatches[:20]}
