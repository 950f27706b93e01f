"""Data faults: destroy the processor's data, take the database away, corrupt a backup; and their rollbacks.

Every fault here ends by itself or has a rollback that restores service: a destroyed database is restored from
backup (``restore_from_backup``), a database outage is a hold with a TTL the runner enforces, and a corrupted
backup is healed by the backup agent at its TTL.
"""
from __future__ import annotations

import time

from chaoslib.types import Configuration, Secrets

from chaoslib_ext import timeline
from chaoslib_ext.arguments import flag, renamed
from chaoslib_ext.errors import InvalidArgument
from chaoslib_ext.targets import from_configuration
from chaoslib_ext.targets.base import CORRUPTION_MODES, DATA_SCOPES, fault_ttl

__all__ = [
    "destroy_data", "kill_database", "database_outage", "end_database_outage", "corrupt_latest_backup",
    "heal_backup_corruption", "restore_from_backup", "take_backup",
]



def _acks_snapshot(target) -> list[dict]:
    """What the broker had acknowledged at the moment of the disaster: the RPO probe's ground truth."""
    return [{"producer_id": a["producer_id"], "max_acked_seq": int(a["max_acked_seq"]),
             "failed_seqs": list(a.get("failed_seqs", []))} for a in target.producer_acks()]


def destroy_data(scope: str = "database", configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Destroy the processor's data: ``database`` drops database ``ca3`` (an operator's mistake, a bad
    migration); ``data-directory`` deletes the database server's data directory (the PVC on Kubernetes) and
    starts it again empty (a lost volume).

    Reads the producers' acknowledgements just before, so the RPO probe knows what had been acknowledged when
    the disaster struck. Records ``fault.destroy_data`` (with ``acked``) in the timeline.
    Returns ``{"scope", "destroyed_at"}``. Raises ``InvalidArgument`` for an unknown scope, before anything.
    """
    if scope not in DATA_SCOPES:
        raise InvalidArgument(f"scope {scope!r} is not one of {', '.join(DATA_SCOPES)}")
    with from_configuration(configuration, secrets) as target:
        acked = _acks_snapshot(target)
        result = target.destroy_data(scope)
        timeline.record("fault.destroy_data", configuration, at=float(result["destroyed_at"]), target=target.kind,
                        scope=scope, acked=acked)
        return {"scope": scope, "destroyed_at": float(result["destroyed_at"])}


def kill_database(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """SIGKILL the database server (a crashed mongod pod); the supervisor restarts it on the same data.

    Records ``fault.kill`` with ``instance: mongo``. Returns ``{"name", "pid", "killed_at"}``."""
    with from_configuration(configuration, secrets) as target:
        killed = target.kill("mongo", "SIGKILL")
        timeline.record("fault.kill", configuration, at=killed.killed_at, target=target.kind, instance=killed.name,
                        pid=killed.pid, signal=killed.signal)
        return {"name": killed.name, "pid": killed.pid, "killed_at": killed.killed_at}


def database_outage(ttl_seconds: float = 60.0, wait: bool = True, configuration: Configuration = None,
                    secrets: Secrets = None, duration: float | None = None) -> dict:
    """Take the database away for ``ttl_seconds`` seconds (at most an hour): every instance stopped, started
    again by the target at the expiry even if this run dies (a TTL the runner enforces). With ``wait`` (default)
    returns after starting it again. Records ``fault.database_outage`` and ``fault.healed``.
    Returns ``{"stopped_at", "expires_at", "started_at"|None}``. ``duration`` is the old name of
    ``ttl_seconds``, still accepted for one release."""
    ttl_seconds = fault_ttl(renamed("ttl_seconds", ttl_seconds, 60.0, "duration", duration))
    flag("wait", wait)
    with from_configuration(configuration, secrets) as target:
        hold = target.stop_component("mongo", ttl_seconds)
        stopped_at, expires_at = float(hold["stopped_at"]), float(hold["expires_at"])
        timeline.record("fault.database_outage", configuration, at=stopped_at, target=target.kind,
                        ttl_seconds=ttl_seconds, expires_at=expires_at)
        result = {"stopped_at": stopped_at, "expires_at": expires_at, "started_at": None}
        if wait:
            time.sleep(max(0.0, expires_at - time.time()))
            started = target.start_component("mongo")
            result["started_at"] = min(float(started["started_at"]), max(expires_at, stopped_at))
            timeline.record("fault.healed", configuration, at=time.time(), target=target.kind, fault="database-outage")
        return result


def end_database_outage(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Start the database again now; the rollback of ``database_outage``. Starting a running one is no error."""
    with from_configuration(configuration, secrets) as target:
        started = target.start_component("mongo")
        if started.get("was_stopped"):
            timeline.record("fault.healed", configuration, target=target.kind, fault="database-outage")
        return {"was_stopped": bool(started.get("was_stopped")), "started_at": started.get("started_at")}


def corrupt_latest_backup(mode: str = "truncate", ttl_seconds: float = 600.0, configuration: Configuration = None,
                          secrets: Secrets = None) -> dict:
    """Corrupt the backup a restore would choose now: ``truncate`` its largest data file to half, or ``flip`` one
    byte. The agent keeps the original and heals it after ``ttl_seconds``. Records ``fault.corrupt_backup``.

    A backup of a database with no documents has no data file to damage: the agent then damages the newest one a
    restore could fall back to that has one, and names those it passed over (``passed_over``, "<id>: <why>").
    Returns ``{"backup_id", "file", "mode", "applied_at", "expires_at", "passed_over"}``. Raises
    ``InvalidArgument`` for a bad mode or TTL (before anything), and ``InvalidArgument`` carrying the agent's
    409 when no backup has a data file, naming each backup and why."""
    if mode not in CORRUPTION_MODES:
        raise InvalidArgument(f"mode {mode!r} is not one of {', '.join(CORRUPTION_MODES)}")
    ttl = fault_ttl(ttl_seconds)
    with from_configuration(configuration, secrets) as target:
        fault = target.corrupt_backup(mode, ttl)
        passed_over = list(fault.get("passed_over") or [])
        timeline.record("fault.corrupt_backup", configuration, at=float(fault["applied_at"]), target=target.kind,
                        backup_id=fault["backup_id"], file=fault["file"], mode=mode, expires_at=fault["expires_at"],
                        passed_over=passed_over)
        return {**{k: fault[k] for k in ("backup_id", "file", "mode", "applied_at", "expires_at")},
                "passed_over": passed_over}


def heal_backup_corruption(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Put the corrupted backup's original bytes back; the rollback of ``corrupt_latest_backup``."""
    with from_configuration(configuration, secrets) as target:
        healed = target.heal_backup_corruption()
        if healed.get("was_active"):
            timeline.record("fault.healed", configuration, target=target.kind, fault="corrupt-backup")
        return {"was_active": bool(healed.get("was_active")), "healed_at": healed.get("healed_at")}


def take_backup(configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Take a snapshot now (so an experiment knows a fresh one exists). Returns ``{"id", "bytes", "duration_s"}``."""
    with from_configuration(configuration, secrets) as target:
        manifest = target.take_backup()
        timeline.record("observation.backup", configuration, backup_id=manifest["id"], bytes=manifest["bytes"],
                        duration_s=manifest["duration_s"])
        return {"id": manifest["id"], "bytes": manifest["bytes"], "duration_s": manifest["duration_s"]}


def restore_from_backup(replay: bool = True, backup_id: str | None = None, only_if_needed: bool = False,
                        configuration: Configuration = None, secrets: Secrets = None) -> dict:
    """Restore the newest valid backup taken before the pending disaster (or ``backup_id``), replaying Kafka
    from its recorded offsets when ``replay``. With ``only_if_needed`` (for rollbacks) it does nothing unless
    the agent has a disaster that no restore has recovered from yet.

    Records ``action.restore`` with the backup used and the fallbacks taken. Returns the restore report
    (``backup_id``, ``fallbacks``, ``restored``, ``changes_applied``, ``replay``), or ``{"skipped": true}``."""
    flag("replay", replay)
    flag("only_if_needed", only_if_needed)
    if backup_id is not None and (not isinstance(backup_id, str) or not backup_id):
        raise InvalidArgument(f"backup_id must be a backup id from the agent's /backups, got {backup_id!r}")
    with from_configuration(configuration, secrets) as target:
        if only_if_needed and not any(not d.get("recovered_by") for d in target.backups()["disasters"]):
            return {"skipped": True}
        started = time.time()
        report = target.restore(backup_id=backup_id, replay=replay)
        timeline.record("action.restore", configuration, at=started, target=target.kind,
                        backup_id=report["backup_id"], fallbacks=report.get("fallbacks", []), replay=replay,
                        restored_until_wall=report.get("restored_until_wall"), finished_at=time.time())
        return report
