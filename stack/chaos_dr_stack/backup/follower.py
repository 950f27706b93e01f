"""Follows the database's change stream into the change log, and notices disasters.

Why a change stream and not tailing ``local.oplog.rs``: it is the server's supported interface (the oplog's
format is internal and changed in MongoDB 5.0 to ``$v: 2`` diffs), a cluster-wide stream is not invalidated
by ``dropDatabase`` (so the disaster itself is logged), ``resume_after`` continues across agent and database
restarts, and ``updateDescription`` carries the new values of changed fields, so replaying a record twice gives
the same document. The same code works on the kind target's mongo replica set.

The oplog is still read for one thing: SecantusDB answers ``resume_after`` with an unknown token (a wiped data
directory, a new server) by silently delivering nothing, so after every reconnect the follower checks that its
last position is still in ``local.oplog.rs``. If not, the history is lost: a disaster, and a new epoch.

A reconnect is not always visible: pymongo resumes a change stream by itself after a network error, so a server
that restarts within a second (a wiped data directory comes back that fast) is resumed with a token it does not
know. The follower therefore asks ``hello`` every second for the server's ``topologyVersion.processId`` (new for
every server process, on MongoDB 4.4+ and on SecantusDB) and re-checks the history whenever it changes: one
cheap command a second instead of an oplog query a second on a single-threaded database.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from bson import Timestamp
from pymongo import MongoClient
from pymongo.errors import PyMongoError

from chaos_dr_stack.backup.changelog import DESTRUCTIVE_OPS, ChangeLogWriter, record_from_change, ts_key
from chaos_dr_stack.backup.store import BackupStore

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.2
"""Changes are made durable (and published in the segment's sidecar) at least this often: the change log's
own contribution to RPO."""
PROCESS_CHECK_EVERY_S = 1.0
"""How often the follower asks which server process it is following: how late a restarted server is noticed."""


def server_process(client: MongoClient) -> object | None:
    """The identity of the server process behind ``client`` (None from servers older than MongoDB 4.4)."""
    return (client.admin.command("hello").get("topologyVersion") or {}).get("processId")


class Follower:
    def __init__(self, client_factory: Callable[[], MongoClient], database: str, store: BackupStore,
                 writer: ChangeLogWriter, state: dict):
        self._client_factory = client_factory
        self._database = database
        self._store = store
        self._writer = writer
        self.state = state
        """Persisted by the agent: ``epoch``, ``resume_token``, ``last_ts``, ``last_wall``."""
        self.restoring = threading.Event()
        """Set while the agent's own restore drops and reloads the database: those drops are no disaster."""
        self.following = False
        self.verified_process: object | None = None
        """The server process whose history the follower has checked; a restore waits until it is the current one."""
        self.caught_up_at: float | None = None
        self.records = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()

    @property
    def epoch(self) -> int:
        return int(self.state.get("epoch", 0))

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            client = None
            try:
                client = self._client_factory()
                self._follow(client)
                attempt = 0
            except PyMongoError as exc:
                self.following = False
                delay = min(2.0, 0.1 * 2 ** attempt)
                attempt += 1
                log.warning("change stream interrupted (retry in %.1fs): %s", delay, str(exc)[:200])
                self._stop.wait(delay)
            finally:
                self.following = False
                self._writer.flush()
                if client is not None:
                    client.close()

    def _follow(self, client: MongoClient) -> None:
        process = server_process(client)
        token = self.state.get("resume_token")
        if token is not None and not self._history_continuous(client):
            self._history_lost(client)
            token = None
        pipeline = [{"$match": {"ns.db": self._database}}]
        with client.watch(pipeline, resume_after=token, max_await_time_ms=200) as stream:
            self.verified_process = process
            self.following = True
            last_flush = last_process_check = time.monotonic()
            while not self._stop.is_set():
                if time.monotonic() - last_process_check >= PROCESS_CHECK_EVERY_S:
                    last_process_check = time.monotonic()
                    if server_process(client) != process:
                        log.warning("the database server restarted under the change stream: checking its history")
                        return
                change = stream.try_next()
                if change is None:
                    self.caught_up_at = time.time()
                    self.state["resume_token"] = stream.resume_token
                else:
                    self._record(change)
                    self.state["resume_token"] = stream.resume_token
                if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                    self._writer.flush()
                    last_flush = time.monotonic()

    def _record(self, change: dict) -> None:
        record = record_from_change(change, self.epoch)
        if record is None:
            return
        self._writer.append(record)
        self.records += 1
        self.state["last_ts"] = list(ts_key(record["ts"]))
        self.state["last_wall"] = record["wall"]
        self.state["last_key"] = None if record.get("key") is None else str(record["key"].get("_id"))
        if record["op"] in DESTRUCTIVE_OPS and not self.restoring.is_set():
            self._disaster(kind=f"{record['op']} {self._database}" + (f".{record['coll']}" if record["coll"] else ""),
                           ts=list(ts_key(record["ts"])), wall=record["wall"])

    def _history_continuous(self, client: MongoClient) -> bool:
        """Does the server still hold the change log's last entry: the same position, in this database, for the
        same document? Merely holding an entry as old is not enough: a server wiped and started again within the
        second of the last logged write has entries at earlier positions of that second (seen in CI)."""
        last = self.state.get("last_ts")
        if not last:
            return True
        entry = client.local["oplog.rs"].find_one({"ts": Timestamp(int(last[0]), int(last[1]))},
                                                   projection={"ns": 1, "o._id": 1, "o2._id": 1})
        if entry is None or not str(entry.get("ns", "")).startswith(f"{self._database}."):
            return False
        logged = self.state.get("last_key")
        if logged is None:
            return True
        key = (entry.get("o2") or {}).get("_id", (entry.get("o") or {}).get("_id"))
        return str(key) == logged

    def _history_lost(self, client: MongoClient) -> None:
        """The server no longer holds our position: everything after the last logged change is gone from it."""
        self._writer.rotate()
        last_ts, last_wall = self.state.get("last_ts"), self.state.get("last_wall")
        log.error("the database's history no longer contains the change log's last position %s: history lost; "
                  "starting epoch %d", last_ts, self.epoch + 1)
        if not self.restoring.is_set():
            self._disaster(kind="history-lost", ts=[2**31, 0], wall=last_wall, detected_at=time.time(),
                           last_logged_ts=last_ts)
        self.state.update(epoch=self.epoch + 1, resume_token=None, last_ts=None, last_key=None)

    def _disaster(self, kind: str, ts: list[int], wall: float | None, **extra) -> None:
        """Only the first destructive change of an epoch counts: the rest belong to the same disaster."""
        with self._lock:
            disasters = self._store.disasters()
            if any(d["epoch"] == self.epoch and not d.get("recovered_by") for d in disasters):
                return
            disaster = {"kind": kind, "epoch": self.epoch, "ts": ts, "wall": wall, "recovered_by": None, **extra}
            log.error("disaster: %s at %s", kind, wall)
            disasters.append(disaster)
            self._store.save_disasters(disasters)
