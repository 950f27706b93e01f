"""The processor's MongoDB side: indexes, batch writes and the GPU queries of the API."""
from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError
from pymongo.write_concern import WriteConcern

from stack.processor.batching import BatchPlan, duplicate_ops, event_documents, gpu_latest_ops

DUPLICATE_KEY = 11000
WRITE_CONCERN = WriteConcern(w=1, j=True)
"""j=True: on SecantusDB a w=1 write was once lost across SIGKILL; offsets are committed after this ack."""


def connect(uri: str, *, timeout_ms: int, socket_timeout_ms: int, app_name: str) -> MongoClient:
    # Bounded timeouts everywhere, so an outage (or a held connection) surfaces as an exception that
    # the caller retries or reports, never as a hang.
    return MongoClient(
        uri,
        appname=app_name,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=socket_timeout_ms,
    )


def database(client: MongoClient, name: str) -> Database:
    return client.get_database(name, write_concern=WRITE_CONCERN)


def ensure_indexes(db: Database) -> None:
    """Idempotent: create_index on an existing identical index is a no-op."""
    events = db["events"]
    events.create_index([("produced_at", ASCENDING)])
    events.create_index([("written_at", ASCENDING)])
    events.create_index([("producer_id", ASCENDING), ("seq", ASCENDING)])


def _non_duplicate_errors(exc: BulkWriteError) -> list[dict[str, Any]]:
    return [err for err in exc.details.get("writeErrors", []) if err.get("code") != DUPLICATE_KEY]


def write_events(db: Database, plan: BatchPlan, written_at: float, keys: list[str] | None = None) -> set[str]:
    """Store the batch's events (or only those in ``keys``) once each. Returns the ``_id``s stored for the
    first time (the others were duplicate deliveries and only had ``deliveries`` incremented). Raises on any
    other failure; the caller retries those keys."""
    docs = event_documents(plan, written_at, keys)
    if not docs:
        return set()
    events: Collection = db["events"]
    try:
        events.insert_many(docs, ordered=False)
        return set(plan.event_docs)
    except BulkWriteError as exc:
        if _non_duplicate_errors(exc):
            raise
        duplicates = [docs[err["index"]]["_id"] for err in exc.details["writeErrors"]]
    events.bulk_write(duplicate_ops(plan, duplicates), ordered=False)
    return set(plan.event_docs) - set(duplicates)


def write_gpu_latest(db: Database, plan: BatchPlan, updated_at: float) -> None:
    """Apply the batch's newest state per GPU unless Mongo already holds something newer.

    E11000 means the stored state is newer or equal, except in one race: two processors inserting the
    same new gpu_id at once. Retrying the colliding ops once settles it, because the document exists
    by then, so the retry either matches (ours is newer) or collides again (stored is newer)."""
    ops = gpu_latest_ops(plan, updated_at)
    collection: Collection = db["gpu_latest"]
    for _attempt in range(2):
        if not ops:
            return
        try:
            collection.bulk_write(ops, ordered=False)
            return
        except BulkWriteError as exc:
            others = _non_duplicate_errors(exc)
            if others:
                raise
            ops = [ops[err["index"]] for err in exc.details["writeErrors"]]


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc.pop("_id", None)
    return doc


def all_gpus(db: Database) -> list[dict[str, Any]]:
    return [_public(doc) for doc in db["gpu_latest"].find({}, sort=[("_id", ASCENDING)])]


def one_gpu(db: Database, gpu_id: str) -> dict[str, Any] | None:
    doc = db["gpu_latest"].find_one({"_id": gpu_id})
    return None if doc is None else _public(doc)
