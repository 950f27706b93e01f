"""The backup agent's dump of a real SecantusDB: the events are read in short ranges of the ``written_at`` index
and every document is in the dump exactly once, whatever the gaps in the data.

Why ranges: the server answers one client at a time, and one query over the whole collection held the API under
test for up to 0.7 s (bench/backup_snapshot_reads.py has the figures). The plans are asserted with explain(), not
timed.
"""
from __future__ import annotations

import time
from collections.abc import Iterator

import bson
import pytest
from bson.raw_bson import RawBSONDocument
from pymongo.database import Database

from service_fixtures import processor_database
from chaos_dr_stack.backup import snapshot

NOW = time.time()


def _events() -> list[dict]:
    """Dense recent writes, dense writes again behind a five-minute gap (a stack that paused), a sparse stretch,
    an old cluster behind a two-day gap, and the odd values a dump could miss: no ``written_at``, a null, a
    negative time and an array."""
    docs = [{"_id": f"recent:{i}", "written_at": NOW - 300 + i * 0.05, "producer_id": "p", "seq": i}
            for i in range(6000)]
    docs += [{"_id": f"behind-a-gap:{i}", "written_at": NOW - 600 - i * 0.05} for i in range(3000)]
    docs += [{"_id": f"sparse:{i}", "written_at": NOW - 900 - i * 20.0} for i in range(40)]
    docs += [{"_id": f"old:{i}", "written_at": NOW - 2 * 86400 - i * 0.1} for i in range(700)]
    docs += [{"_id": "no-written-at"}, {"_id": "null", "written_at": None},
             {"_id": "negative", "written_at": -5.0}, {"_id": "array", "written_at": [NOW - 10, NOW - 2 * 86400]}]
    return docs


class RecordingCollection:
    """The collection, with every filter the dump queried it with kept for explain()."""

    def __init__(self, collection):
        self.collection, self.filters = collection, []

    def find(self, query, **kwargs):
        self.filters.append(query)
        return self.collection.find(query, **kwargs)


@pytest.fixture(scope="module")
def db(tmp_path_factory) -> Iterator[Database]:
    with processor_database(tmp_path_factory.mktemp("snapshot-ranges"), "snapshot") as database:
        database["events"].insert_many(_events(), ordered=False)
        database["gpu_latest"].insert_many([{"_id": f"gpu-{i}", "utilization": 0.5} for i in range(8)])
        yield database


def _dumped_ids(path) -> list[str]:
    with open(path, "rb") as handle:
        return [doc["_id"] for doc in bson.decode_file_iter(handle)]


def test_a_dump_of_the_events_holds_each_document_once(db, tmp_path):
    summary = snapshot.dump_collection(db.client, "ca3", "events", tmp_path)
    dumped = _dumped_ids(tmp_path / "events.bson")
    assert summary == {"documents": len(_events()), "read_by": "written_at ranges"}
    assert len(dumped) == len(set(dumped)) == len(_events())
    assert set(dumped) == {doc["_id"] for doc in _events()}


def test_a_collection_without_the_index_is_dumped_by_one_query(db, tmp_path):
    summary = snapshot.dump_collection(db.client, "ca3", "gpu_latest", tmp_path)
    assert summary == {"documents": 8, "read_by": "one query"}
    assert sorted(_dumped_ids(tmp_path / "gpu_latest.bson")) == [f"gpu-{i}" for i in range(8)]


def test_every_range_is_read_from_the_index_and_few_are_large(db):
    raw = db["events"].with_options(codec_options=db.codec_options.with_options(document_class=RawBSONDocument))
    recording = RecordingCollection(raw)
    documents = list(snapshot._by_ranges(recording, "written_at", NOW, pause=0))
    sizes = [db["events"].count_documents(query) for query in recording.filters]
    print(f"{len(recording.filters)} queries, documents per query: {sizes}")
    assert len(documents) == len(_events())
    for query in recording.filters:
        plan = str(db["events"].find(query).explain().get("queryPlanner", {}).get("winningPlan"))
        assert "IXSCAN" in plan and "COLLSCAN" not in plan, (query, plan)
    # Ranges of a few pages at most, the dense writes behind the five-minute gap too; only what lies behind ten
    # minutes of nothing comes at once: the old cluster and the negative time (and the array's old element, read
    # once but counted here again).
    assert sizes[0] == 2, sizes  # missing or null
    assert max(sizes[1:-1]) <= snapshot.GROWTH_LIMIT * snapshot.PAGE_DOCUMENTS, sizes
    assert sizes[-1] in (701, 702), sizes
    assert len(sizes) <= 80, sizes
