"""The backup-corruption fault: damage one file of a backup, keep the original beside it, heal at the TTL.

The original bytes are kept as ``<file>.gameday-original``, so the fault heals even after an agent restart
(``heal_leftovers`` runs at start). ``truncate`` cuts the file to half; ``flip`` inverts one byte in the middle.

Which backup: the one a restore would choose now, unless it has nothing to damage (``pick``): a backup of a
database with no documents has no data file, or only empty ones, and truncating an empty file changes nothing.
Then the newest backup a restore could fall back to that has one, with the ones passed over named; if none has
one, ``NothingToCorrupt`` (the API's 409) names every backup and why.
"""
from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from chaos_dr_stack.backup.restore import TargetPoint, damaged_backups
from chaos_dr_stack.backup.store import BackupStore, CorruptBackup

ORIGINAL_SUFFIX = ".gameday-original"
MODES = ("truncate", "flip")
MAX_TTL_S = 3600.0


class FaultRequestError(ValueError):
    """A bad fault request; the message names the field."""


def parse(body: object) -> tuple[str, float]:
    if not isinstance(body, dict):
        raise FaultRequestError('body must be a JSON object like {"mode": "truncate", "ttl_seconds": 60}')
    unknown = sorted(set(body) - {"mode", "ttl_seconds"})
    if unknown:
        raise FaultRequestError(f"{unknown[0]}: unknown field")
    mode = body.get("mode", "truncate")
    if mode not in MODES:
        raise FaultRequestError(f"mode: {mode!r} is not one of {', '.join(MODES)}")
    ttl = body.get("ttl_seconds")
    if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 < ttl <= MAX_TTL_S:
        raise FaultRequestError(f"ttl_seconds: must be > 0 and <= {MAX_TTL_S:g}, got {ttl!r}")
    return mode, float(ttl)


class NothingToCorrupt(Exception):
    """No backup a restore could choose has a data file to damage. The message names each backup and why."""


def data_file(manifest: dict) -> str | None:
    """The backup's largest non-empty data file (``<collection>.bson``), or None: a backup of a database with no
    documents has none, and damaging its metadata would test the manifest check, not the data's."""
    files = manifest.get("files") or {}
    data = [name for name, f in files.items() if name.endswith(".bson") and int(f.get("bytes", 0)) > 0]
    return max(data, key=lambda name: (int(files[name]["bytes"]), name)) if data else None


@dataclass(frozen=True)
class Pick:
    manifest: dict
    file: str
    passed_over: list[str] = field(default_factory=list)
    """Newer backups a restore would have met first, each as "<id>: <why not>"."""


def pick(store: BackupStore, point: TargetPoint) -> Pick:
    """The backup to corrupt: in the order a restore considers them (``restore.choose``: newest first, taken before
    ``point``, verifying), the first that has a data file. Raises NothingToCorrupt naming what it passed over."""
    passed_over: list[str] = []
    damaged = damaged_backups(store.disasters())
    for backup_id in reversed(store.ids()):
        if backup_id in damaged:
            continue  # a restore passes over a copy of a damaged database
        try:
            manifest = store.manifest(backup_id)
            if not point.admits(manifest):
                continue  # a restore would not choose it either
            manifest = store.verify(backup_id)
        except KeyError:
            continue  # deleted by retention meanwhile
        except CorruptBackup as exc:
            passed_over.append(f"{str(exc).removeprefix('backup ')} (already corrupt)")
            continue
        name = data_file(manifest)
        if name is None:
            collections = ", ".join(sorted(manifest.get("collections") or {})) or "none"
            passed_over.append(f"{backup_id}: no data file to damage (database {manifest.get('database', '?')} had "
                               f"no documents when it was taken; collections: {collections})")
            continue
        return Pick(manifest, name, passed_over)
    if not passed_over:
        raise NothingToCorrupt(f"no backup was taken before the target point {point.describe()}")
    raise NothingToCorrupt("no backup a restore could choose has a data file to damage: " + "; ".join(passed_over))


def _damage(path: Path, mode: str) -> None:
    data = path.read_bytes()
    os.replace(path, path.with_name(path.name + ORIGINAL_SUFFIX))
    if mode == "truncate":
        damaged = data[: len(data) // 2]
    else:
        middle = len(data) // 2
        damaged = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:] if data else b"\xff"
    path.write_bytes(damaged)


def heal_leftovers(root: Path) -> list[str]:
    healed = []
    for original in Path(root).rglob(f"*{ORIGINAL_SUFFIX}"):
        target = original.with_name(original.name[: -len(ORIGINAL_SUFFIX)])
        os.replace(original, target)
        healed.append(str(target))
    return healed


class CorruptionFault:
    def __init__(self, root: Path, clock=time.time):
        self._root = Path(root)
        self._clock = clock
        self._lock = threading.Lock()
        self.active: dict | None = None
        self._timer: threading.Timer | None = None

    def apply(self, store: BackupStore, point: TargetPoint, mode: str, ttl: float) -> dict:
        """Heal any earlier corruption, then damage the data file of the backup ``pick`` chooses. Raises
        NothingToCorrupt (nothing damaged) when no backup has one."""
        with self._lock:
            self._heal_locked()
            chosen = pick(store, point)
            _damage(store.path(chosen.manifest["id"]) / chosen.file, mode)
            now = self._clock()
            self.active = {"kind": "corrupt-backup", "backup_id": chosen.manifest["id"], "file": chosen.file,
                           "mode": mode, "ttl_seconds": ttl, "applied_at": now, "expires_at": now + ttl,
                           "passed_over": chosen.passed_over}
            self._timer = threading.Timer(ttl, self.heal)
            self._timer.daemon = True
            self._timer.start()
            return dict(self.active)

    def heal(self) -> dict:
        with self._lock:
            was = self.active
            self._heal_locked()
            return {"kind": "corrupt-backup", "was_active": was is not None, "healed_at": self._clock(),
                    "backup_id": was["backup_id"] if was else None}

    def _heal_locked(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        heal_leftovers(self._root)
        self.active = None

    def listing(self) -> list[dict]:
        active = self.active
        if active is None:
            return []
        return [{**active, "expires_in": round(max(0.0, active["expires_at"] - self._clock()), 3)}]
