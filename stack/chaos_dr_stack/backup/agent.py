"""The agent: the change-log follower thread, the snapshot schedule, retention, and restores, in one process."""
from __future__ import annotations

import json
import logging
import threading
import time

from pymongo import MongoClient
from pymongo.errors import AutoReconnect, PyMongoError

from chaos_dr_stack.backup import changelog, kafka, metrics
from chaos_dr_stack.backup.changelog import ChangeLogWriter
from chaos_dr_stack.backup.corruption import CorruptionFault, heal_leftovers
from chaos_dr_stack.backup.follower import Follower, server_process
from chaos_dr_stack.backup.restore import RestoreRefused, TargetPoint, restore, taken_during_disaster, target_point
from chaos_dr_stack.backup.settings import BackupSettings
from chaos_dr_stack.backup.snapshot import StaleSnapshot, take_snapshot
from chaos_dr_stack.backup.store import BackupStore, CorruptBackup, write_json_atomic
from chaos_dr_stack.processor import store as processor_store
from chaos_dr_stack.processor.batching import plan_batch
from chaos_dr_stack.processor.loop import to_record

log = logging.getLogger(__name__)


FOLLOWER_SETTLE_S = 15.0
RESTORE_WAITS_FOR_SNAPSHOT_S = 120.0
"""How long a restore waits for a running snapshot (or restore) to finish before it answers 409."""
RESTORE_ATTEMPTS = 3
"""A restore is idempotent (drop, load, roll forward, replay with the processor's idempotent writes), so one the
database stalled under is started again: SecantusDB has been seen to stop answering for 10 to over 30 s."""
STALLED_DATABASE_WAIT_S = 120.0
"""How long, after a stall, a restore waits for the database to answer again before it gives up."""


class Busy(RuntimeError):
    """A restore is running: no snapshot or second restore meanwhile."""


class UncheckedServer(Busy):
    """The database server behind the snapshot is one whose history the follower has not checked (it restarted, or
    came back wiped, moments ago): its dump cannot be labelled with an epoch, so it is not taken, or not kept."""


class Agent:
    def __init__(self, settings: BackupSettings):
        self.settings = settings
        self.store = BackupStore(settings.store)
        healed = heal_leftovers(self.store.backups_dir)
        if healed:
            log.warning("healed backup corruption left by a previous run: %s", healed)
        self.state_path = self.store.root / "agent.json"
        self.writer = ChangeLogWriter(self.store.changelog_dir)
        self.follower = Follower(self._client, settings.database, self.store, self.writer, self._load_state())
        self.corruption = CorruptionFault(self.store.backups_dir)
        self._busy = threading.Lock()
        # One client for every health check: SecantusDB is single-threaded, and a new connection per readiness
        # probe (twice a second) is load it does not need.
        self._health_client = MongoClient(settings.mongo_uri, serverSelectionTimeoutMS=1000, connectTimeoutMS=1000,
                                          socketTimeoutMS=2000, appname="backup-agent-health")
        self._stop = threading.Event()
        self._snapshot_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self.last_error: str | None = None

    def _client(self) -> MongoClient:
        timeout = self.settings.mongo_timeout_ms
        return MongoClient(self.settings.mongo_uri, serverSelectionTimeoutMS=timeout, connectTimeoutMS=timeout,
                           socketTimeoutMS=int(self.settings.mongo_op_timeout_s * 1000), appname="backup-agent")

    def _load_state(self) -> dict:
        try:
            state = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {"epoch": 0}
        from bson import json_util

        state["resume_token"] = json_util.loads(json.dumps(state["resume_token"])) if state.get("resume_token") else None
        return state

    def save_state(self) -> None:
        from bson import json_util

        state = dict(self.follower.state)
        state["resume_token"] = json.loads(json_util.dumps(state["resume_token"])) if state.get("resume_token") else None
        write_json_atomic(self.state_path, state)

    # Life.
    def start(self) -> None:
        for target, name in ((self.follower.run, "follower"), (self._schedule, "snapshots")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._snapshot_now.set()
        self.follower.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        self.writer.close()
        self._health_client.close()
        self.save_state()
        self.corruption.heal()

    def _schedule(self) -> None:
        while not self._stop.is_set():
            try:
                self.snapshot()
            except UncheckedServer as exc:
                log.warning("%s", exc)
            except Busy:
                pass
            except Exception as exc:  # noqa: BLE001 - a failed snapshot is counted and retried next period
                self.last_error = f"{type(exc).__name__}: {str(exc)[:300]}"
                metrics.SNAPSHOTS.labels(outcome="failed").inc()
                log.warning("snapshot failed: %s", self.last_error)
            self.save_state()
            self._snapshot_now.wait(self.settings.interval_s)
            self._snapshot_now.clear()

    # Work.
    def snapshot(self) -> dict:
        if not self._busy.acquire(blocking=False):
            raise Busy("a snapshot or a restore is running")
        try:
            # A wiped server that is back before the follower has checked it would be dumped as the old epoch's
            # state, and chosen by the next restore of that epoch (seen in CI: an empty dump "restored").
            if not self._wait_for_follower_to_check_the_server():
                raise UncheckedServer("the backup agent has not yet checked the history of the database server "
                                      f"that answers now ({FOLLOWER_SETTLE_S:g} s); no snapshot taken")
            process, epoch = self.follower.verified_process, self.follower.epoch
            client = self._client()

            def server_changed() -> str | None:
                if server_process(client) != process or self.follower.epoch != epoch:
                    return "the database server restarted during the snapshot; it was discarded"
                return None

            try:
                # The change log rotates at every snapshot, so retention can drop whole segments.
                self.writer.rotate()
                manifest = take_snapshot(
                    client, self.store, self.settings.database, epoch,
                    offsets=lambda: kafka.committed_offsets(self.settings.bootstrap, self.settings.group),
                    invalid=server_changed,
                )
            except StaleSnapshot as exc:
                raise UncheckedServer(str(exc)) from None
            finally:
                client.close()
            metrics.SNAPSHOTS.labels(outcome="ok").inc()
            metrics.LAST_SUCCESS.set(manifest["finished_at"])
            metrics.LAST_SIZE.set(manifest["bytes"])
            metrics.LAST_DURATION.set(manifest["duration_s"])
            self._prune()
            self.last_error = None
            return manifest
        finally:
            self._busy.release()

    def _prune(self) -> None:
        deleted = self.store.prune(time.time(), self.settings.retention_s, self.settings.keep_min)
        ids = self.store.ids()
        if deleted and ids:
            try:
                oldest = self.store.manifest(ids[0])
                changelog.prune(self.store.changelog_dir, tuple(oldest["position"]))
            except Exception:  # noqa: BLE001 - an unreadable oldest manifest keeps the log: never lose history
                log.warning("change log not pruned: the oldest backup's manifest is unreadable")

    def point(self, until: float | None) -> TargetPoint:
        return target_point(self.store.disasters(), self.follower.epoch, until)

    def restore(self, backup_id: str | None, until: float | None, replay: bool) -> dict:
        # A scheduled snapshot can be running when the disaster strikes: the restore waits for it (snapshots are
        # bounded) instead of refusing the user in the middle of an outage.
        if not self._busy.acquire(timeout=RESTORE_WAITS_FOR_SNAPSHOT_S):
            raise Busy(f"a restore or a snapshot is still running after {RESTORE_WAITS_FOR_SNAPSHOT_S:g} s; try again")
        restored = False
        try:
            # Restoring is what the user needs in an outage, so an unchecked server does not stop it; the report
            # says so, because a disaster the follower had yet to see is not marked recovered by this restore.
            history_checked = self._wait_for_follower_to_check_the_server()
            if not history_checked:
                log.warning("the follower had not checked the database's history after %.0f s; restoring anyway",
                            FOLLOWER_SETTLE_S)
            point = self.point(until)
            self.writer.flush()
            self.follower.restoring.set()
            try:
                report = self._restore_through_stalls(point, backup_id, replay)
            except (RestoreRefused, PyMongoError, Exception):
                metrics.RESTORES.labels(outcome="failed").inc()
                raise
            finally:
                # The restore's own drops come back through the change stream a moment later.
                time.sleep(0.5)
                self.follower.restoring.clear()
            report["finished_at"] = time.time()
            report["history_checked"] = history_checked
            if point.disaster is not None:
                disasters = self.store.disasters()
                for d in disasters:
                    if d["epoch"] == point.disaster["epoch"] and d["ts"] == point.disaster["ts"]:
                        d["recovered_by"] = report["backup_id"]
                        d["recovered_at"] = report["finished_at"]
                        # No snapshot runs while the restore holds the lock: every one that exists is complete.
                        d["damaged_backups"] = self._taken_during(d)
                self.store.save_disasters(disasters)
            metrics.RESTORES.labels(outcome="ok").inc()
            log.info("restored backup %s (%d changes applied; fallbacks: %s)", report["backup_id"],
                     report["changes_applied"], report["fallbacks"] or "none")
            restored = True
            return report
        finally:
            self._busy.release()
            if restored:
                # The restored state is protected at once, not up to one interval later: a restore can outlast
                # several scheduled snapshots (each skipped while it held the lock), and the newest backup would
                # otherwise be older than the disaster.
                self._snapshot_now.set()

    def _restore_through_stalls(self, point: TargetPoint, backup_id: str | None, replay: bool) -> dict:
        """The restore, started again on a fresh connection when an operation outlasts the socket timeout. The
        report's ``stalls`` lists each one (when, the error, and how long the database took to answer again)."""
        stalls: list[dict] = []
        for attempt in range(1, RESTORE_ATTEMPTS + 1):
            client = self._client()
            try:
                report = restore(client, self.store, point, backup_id)
                report["replay"] = None
                if replay:
                    report["replay"] = kafka.replay_range(
                        self.settings.bootstrap, self.settings.group, report["replay_from"],
                        lambda batch: self._write_replayed(client, batch), log)
                report["stalls"] = stalls
                return report
            except AutoReconnect as exc:
                if attempt == RESTORE_ATTEMPTS:
                    raise
                stalled_at = time.time()
                log.warning("restore attempt %d of %d: the database stalled (%s); starting again once it answers",
                            attempt, RESTORE_ATTEMPTS, str(exc)[:200])
                answered_after = self._wait_for_the_database()
                stalls.append({"attempt": attempt, "at": stalled_at, "error": str(exc)[:300],
                               "answered_after_s": answered_after})
            finally:
                client.close()
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait_for_the_database(self) -> float:
        """Seconds until the database's storage answers again; raises the last error after STALLED_DATABASE_WAIT_S.
        Not ``ping``: SecantusDB was seen to answer it while its storage was deadlocked (until the local runner's
        liveness probe, or a kubelet's, restarts it); ``listDatabases`` needs the storage lock."""
        started = time.monotonic()
        while True:
            try:
                self._health_client.admin.command("listDatabases", nameOnly=True)
                return round(time.monotonic() - started, 3)
            except PyMongoError:
                if time.monotonic() - started > STALLED_DATABASE_WAIT_S:
                    raise
                time.sleep(0.5)

    def _taken_during(self, disaster: dict) -> list[str]:
        damaged = []
        for backup_id in self.store.ids():
            try:
                if taken_during_disaster(self.store.manifest(backup_id), disaster):
                    damaged.append(backup_id)
            except (CorruptBackup, KeyError):
                continue
        return damaged

    def _wait_for_follower_to_check_the_server(self) -> bool:
        """A database that just came back (a wiped data directory) must first have its history checked by the
        follower, which is when a lost history becomes a disaster the target point can name. False if it has
        not within FOLLOWER_SETTLE_S."""
        deadline = time.monotonic() + FOLLOWER_SETTLE_S
        while time.monotonic() < deadline:
            try:
                if self.follower.following and self.follower.verified_process == server_process(self._health_client):
                    return True
            except PyMongoError:
                pass
            time.sleep(0.1)
        return False

    def _write_replayed(self, client: MongoClient, messages: list) -> None:
        """The processor's own idempotent writes (chaos_dr_stack.processor.store), so a replayed event is stored exactly
        as the processor would have stored it; dead letters were sent when first consumed, and are not resent."""
        plan = plan_batch([to_record(m) for m in messages], consumed_at=time.time())
        db = processor_store.database(client, self.settings.database)
        processor_store.write_events(db, plan, time.time())
        processor_store.write_gpu_latest(db, plan, time.time())

    def corrupt(self, mode: str, ttl: float) -> dict:
        """Corrupt the backup a restore would choose now, or the newest it could fall back to that has a data file
        (``corruption.pick``); raises NothingToCorrupt naming every backup and why."""
        return self.corruption.apply(self.store, self.point(None), mode, ttl)

    def health(self) -> dict:
        try:
            mongo = self._health_client.admin.command("ping").get("ok") == 1
        except PyMongoError:
            mongo = False
        following = self.follower.following
        return {"status": "ok" if mongo and following else "down", "mongo": mongo, "following": following,
                "epoch": self.follower.epoch, "last_error": self.last_error}

    def changelog_summary(self) -> dict:
        segs = changelog.segments(self.store.changelog_dir)
        return {
            "segments": len(segs),
            "records": sum(int(s.meta["records"]) for s in segs),
            "bytes": sum(int(s.meta["bytes"]) for s in segs),
            "epoch": self.follower.epoch,
            "last_wall": self.follower.state.get("last_wall"),
            "caught_up_at": self.follower.caught_up_at,
        }
