"""The processor's MongoDB side: indexes, batch writes and the GPU queries of the API."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bson.errors import InvalidDocument, InvalidStringData
from pymongo import ASCENDING, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DocumentTooLarge, OperationFailure
from pymongo.write_concern import WriteConcern

from chaos_dr_stack.processor.batching import BatchPlan, duplicate_ops, event_documents, gpu_latest_op
from chaos_dr_stack.processor.isolation import Isolation, write_isolating

DUPLICATE_KEY = 11000
DATA_ERROR_CODES: Mapping[int, str] = {
    2: "bad_value",  # BadValue
    14: "type_mismatch",  # TypeMismatch
    121: "validation",  # DocumentValidationFailure (a collection validator)
    10334: "too_large",  # BSONObjectTooLarge
    17419: "too_large",  # an update would make the document larger than 16 MB
}
"""Server error codes that blame the document, with the kind named in ``unwritable:<kind>``: the same document
fails the same way on every retry. Everything else (network errors, timeouts, NotWritablePrimary and the other
failover codes, write-concern errors, anything unknown) is an outage and is retried."""
UNWRITABLE_KINDS = frozenset({"int_overflow", "bad_string", "too_large", "invalid_document", *DATA_ERROR_CODES.values()})
"""Every kind ``unwritable_kind`` returns: a bounded set, because ``unwritable:<kind>`` is a metric label."""
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


def unwritable_kind(exc: BaseException) -> str | None:
    """The kind of a write error that the data itself causes, which no retry fixes; None for anything else.

    Client side, pymongo raises these while encoding, before it sends anything: ``OverflowError`` (an int past
    int64), ``UnicodeEncodeError`` (a lone surrogate), ``DocumentTooLarge`` and the other ``InvalidDocument``s.
    Server side, an ``OperationFailure`` whose code is in ``DATA_ERROR_CODES``. A ``BulkWriteError`` is not
    classified here: its errors are per document (see ``write_events``; an unordered ``insert_many`` reports a
    document over 16 MB that way too, as code 10334, and stores the others)."""
    if isinstance(exc, OverflowError):
        return "int_overflow"
    if isinstance(exc, UnicodeEncodeError | InvalidStringData):
        return "bad_string"
    if isinstance(exc, DocumentTooLarge):
        return "too_large"
    if isinstance(exc, InvalidDocument):
        return "invalid_document"
    if isinstance(exc, OperationFailure) and not isinstance(exc, BulkWriteError):
        return DATA_ERROR_CODES.get(exc.code)
    return None


class RefusedDocuments(Exception):
    """A bulk write stored some documents and the server refused others for a data reason (``DATA_ERROR_CODES``)."""

    def __init__(self, refused: dict[str, str], stored: set[str]):
        super().__init__(f"{len(refused)} document(s) refused: {sorted(set(refused.values()))}")
        self.refused = refused
        """``_id`` -> kind."""
        self.stored = stored
        """The ``_id``s the same write stored for the first time."""


def _write_errors(exc: BulkWriteError) -> tuple[list[int], dict[int, str]]:
    """Split a bulk write's errors into the indexes of duplicate keys and of data errors (index -> kind). Raises
    ``exc`` itself if anything else failed (or a write concern was not met): the caller retries."""
    duplicates: list[int] = []
    refused: dict[int, str] = {}
    for err in exc.details.get("writeErrors", []):
        code = err.get("code")
        if code == DUPLICATE_KEY:
            duplicates.append(err["index"])
        elif code in DATA_ERROR_CODES:
            refused[err["index"]] = DATA_ERROR_CODES[code]
        else:
            raise exc
    if exc.details.get("writeConcernErrors"):
        raise exc
    return duplicates, refused


def write_events(db: Database, plan: BatchPlan, written_at: float, keys: list[str] | None = None) -> set[str]:
    """Store the batch's events (or only those in ``keys``) once each. Returns the ``_id``s stored for the
    first time (the others were duplicate deliveries and only had ``deliveries`` incremented).

    Raises ``RefusedDocuments`` if the server refused some documents for a data reason (the others are stored),
    and the client's own error if a document cannot be encoded (nothing is sent then; ``unwritable_kind`` names
    it). Raises on any other failure; the caller retries those keys."""
    docs = event_documents(plan, written_at, keys)
    if not docs:
        return set()
    ids = [doc["_id"] for doc in docs]
    events: Collection = db["events"]
    try:
        events.insert_many(docs, ordered=False)
        return set(ids)
    except BulkWriteError as exc:
        duplicate_at, refused_at = _write_errors(exc)
    duplicates = [ids[i] for i in duplicate_at]
    if duplicates:
        events.bulk_write(duplicate_ops(plan, duplicates), ordered=False)
    refused = {ids[i]: kind for i, kind in refused_at.items()}
    stored = set(ids) - set(duplicates) - set(refused)
    if refused:
        raise RefusedDocuments(refused, stored)
    return stored


def write_gpu_latest(db: Database, plan: BatchPlan, updated_at: float) -> dict[str, str]:
    """Apply the batch's newest state per GPU unless Mongo already holds something newer. Returns the GPUs whose
    state the database refused for a data reason (gpu_id -> kind; their state is left as it was), found by
    splitting the write like the events'. Each state is a subset of a stored event's fields, so this stays
    empty unless the server has rules the events collection has not. Raises on any other failure.

    E11000 means the stored state is newer or equal, except in one race: two processors inserting the
    same new gpu_id at once. Retrying the colliding ops once settles it, because the document exists
    by then, so the retry either matches (ours is newer) or collides again (stored is newer)."""
    collection: Collection = db["gpu_latest"]
    progress = Isolation(pending=[sorted(plan.gpu_latest)] if plan.gpu_latest else [])
    write_isolating(progress, lambda gpu_ids: _write_gpu_states(collection, plan, gpu_ids, updated_at), unwritable_kind)
    return progress.unwritable


def _write_gpu_states(collection: Collection, plan: BatchPlan, gpu_ids: list[str], updated_at: float) -> dict[str, str]:
    ops = [(gpu_id, gpu_latest_op(plan.gpu_latest[gpu_id], updated_at)) for gpu_id in gpu_ids]
    refused: dict[str, str] = {}
    for _attempt in range(2):
        if not ops:
            break
        try:
            collection.bulk_write([op for _, op in ops], ordered=False)
            break
        except BulkWriteError as exc:
            duplicate_at, refused_at = _write_errors(exc)
            refused.update((ops[i][0], kind) for i, kind in refused_at.items())
            ops = [ops[i] for i in duplicate_at]
    return refused


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    doc.pop("_id", None)
    return doc


def all_gpus(db: Database) -> list[dict[str, Any]]:
    return [_public(doc) for doc in db["gpu_latest"].find({}, sort=[("_id", ASCENDING)])]


def one_gpu(db: Database, gpu_id: str) -> dict[str, Any] | None:
    doc = db["gpu_latest"].find_one({"_id": gpu_id})
    return None if doc is None else _public(doc)
