"""The backup-corruption fault: damage one file of a backup, keep the original beside it, heal at the TTL.

The original bytes are kept as ``<file>.gameday-original``, so the fault heals even after an agent restart
(``heal_leftovers`` runs at start). ``truncate`` cuts the file to half; ``flip`` inverts one byte in the middle.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

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

    def apply(self, backup_dir: Path, manifest: dict, mode: str, ttl: float) -> dict:
        with self._lock:
            self._heal_locked()
            data_files = [n for n in manifest["files"] if n.endswith(".bson")] or list(manifest["files"])
            name = max(data_files, key=lambda n: manifest["files"][n]["bytes"])
            _damage(backup_dir / name, mode)
            now = self._clock()
            self.active = {"kind": "corrupt-backup", "backup_id": manifest["id"], "file": name, "mode": mode,
                           "ttl_seconds": ttl, "applied_at": now, "expires_at": now + ttl}
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
