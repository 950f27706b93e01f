"""The probes' reads of stored events on a real SecantusDB: the same answers as the plain queries they replace,
from index ranges only.

SecantusDB is effectively single-threaded and plans an index only for a filter that one index bounds; anything
more reads the whole collection and holds every other client meanwhile (1.5–4 s after a game day, long enough
for the API under test to answer 503 while a probe polled). The plans are asserted with explain(), not timed.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from probes._partitions import (
    active_partitions,
    first_seq_at_or_after,
    first_write_per_partition,
    writes_after,
)
from service_fixtures import processor_database

T0 = 1_000_000.0
PRODUCERS = ("producer-0-aa", "producer-1-aa")


def _events() -> list[dict]:
    """Two producers at 10 events/s each, with a 120 s pause and a 2 h pause; producer-1's seq 1 was lost."""
    docs, at = [], T0
    for step in range(1, 601):
        at += 0.1 if step not in (200, 400) else (120.0 if step == 200 else 7200.0)
        for index, producer in enumerate(PRODUCERS):
            if producer == PRODUCERS[1] and step == 1:
                continue
            docs.append({"event_id": f"{producer}:{step}", "producer_id": producer, "seq": step, "kind": "gpu",
                         "gpu_id": f"gpu-{step % 4}", "produced_at": at + index * 0.01,
                         "written_at": at + 0.5 + index * 0.01, "kafka_topic": "gpu-events",
                         "kafka_partition": step % 4, "deliveries": 1})
    return docs


@pytest.fixture(scope="module")
def events(tmp_path_factory) -> Iterator:
    with processor_database(tmp_path_factory.mktemp("indexed-reads"), "reads") as db:
        db["events"].insert_many(_events(), ordered=False)
        yield db["events"]


def _scanning_first_seq(events, producer_id: str, since: float) -> int:
    before = events.find_one({"producer_id": producer_id, "produced_at": {"$lt": since}}, sort=[("seq", -1)],
                             projection={"seq": 1})
    return int(before["seq"]) + 1 if before else 1


@pytest.mark.parametrize("since", [
    T0 - 5, T0 + 0.05, T0 + 3.33, T0 + 19.9,  # before anything, at the start, inside the first run
    T0 + 19.9 + 60.0, T0 + 19.9 + 119.0,  # in the 120 s pause: the newest event is 60–119 s back
    T0 + 160.0, T0 + 160.0 + 3000.0,  # after the pause; in the 2 h pause (50 min back)
    T0 + 10_000.0, T0 + 1e9,  # after it; long after everything (the newest event is more than a day back)
])
def test_the_first_seq_of_a_window_is_the_plain_query_s_answer(events, since):
    for producer in (*PRODUCERS, "producer-never-seen"):
        assert first_seq_at_or_after(events, producer, since) == _scanning_first_seq(events, producer, since), (
            producer, since)


def test_partition_reads_are_the_plain_answers(events):
    docs = list(events.find({}, projection={"_id": 0}))
    fault_at = sorted(d["written_at"] for d in docs)[len(docs) // 2]
    expected_first: dict[tuple[str, int], float] = {}
    for d in docs:
        if d["written_at"] > fault_at:
            key = (d["kafka_topic"], d["kafka_partition"])
            expected_first[key] = min(expected_first.get(key, d["written_at"]), d["written_at"])
    assert first_write_per_partition(events, fault_at) == expected_first
    active = {(d["kafka_topic"], d["kafka_partition"]) for d in docs if fault_at - 10 <= d["written_at"] <= fault_at}
    assert active_partitions(events, fault_at) == sorted(active) and len(active) == 4
    assert len(list(writes_after(events, fault_at))) == sum(1 for d in docs if d["written_at"] > fault_at)


def _plan_stages(plan: dict) -> list[str]:
    stages = [plan.get("stage")]
    if "inputStage" in plan:
        stages += _plan_stages(plan["inputStage"])
    return stages


@pytest.mark.parametrize(("name", "query"), [
    ("a producer's first event", {"producer_id": PRODUCERS[0], "seq": 1}),
    ("a produce-time range", {"produced_at": {"$gte": T0, "$lt": T0 + 10}}),
    ("a write-time range", {"written_at": {"$gt": T0 + 50}}),
    ("a producer's seq range", {"producer_id": PRODUCERS[0], "seq": {"$gte": 5, "$lte": 50}}),
])
def test_every_read_the_probes_make_is_planned_on_an_index(events, name, query):
    plan = events.find(query).explain()["queryPlanner"]["winningPlan"]
    assert "IXSCAN" in _plan_stages(plan), (name, plan)


def test_the_filters_replaced_were_collection_scans_here(events):
    """Why the probes filter in Python: one more field in the filter and the server reads every document."""
    plan = events.find({"producer_id": PRODUCERS[0], "produced_at": {"$lt": T0 + 10}}).sort("seq", -1).explain()
    assert "IXSCAN" not in _plan_stages(plan["queryPlanner"]["winningPlan"]), plan["queryPlanner"]
