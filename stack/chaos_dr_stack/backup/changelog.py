"""The continuous change log: BSON records in segment files, each with a checksummed sidecar.

A record is one BSON document ``{ts, wall, epoch, op, coll, key, doc|set|unset}``:
``op`` is ``i`` (insert, ``doc``), ``r`` (replace, ``doc``), ``u`` (update: ``set`` = updatedFields with their new
values, ``unset`` = removedFields, so applying it twice gives the same document), ``d`` (delete), or ``drop``,
``dropDatabase``, ``rename``. ``ts`` is the change's cluster time (bson Timestamp), ``wall`` Unix seconds.

The sidecar ``<segment>.json`` holds ``bytes`` and ``sha256`` of the segment's content up to the last flush.
Readers trust only that prefix: a write the agent died in is not part of the log.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bson
from bson import Timestamp

from chaos_dr_stack.backup.store import write_json_atomic

DESTRUCTIVE_OPS = ("drop", "dropDatabase", "rename")


class CorruptChangeLog(Exception):
    """A change-log segment failed verification. The message names the file."""


def ts_key(ts: Timestamp | list | tuple | None) -> tuple[int, int]:
    if ts is None:
        return (0, 0)
    if isinstance(ts, Timestamp):
        return (ts.time, ts.inc)
    return (int(ts[0]), int(ts[1]))


def record_from_change(change: dict, epoch: int) -> dict | None:
    """A change stream event as a change-log record; None for events that change no data."""
    op_type = change.get("operationType")
    ns = change.get("ns") or {}
    wall = change.get("wallTime")
    record = {
        "ts": change["clusterTime"],
        "wall": wall.timestamp() if hasattr(wall, "timestamp") else None,
        "epoch": epoch,
        "coll": ns.get("coll"),
    }
    key = change.get("documentKey")
    if op_type == "insert":
        return {**record, "op": "i", "key": key, "doc": change["fullDocument"]}
    if op_type == "replace":
        return {**record, "op": "r", "key": key, "doc": change["fullDocument"]}
    if op_type == "update":
        description = change.get("updateDescription") or {}
        return {**record, "op": "u", "key": key, "set": description.get("updatedFields") or {},
                "unset": list(description.get("removedFields") or [])}
    if op_type == "delete":
        return {**record, "op": "d", "key": key}
    if op_type in DESTRUCTIVE_OPS:
        return {**record, "op": op_type, "to": (change.get("to") or {}).get("coll")}
    return None


class ChangeLogWriter:
    """Appends records to the current segment; ``rotate`` closes it (at every snapshot). Thread-safe."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._segment: Path | None = None
        self._handle = None
        self._digest = None
        self._meta: dict = {}
        self._dirty = False

    def append(self, record: dict) -> None:
        data = bson.encode(record)
        with self._lock:
            if self._handle is None:
                self._open(record)
            self._handle.write(data)
            self._digest.update(data)
            self._meta["bytes"] += len(data)
            self._meta["records"] += 1
            self._meta["last_ts"] = list(ts_key(record["ts"]))
            self._meta["last_wall"] = record.get("wall")
            self._dirty = True

    def flush(self) -> None:
        """Make what was appended durable, then publish it in the sidecar."""
        with self._lock:
            if self._handle is not None and self._dirty:
                self._publish_locked()

    def rotate(self) -> None:
        """Close the current segment. One lock for publish and close: an append in between would otherwise be
        written by the close but missing from the sidecar's checksum."""
        with self._lock:
            if self._handle is None:
                return
            self._meta["closed"] = True
            self._publish_locked()
            self._handle.close()
            self._handle = self._segment = None

    def _publish_locked(self) -> None:
        self._handle.flush()
        self._meta["sha256"] = self._digest.hexdigest()
        write_json_atomic(self._sidecar(self._segment), self._meta)
        self._dirty = False

    close = rotate

    def _open(self, first: dict) -> None:
        t, i = ts_key(first["ts"])
        self._segment = self.directory / f"{t:010d}-{i:06d}-e{first['epoch']}.bson"
        self._handle = open(self._segment, "ab")
        self._digest = hashlib.sha256()
        self._meta = {"bytes": 0, "records": 0, "sha256": self._digest.hexdigest(), "epoch": first["epoch"],
                      "first_ts": [t, i], "last_ts": [t, i], "first_wall": first.get("wall"), "last_wall": None,
                      "closed": False}

    @staticmethod
    def _sidecar(segment: Path) -> Path:
        return segment.with_suffix(".json")


@dataclass(frozen=True)
class Segment:
    path: Path
    meta: dict

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])


def segments(directory: Path) -> list[Segment]:
    """Every segment with a readable sidecar, oldest first. A segment without one was never flushed."""
    found = []
    for sidecar in sorted(Path(directory).glob("*.json")):
        segment = sidecar.with_suffix(".bson")
        try:
            meta = json.loads(sidecar.read_text())
        except (OSError, ValueError) as exc:
            raise CorruptChangeLog(f"change log {sidecar.name}: unreadable ({exc})") from None
        if segment.exists():
            found.append(Segment(segment, meta))
    return found


def read_segment(segment: Segment) -> Iterator[dict]:
    """The segment's records, after checking its flushed prefix against the sidecar's sha256."""
    expected = int(segment.meta["bytes"])
    with open(segment.path, "rb") as handle:
        data = handle.read(expected)
    if len(data) < expected:
        raise CorruptChangeLog(
            f"change log {segment.path.name}: truncated: {len(data)} bytes, its sidecar says {expected}"
        )
    if hashlib.sha256(data).hexdigest() != segment.meta["sha256"]:
        raise CorruptChangeLog(f"change log {segment.path.name}: sha256 does not match its sidecar")
    try:
        yield from bson.decode_iter(data)
    except bson.errors.BSONError as exc:  # a checksum collision is not a thing; this guards hand-made sidecars
        raise CorruptChangeLog(f"change log {segment.path.name}: not BSON ({exc})") from None


def prune(directory: Path, before: tuple[int, int]) -> list[str]:
    """Delete closed segments whose last change is before ``before`` (the oldest kept snapshot's position)."""
    deleted = []
    for segment in segments(directory):
        if segment.meta.get("closed") and tuple(segment.meta["last_ts"]) < tuple(before):
            segment.path.unlink(missing_ok=True)
            segment.path.with_suffix(".json").unlink(missing_ok=True)
            deleted.append(segment.path.name)
    return deleted
