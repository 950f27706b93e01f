"""Restore: choose a verified snapshot, load it, apply the change log up to the target point.

Choosing is pure (``choose``) so it is tested without a database. The target point is, in order: the newest
disaster not yet recovered (restore everything logged before it), ``until`` (Unix seconds), or the end of the log.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

import bson
from bson import json_util
from bson.raw_bson import RawBSONDocument
from pymongo import DeleteOne, IndexModel, MongoClient, ReplaceOne, UpdateOne
from pymongo.errors import BulkWriteError, CollectionInvalid, OperationFailure

from chaos_dr_stack.backup.changelog import CorruptChangeLog, read_segment, segments, ts_key
from chaos_dr_stack.backup.store import BackupStore, CorruptBackup

log = logging.getLogger(__name__)

BATCH = 1000


class RestoreRefused(Exception):
    """No backup can be restored as asked. The message says why, naming every backup refused."""


@dataclass(frozen=True)
class TargetPoint:
    """Restore what was logged in ``epoch`` strictly before ``ts`` (and, with ``until``, before that wall time)."""

    epoch: int
    ts: tuple[int, int]
    until: float | None = None
    disaster: dict | None = None

    def describe(self) -> dict:
        return {"epoch": self.epoch, "ts": list(self.ts), "until": self.until, "disaster": self.disaster}

    def admits(self, manifest: dict) -> bool:
        """Was this snapshot taken, start to end, before the target point and in its epoch? A dump that
        overlaps a disaster may hold part of what the disaster did."""
        end = tuple(manifest.get("end_position") or (2**31, 0))
        if int(manifest.get("epoch", 0)) != self.epoch or end >= self.ts:
            return False
        return self.until is None or float(manifest["finished_at"]) < self.until

    def includes(self, record: dict) -> bool:
        if int(record.get("epoch", 0)) != self.epoch or ts_key(record["ts"]) >= self.ts:
            return False
        return self.until is None or record.get("wall") is None or float(record["wall"]) < self.until


END_OF_LOG = (2**31, 0)


def target_point(disasters: list[dict], current_epoch: int, until: float | None) -> TargetPoint:
    pending = [d for d in disasters if not d.get("recovered_by")]
    if pending:
        newest = max(pending, key=lambda d: (d["epoch"], tuple(d["ts"])))
        return TargetPoint(int(newest["epoch"]), tuple(newest["ts"]), until, newest)
    return TargetPoint(current_epoch, END_OF_LOG, until)


@dataclass
class Choice:
    manifest: dict
    fallbacks: list[str] = field(default_factory=list)
    """Why newer backups were passed over: one "<id>: <file>: <problem>" each."""


def taken_during_disaster(manifest: Mapping, disaster: Mapping) -> bool:
    """Was this snapshot dumped after ``disaster`` struck? Asked when the disaster is restored, so of snapshots
    taken between the two: after a drop, a dump that ended at or after the drop; after a lost history, any dump of
    the wiped server (a later epoch)."""
    epoch = int(manifest.get("epoch", 0))
    if epoch > int(disaster["epoch"]):
        return True
    end = tuple(manifest.get("end_position") or END_OF_LOG)
    return epoch == int(disaster["epoch"]) and end >= tuple(disaster["ts"])


def damaged_backups(disasters: Iterable[Mapping]) -> set[str]:
    """Backups of a damaged database: taken after a disaster and before its restore (``damaged_backups``, recorded
    by the restore). Automatic choices pass them over. The change log after one replays the restore's data, but
    not its index definitions, so restoring one left the application's collections with ``_id_`` alone."""
    return {backup for d in disasters if d.get("recovered_by") for backup in d.get("damaged_backups", ())}


def choose(store: BackupStore, point: TargetPoint, backup_id: str | None = None) -> Choice:
    """The named backup, verified, or the newest backup that verifies, was taken before ``point``, and is not a
    copy of a damaged database (``damaged_backups``)."""
    if backup_id is not None:
        if backup_id not in store.ids():
            raise RestoreRefused(f"backup {backup_id!r} does not exist; backups: {', '.join(store.ids()) or 'none'}")
        try:
            manifest = store.verify(backup_id)
        except CorruptBackup as exc:
            raise RestoreRefused(f"refusing to restore a corrupt backup: {exc}") from None
        if not point.admits(manifest):
            raise RestoreRefused(
                f"backup {backup_id} (epoch {manifest.get('epoch')}, position {manifest['position']}) was not "
                f"taken before the target point {point.describe()}; pass an older backup or --until"
            )
        return Choice(manifest)
    refused: list[str] = []
    damaged = damaged_backups(store.disasters())
    for candidate in reversed(store.ids()):
        if candidate in damaged:
            continue
        try:
            manifest = store.manifest(candidate)
            if not point.admits(manifest):
                continue
            manifest = store.verify(candidate)
        except CorruptBackup as exc:
            refused.append(str(exc).removeprefix("backup "))
            log.error("skipping corrupt %s", exc)
            continue
        except KeyError:
            continue
        return Choice(manifest, refused)
    raise RestoreRefused(
        f"no valid backup was taken before the target point {point.describe()}"
        + (f"; refused: {'; '.join(refused)}" if refused else "")
    )


def changes_after(store: BackupStore, manifest: dict, point: TargetPoint) -> Iterator[dict]:
    """Change-log records after the snapshot's position, up to the target point, oldest first.

    Every segment that may hold such records is verified first; a corrupt one is refused, naming it."""
    position = tuple(manifest["position"])
    wanted = [s for s in segments(store.changelog_dir)
              if s.epoch == point.epoch and tuple(s.meta["last_ts"]) > position and tuple(s.meta["first_ts"]) < point.ts]
    for segment in wanted:
        for record in read_segment(segment):
            if ts_key(record["ts"]) > position and point.includes(record):
                yield record


def _raw_batches(path, size: int = BATCH) -> Iterator[list[RawBSONDocument]]:
    batch: list[RawBSONDocument] = []
    with open(path, "rb") as handle:
        for doc in bson.decode_file_iter(handle, codec_options=bson.CodecOptions(document_class=RawBSONDocument)):
            batch.append(doc)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


NAMESPACE_EXISTS = 48


def _collection(database, name: str, options: dict):
    """The collection, created with the snapshot's options unless something created it since the drop: a processor
    write in flight when the writers were frozen can land between the check and the create (seen in CI:
    "collection gpu_latest already exists")."""
    if name in database.list_collection_names():
        return database[name]
    try:
        return database.create_collection(name, **options)
    except CollectionInvalid:
        return database[name]
    except OperationFailure as exc:
        if exc.code != NAMESPACE_EXISTS:
            raise
        return database[name]


def load_snapshot(client: MongoClient, store: BackupStore, manifest: dict) -> dict[str, int]:
    database = client[manifest["database"]]
    directory = store.path(manifest["id"])
    client.drop_database(manifest["database"])
    restored = {}
    for name in sorted(manifest["collections"]):
        meta = json_util.loads((directory / f"{name}.meta.json").read_text())
        collection = _collection(database, name, meta.get("options") or {})
        count = 0
        for batch in _raw_batches(directory / f"{name}.bson"):
            try:
                collection.insert_many(batch, ordered=False)
            except BulkWriteError as exc:
                # A processor batch in flight when the writers were frozen may land meanwhile: the newer
                # document it wrote stays; anything else is a real failure.
                if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                    raise
            count += len(batch)
        indexes = index_models(meta.get("indexes", []))
        if indexes:
            collection.create_indexes(indexes)
        restored[name] = count
    return restored


def index_models(specs: Iterable[Mapping]) -> list[IndexModel]:
    """``listIndexes`` output (as a snapshot's meta keeps it) as models ``create_indexes`` takes, ``_id_`` left out."""
    return [IndexModel(list(spec["key"].items()), **{k: v for k, v in spec.items() if k not in ("key", "v", "ns")})
            for spec in specs if spec.get("name") != "_id_"]


def _operation(record: dict):
    op, key = record["op"], record.get("key")
    if op in ("i", "r"):
        return ReplaceOne(key, record["doc"], upsert=True)
    if op == "u":
        update = {}
        if record.get("set"):
            update["$set"] = record["set"]
        if record.get("unset"):
            update["$unset"] = dict.fromkeys(record["unset"], "")
        return UpdateOne(key, update) if update else None
    if op == "d":
        return DeleteOne(key)
    return None


def apply_changes(client: MongoClient, database: str, records: Iterable[dict]) -> tuple[int, float | None]:
    """Apply records in order, batching consecutive ones of the same collection. Returns (applied, last wall).

    The change log holds data changes, not index definitions. A replayed drop (an earlier restore's) would leave
    the collection that later inserts re-create with ``_id_`` alone, and the application's first restart would
    then build its indexes while it serves, holding a database that answers one request at a time. So the
    indexes a replayed drop removed are built again at the end, here, while the writers are still frozen."""
    db = client[database]
    applied, last_wall = 0, None
    run_coll, run_ops = None, []
    dropped_indexes: dict[str, list[IndexModel]] = {}

    def remember_indexes(names: Iterable[str]) -> None:
        for name in names:
            if name not in dropped_indexes:
                dropped_indexes[name] = index_models(db[name].list_indexes())

    def flush() -> None:
        if run_ops:
            db[run_coll].bulk_write(run_ops, ordered=True)
            run_ops.clear()

    for record in records:
        last_wall = record.get("wall", last_wall)
        if record["op"] in ("drop", "dropDatabase", "rename"):
            # Only reachable inside a restore window (earlier restores): replay them as they happened.
            flush()
            if record["op"] == "drop" and record.get("coll"):
                remember_indexes([record["coll"]])
                db.drop_collection(record["coll"])
            elif record["op"] == "dropDatabase":
                remember_indexes(db.list_collection_names())
                client.drop_database(database)
            applied += 1
            continue
        operation = _operation(record)
        if operation is None:
            continue
        if record["coll"] != run_coll or len(run_ops) >= BATCH:
            flush()
            run_coll = record["coll"]
        run_ops.append(operation)
        applied += 1
    flush()
    existing = set(db.list_collection_names()) if dropped_indexes else set()
    for name, models in dropped_indexes.items():
        if models and name in existing:
            db[name].create_indexes(models)
    return applied, last_wall


def replay_offsets(client: MongoClient, database: str, recorded: dict[str, int]) -> dict[str, int]:
    """Where a replay should start, per partition: the first offset, from the backup's recorded one on, that the
    restored events do not hold. The recorded offsets are a safe lower bound, but everything between them and the
    disaster is usually restored already from the change log, and re-consuming a stored event costs an update per
    duplicate (slow on SecantusDB); starting after the contiguous restored run re-consumes only what is missing.
    A dead-lettered message has no event, so the run stops there: a few duplicates, never a gap."""
    events = client[database]["events"]
    starts = {}
    for key, offset in recorded.items():
        topic, partition = key.rsplit("/", 1)
        held = events.find({"kafka_topic": topic, "kafka_partition": int(partition), "kafka_offset": {"$gte": offset}},
                           projection={"kafka_offset": 1, "_id": 0})
        present = {int(d["kafka_offset"]) for d in held}
        start = int(offset)
        while start in present:
            start += 1
        starts[key] = start
    return starts


def restore(client: MongoClient, store: BackupStore, point: TargetPoint, backup_id: str | None) -> dict:
    """Choose, verify, load and roll forward. Raises RestoreRefused (nothing is touched) for a bad choice or a
    corrupt change log."""
    started = time.time()
    choice = choose(store, point, backup_id)
    manifest = choice.manifest
    try:
        records = list(changes_after(store, manifest, point))  # verified before the database is touched
    except CorruptChangeLog as exc:
        raise RestoreRefused(f"refusing to restore backup {manifest['id']}: {exc}") from None
    restored = load_snapshot(client, store, manifest)
    applied, last_wall = apply_changes(client, manifest["database"], records)
    return {
        "backup_id": manifest["id"],
        "backup_created_at": manifest["created_at"],
        "fallbacks": choice.fallbacks,
        "target": point.describe(),
        "restored": restored,
        "changes_applied": applied,
        "restored_until_wall": last_wall if last_wall is not None else manifest["created_at"],
        "kafka_offsets": manifest.get("kafka_offsets", {}),
        "replay_from": replay_offsets(client, manifest["database"], manifest.get("kafka_offsets", {})),
        "started_at": started,
    }
