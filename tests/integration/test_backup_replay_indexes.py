"""A restore that replays an earlier restore's drop keeps the application's indexes, on a real SecantusDB.

The change log holds data changes only. Replaying a ``dropDatabase`` and the inserts after it re-created the events
collection with ``_id_`` alone; the processor's next restart then built three indexes while serving, which held the
database (one request at a time) for seconds and failed CUJ-1 during the next pod kill."""
from __future__ import annotations

import time

import pytest

from service_fixtures import processor_database
from chaos_dr_stack.backup.restore import apply_changes

EVENT_INDEXES = {"_id_", "produced_at_1", "written_at_1", "producer_id_1_seq_1"}


@pytest.fixture
def db(tmp_path):
    with processor_database(tmp_path, "replay-indexes") as database:
        database["events"].insert_many([{"_id": f"p:{i}", "producer_id": "p", "seq": i, "written_at": time.time()}
                                        for i in range(50)])
        database["gpu_latest"].insert_one({"_id": "gpu-0", "utilization": 0.5})
        yield database


def _insert(coll: str, doc: dict) -> dict:
    return {"op": "i", "coll": coll, "key": {"_id": doc["_id"]}, "doc": doc, "wall": time.time()}


def _indexes(db, coll: str) -> set[str]:
    return {ix["name"] for ix in db[coll].list_indexes()}


def test_a_replayed_drop_database_leaves_every_collection_its_indexes(db):
    assert _indexes(db, "events") == EVENT_INDEXES
    records = [{"op": "dropDatabase", "wall": time.time()},
               _insert("events", {"_id": "p:1", "producer_id": "p", "seq": 1, "written_at": time.time()}),
               _insert("events", {"_id": "p:2", "producer_id": "p", "seq": 2, "written_at": time.time()})]
    applied, _ = apply_changes(db.client, db.name, records)
    assert applied == 3
    assert sorted(d["_id"] for d in db["events"].find({}, projection={"_id": 1})) == ["p:1", "p:2"]
    assert _indexes(db, "events") == EVENT_INDEXES
    assert "gpu_latest" not in db.list_collection_names()  # dropped and never written again: not re-created
    plan = db["events"].find({"written_at": {"$gt": 0}}).explain()
    assert "IXSCAN" in str(plan), plan


def test_a_replayed_collection_drop_keeps_its_indexes_and_touches_nothing_else(db):
    records = [{"op": "drop", "coll": "events", "wall": time.time()},
               _insert("events", {"_id": "p:9", "producer_id": "p", "seq": 9, "written_at": time.time()})]
    apply_changes(db.client, db.name, records)
    assert _indexes(db, "events") == EVENT_INDEXES
    assert db["events"].count_documents({}) == 1 and db["gpu_latest"].count_documents({}) == 1
