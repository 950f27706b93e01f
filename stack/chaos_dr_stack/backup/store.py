"""The backup store: one directory per snapshot with a manifest and sha256 checksums, plus the change log.

Layout (docs/local-stack-contract.md, "Backup agent"):
``backups/<id>/manifest.json``, ``manifest.sha256``, ``<collection>.bson``, ``<collection>.meta.json``;
``changelog/`` (chaos_dr_stack.backup.changelog); ``disasters.json``.
A snapshot is written into ``backups/.tmp-<id>`` and renamed when complete, so a listed backup is never half
written; what can still go wrong afterwards (a truncated or altered file) is what ``verify`` finds.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
MANIFEST_SUM = "manifest.sha256"
CHUNK = 1 << 20


class CorruptBackup(Exception):
    """A backup failed verification. The message names the backup and the file."""


def sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def new_backup_id(now: float) -> str:
    """Sortable by time: ``20261123T004512.345Z``."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def write_json_atomic(path: Path, data: object) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    os.replace(tmp, path)


@dataclass
class BackupStore:
    root: Path

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.backups_dir.mkdir(parents=True, exist_ok=True)
        self.changelog_dir.mkdir(parents=True, exist_ok=True)

    @property
    def backups_dir(self) -> Path:
        return self.root / "backups"

    @property
    def changelog_dir(self) -> Path:
        return self.root / "changelog"

    @property
    def disasters_path(self) -> Path:
        return self.root / "disasters.json"

    def staging(self, backup_id: str) -> Path:
        path = self.backups_dir / f".tmp-{backup_id}"
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(parents=True)
        return path

    def commit(self, staging: Path, manifest: dict) -> dict:
        """Checksum every file in ``staging``, write the manifest, and publish the directory under its id."""
        files = {}
        for path in sorted(staging.iterdir()):
            size, digest = sha256_file(path)
            files[path.name] = {"bytes": size, "sha256": digest}
        manifest = {**manifest, "files": files, "bytes": sum(f["bytes"] for f in files.values())}
        text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
        (staging / MANIFEST).write_text(text)
        (staging / MANIFEST_SUM).write_text(hashlib.sha256(text.encode()).hexdigest() + "\n")
        final = self.backups_dir / manifest["id"]
        os.replace(staging, final)
        return manifest

    def ids(self) -> list[str]:
        """Published backups, oldest first."""
        return sorted(p.name for p in self.backups_dir.iterdir() if p.is_dir() and not p.name.startswith("."))

    def path(self, backup_id: str) -> Path:
        return self.backups_dir / backup_id

    def manifest(self, backup_id: str) -> dict:
        """The manifest, checked against its own checksum. Raises CorruptBackup naming the file."""
        directory = self.path(backup_id)
        if not directory.is_dir():
            raise KeyError(backup_id)
        try:
            text = (directory / MANIFEST).read_text()
            expected = (directory / MANIFEST_SUM).read_text().strip()
        except OSError as exc:
            raise CorruptBackup(f"backup {backup_id}: {exc.filename}: cannot be read ({exc.strerror})") from None
        if hashlib.sha256(text.encode()).hexdigest() != expected:
            raise CorruptBackup(f"backup {backup_id}: {MANIFEST}: sha256 does not match {MANIFEST_SUM}")
        try:
            return json.loads(text)
        except ValueError as exc:
            raise CorruptBackup(f"backup {backup_id}: {MANIFEST}: not JSON ({exc})") from None

    def verify(self, backup_id: str) -> dict:
        """Check every file's size and sha256 against the manifest. Returns the manifest; raises CorruptBackup
        naming the first file that is missing, truncated, grown or altered."""
        manifest = self.manifest(backup_id)
        directory = self.path(backup_id)
        for name, expected in sorted(manifest.get("files", {}).items()):
            path = directory / name
            if not path.is_file():
                raise CorruptBackup(f"backup {backup_id}: {name}: missing")
            size, digest = sha256_file(path)
            if size != expected["bytes"]:
                what = "truncated" if size < expected["bytes"] else "grown"
                raise CorruptBackup(
                    f"backup {backup_id}: {name}: {what}: {size} bytes, the manifest says {expected['bytes']}"
                )
            if digest != expected["sha256"]:
                raise CorruptBackup(
                    f"backup {backup_id}: {name}: sha256 {digest[:16]}… does not match the manifest's "
                    f"{expected['sha256'][:16]}…"
                )
        return manifest

    def listing(self, verify: bool = False) -> list[dict]:
        """Newest first; each manifest with ``valid`` (None unless ``verify``) and ``problem``."""
        out = []
        for backup_id in reversed(self.ids()):
            try:
                manifest = self.verify(backup_id) if verify else self.manifest(backup_id)
                out.append({**manifest, "valid": True if verify else None, "problem": None})
            except CorruptBackup as exc:
                out.append({"id": backup_id, "valid": False, "problem": str(exc)})
            except KeyError:
                continue  # deleted by retention meanwhile
        return out

    def prune(self, now: float, retention_s: float, keep_min: int) -> list[str]:
        """Delete snapshots older than ``retention_s``, keeping the newest ``keep_min``. Returns deleted ids."""
        ids = self.ids()
        deleted = []
        for backup_id in ids[: max(0, len(ids) - keep_min)]:
            try:
                created = float(self.manifest(backup_id)["created_at"])
            except (CorruptBackup, KeyError, ValueError):
                created = (self.path(backup_id) / MANIFEST).stat().st_mtime if (
                    self.path(backup_id) / MANIFEST).exists() else 0.0
            if now - created > retention_s:
                shutil.rmtree(self.path(backup_id), ignore_errors=True)
                deleted.append(backup_id)
        return deleted

    def total_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.root.rglob("*") if p.is_file())

    # Disasters the agent saw (chaos_dr_stack.backup.follower), and which restore recovered from each.
    def disasters(self) -> list[dict]:
        try:
            return list(json.loads(self.disasters_path.read_text()))
        except (OSError, ValueError):
            return []

    def save_disasters(self, disasters: list[dict]) -> None:
        write_json_atomic(self.disasters_path, disasters)
