"""One snapshot of the database: raw BSON per collection, with its indexes and options, in the store.

pymongo with RawBSONDocument never decodes a document, so the dump is byte for byte what the server holds
(there is no mongodump here; on the kind target ``mongodump --oplog`` does the same job). The snapshot is not a
point in time by itself: the change log from its position onwards makes it one when it is restored.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from stack.backup.changelog import ts_key
from stack.backup.store import BackupStore, new_backup_id

BATCH = 1000


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
    count = 0
    with open(directory / f"{name}.bson", "wb") as out:
        for doc in collection.find({}, batch_size=BATCH):
            out.write(doc.raw)
            count += 1
    source = client[database].get_collection(name)
    info = next(iter(client[database].list_collections(filter={"name": name})), {}) or {}
    meta = {
        "name": name,
        "options": info.get("options") or {},
        "indexes": [dict(ix) for ix in source.list_indexes()],
    }
    (directory / f"{name}.meta.json").write_text(json_util.dumps(meta, indent=1))
    return {"documents": count}


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
