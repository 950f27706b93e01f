"""One snapshot of the database: raw BSON per collection, with its indexes and options, in the store.

pymongo with RawBSONDocument never decodes a document, so the dump is byte for byte what the server holds
(there is no mongodump here; on the kind target ``mongodump --oplog`` does the same job). The snapshot is not a
point in time by itself: the change log from its position onwards makes it one when it is restored.

A collection with an ascending index on ``written_at`` (the processor's events) is read in short ranges of that
index, newest first, with a pause between them, instead of in one query. The local stack's database answers one
client at a time: a single query over 40,000 events held every other client for up to 0.8 s, so a snapshot taken
during a fault doubled the API's p95. The ranges give up the dump's own consistency, which it never had: see above.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from chaos_dr_stack.backup.changelog import ts_key
from chaos_dr_stack.backup.store import BackupStore, new_backup_id

BATCH = 1000
PAGED_FIELD = "written_at"
PAGE_DOCUMENTS = 500
"""The number of documents a range aims at: one range of 500 events holds the server for about 30 ms."""
PAGE_PAUSE_S = 0.02
"""The least time left to the other clients after each range; a range that took longer is followed by as long,
so a snapshot keeps the server busy half the time at most."""
FIRST_RANGE_S = 10.0
GROWTH_LIMIT = 4
"""A range is at most this many times as wide as the last one that held anything, so a range that reaches data
behind a gap as dense as the data before it holds a few pages, not the whole of it. Data denser than the last
range's can still come in a longer range: the index has no cheap count to plan by."""
GAP_BEFORE_THE_REST_S = 600.0
"""Empty ranges covering this much time in a row end the walk: everything older is then read at once. Kept short
because the walk through nothing costs too: in CI, a day of empty 80 s ranges (about 1,000 queries) kept the
database on a full core for 3 s during a pod kill."""


def last_write_position(client: MongoClient) -> list[int]:
    """The server's newest write (cluster time) as ``[t, i]``: every change after it is in the change log."""
    hello = client.admin.command("hello")
    op_time = (hello.get("lastWrite") or {}).get("opTime") or {}
    ts = op_time.get("ts") or hello.get("operationTime")
    return list(ts_key(ts))


def dump_collection(client: MongoClient, database: str, name: str, directory: Path) -> dict:
    collection = client[database].get_collection(name).with_options(
        codec_options=client.codec_options.with_options(document_class=RawBSONDocument)
    )
    source = client[database].get_collection(name)
    indexes = [dict(ix) for ix in source.list_indexes()]
    paged = any(next(iter(ix["key"].items()), None) == (PAGED_FIELD, 1) for ix in indexes)
    count = 0
    with open(directory / f"{name}.bson", "wb") as out:
        for doc in _by_ranges(collection, PAGED_FIELD, time.time()) if paged else collection.find({}, batch_size=BATCH):
            out.write(doc.raw)
            count += 1
    info = next(iter(client[database].list_collections(filter={"name": name})), {}) or {}
    meta = {"name": name, "options": info.get("options") or {}, "indexes": indexes}
    (directory / f"{name}.meta.json").write_text(json_util.dumps(meta, indent=1))
    return {"documents": count, "read_by": f"{PAGED_FIELD} ranges" if paged else "one query"}


def _by_ranges(collection, field: str, now: float, pause: float = PAGE_PAUSE_S) -> Iterator[RawBSONDocument]:
    """Every document whose ``field`` is a number, missing or null, read in ranges of ``field``'s index from
    ``now`` backwards (the first range is open upwards, so it takes what is written meanwhile). A range's width
    doubles while it holds fewer than half of ``PAGE_DOCUMENTS`` and halves when it holds more than twice as many.
    After ten minutes' worth of empty ranges, everything older is read at once: on a stack that has been writing
    since it started that read is empty; behind a longer gap in the data it is one long query, as a dump without
    ranges is. A document whose ``field`` holds another type (a string, a date) is not read: the processor writes a
    number."""
    seen: set = set()

    def fresh(query: dict) -> list[RawBSONDocument]:
        page = []
        for doc in collection.find(query, batch_size=BATCH):
            key = doc["_id"]
            if key not in seen:  # an array value is indexed once per element, and so is read once per range
                seen.add(key)
                page.append(doc)
        return page

    yield from fresh({field: None})
    width, upper, lower = FIRST_RANGE_S, None, now - FIRST_RANGE_S
    last_full_width, empty_for = FIRST_RANGE_S, 0.0
    while empty_for < GAP_BEFORE_THE_REST_S:
        began = time.monotonic()
        page = fresh({field: {"$gte": lower}} if upper is None else {field: {"$gte": lower, "$lt": upper}})
        time.sleep(max(pause, time.monotonic() - began) if pause else 0)
        yield from page
        if page:
            last_full_width, empty_for = width, 0.0
        else:
            empty_for += width
        if len(page) < PAGE_DOCUMENTS // 2:
            width = min(width * 2, last_full_width * GROWTH_LIMIT)
        elif len(page) > PAGE_DOCUMENTS * 2:
            width /= 2
        upper, lower = lower, lower - width
    yield from fresh({field: {"$lt": upper}})


class StaleSnapshot(RuntimeError):
    """The dump no longer describes the database it was labelled with; it was not committed."""


def take_snapshot(
    client: MongoClient,
    store: BackupStore,
    database: str,
    epoch: int,
    offsets: Callable[[], dict[str, int]],
    now: Callable[[], float] = time.time,
    invalid: Callable[[], str | None] = lambda: None,
) -> dict:
    """Offsets first, then the position, then the dump (see docs/local-stack-contract.md, "Backup agent").
    ``invalid``, asked after the dump, says why it must not be committed (StaleSnapshot), or None."""
    started = now()
    backup_id = new_backup_id(started)
    staging = store.staging(backup_id)
    try:
        kafka_offsets = offsets()
        position = last_write_position(client)
        collections = {}
        for name in sorted(client[database].list_collection_names()):
            collections[name] = dump_collection(client, database, name, staging)
        # The dump is consistent as of its end: restored with the change log up to at least here.
        end_position = last_write_position(client)
        reason = invalid()
        if reason is not None:
            raise StaleSnapshot(reason)
        finished = now()
        return store.commit(staging, {
            "id": backup_id,
            "database": database,
            "created_at": started,
            "finished_at": finished,
            "duration_s": round(finished - started, 4),
            "position": position,
            "end_position": end_position,
            "epoch": epoch,
            "kafka_offsets": kafka_offsets,
            "collections": collections,
        })
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
