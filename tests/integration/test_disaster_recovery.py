"""Backup, destroy and restore on a real local stack (its own; snapshots every 10 s).

Planted ground truth: after a restore, k known acknowledged events are deleted; the RPO probe must list exactly
those k, no more and no fewer. The other tests check the mechanics each experiment relies on: both destroy scopes
come back with the history and a consistent aggregate, a corrupt backup is refused by name (and skipped, saying
so, when choosing automatically), and a killed database is no disaster.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import httpx
import pytest
from pymongo import MongoClient

from chaoslib_ext import timeline
from chaoslib_ext.errors import NoData
from chaoslib_ext.actions.data import corrupt_latest_backup, destroy_data, heal_backup_corruption, kill_database
from chaoslib_ext.actions.data import restore_from_backup
from probes.dr import rpo_report, rto_seconds
from probes.processing import gpu_latest_consistent
from chaos_dr_stack.local.api import LocalStack

pytestmark = pytest.mark.integration

GAMEDAY = Path(sys.executable).with_name("gameday")
AGENT_OP_TIMEOUT_S = 10


@pytest.fixture(scope="module")
def stack(stack_binaries, stack_dirs):
    with mock.patch.dict(os.environ, {"STACK_BACKUP_ARGS": f"--interval-s 10 --retention-s 600 "
                                                      f"--mongo-op-timeout-s {AGENT_OP_TIMEOUT_S}",
                                     "STACK_MONGO_ARGS": "--enable-test-commands"}):
        with LocalStack(state_dir=stack_dirs("dr-stack"), rate=10, timeout=240) as running:
            wait_for_backups(running.endpoints["backup"], 2)
            yield running


def wait_for_backups(url: str, count: int, timeout: float = 120) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        backups = [b for b in httpx.get(url + "/backups", timeout=30).json()["backups"] if "collections" in b
                   and b["collections"].get("events", {}).get("documents")]
        if len(backups) >= count:
            return backups
        time.sleep(1)
    raise AssertionError(f"fewer than {count} non-empty backups after {timeout} s")


@pytest.fixture
def config(stack, tmp_path):
    cfg = {"local_control_url": stack.endpoints["control"], "gameday_timeline": str(tmp_path / "timeline.jsonl")}
    timeline.record("run.started", cfg)
    time.sleep(3)  # events produced within this run, before the disaster
    return cfg


def test_the_agent_serves_verified_backups_and_metrics(stack):
    agent = stack.endpoints["backup"]
    taken = httpx.post(agent + "/backups", timeout=60)
    assert taken.status_code == 201, taken.text
    manifest = taken.json()
    assert manifest["bytes"] > 0 and set(manifest["collections"]) >= {"events", "gpu_latest"}
    assert set(manifest["kafka_offsets"]) == {f"gpu-events/{p}" for p in range(4)} | {"token-events/0",
                                                                                      "token-events/1"}
    listed = httpx.get(agent + "/backups", params={"verify": "true"}, timeout=60).json()
    assert listed["backups"][0]["id"] == manifest["id"] and listed["backups"][0]["valid"] is True
    metrics = httpx.get(agent + "/metrics", timeout=10).text
    for series in ("backup_last_success_timestamp_seconds", "backup_last_size_bytes", "backup_last_duration_seconds",
                   "backup_changelog_lag_seconds"):
        assert series in metrics
    assert httpx.post(agent + "/restores", json={"replay": "yes"}).status_code == 400


def test_a_planted_loss_of_known_size_is_reported_exactly(stack, config):
    destroyed = destroy_data("database", configuration=config)
    report = restore_from_backup(replay=True, configuration=config)
    assert report["fallbacks"] == [] and report["restored"]["events"] > 0
    assert report["history_checked"] is True and report["stalls"] == [], report
    disaster = timeline.last("fault.destroy_data", config)
    acked = {a["producer_id"]: a["max_acked_seq"] for a in disaster["acked"]}
    before = rpo_report(settle_timeout=60, configuration=config)
    assert before["with_replay"]["lost"] == 0, before
    print(f"RPO without replay {before['rpo_seconds_without_replay']} s "
          f"({before['without_replay']['lost']} lost), with replay {before['rpo_seconds']} s; "
          f"disaster at {destroyed['destroyed_at']:.3f}")

    client = MongoClient(stack.endpoints["mongo_uri"])
    try:
        producer = sorted(acked)[0]
        planted = [f"{producer}:{s}" for s in range(acked[producer] - 20, acked[producer] - 13)]
        assert client.ca3.events.delete_many({"_id": {"$in": planted}}).deleted_count == len(planted)
    finally:
        client.close()
    after = rpo_report(settle_timeout=0, configuration=config)
    assert after["with_replay"]["lost_events"] == planted
    assert after["with_replay"]["lost"] == 7
    assert after["rpo_seconds"] > before["rpo_seconds"]


def test_an_rpo_over_no_acknowledged_event_is_refused_not_reported_as_zero(stack, tmp_path):
    """With the producers paused since before the run, the window holds no event: a zero RPO would be vacuous."""
    producers = stack.endpoints["producers"]
    assert httpx.post(producers + "/rate", json={"rate": 0}, timeout=5).status_code == 200
    try:
        time.sleep(2)  # the last sends of the old rate are acknowledged before the run starts
        cfg = {"local_control_url": stack.endpoints["control"], "gameday_timeline": str(tmp_path / "timeline.jsonl")}
        timeline.record("run.started", cfg)
        time.sleep(1)
        destroy_data("database", configuration=cfg)
        restore_from_backup(replay=True, configuration=cfg)
        with pytest.raises(NoData, match=r"no event was acknowledged between the run's start and the disaster"):
            rpo_report(settle_timeout=5, configuration=cfg)
    finally:
        assert httpx.post(producers + "/rate", json={"rate": stack.rate}, timeout=5).status_code == 200


def test_a_restore_the_database_stalls_under_starts_again_and_says_so(stack, config):
    """The database holds the restore's first insert, and the driver's own retry of it, longer than the agent's
    operation timeout (mongod's ``failCommand`` failpoint, scoped to the agent's connections): the restore starts
    over once the database answers, reports the stall, and loses nothing."""
    destroy_data("database", configuration=config)
    blocked_s = AGENT_OP_TIMEOUT_S + 3
    with MongoClient(stack.endpoints["mongo_uri"], serverSelectionTimeoutMS=10000) as client:
        client.admin.command("configureFailPoint", "failCommand", mode={"times": 2},
                             data={"failCommands": ["insert"], "appName": "backup-agent",
                                   "blockConnection": True, "blockTimeMS": blocked_s * 1000})
        try:
            report = restore_from_backup(replay=True, configuration=config)
        finally:
            client.admin.command("configureFailPoint", "failCommand", mode="off")
    assert len(report["stalls"]) == 1, report["stalls"]
    stall = report["stalls"][0]
    assert stall["attempt"] == 1 and "timed out" in stall["error"], stall
    assert 0 <= stall["answered_after_s"] < blocked_s, stall
    assert report["restored"]["events"] > 0 and report["fallbacks"] == []
    rpo = rpo_report(settle_timeout=60, configuration=config)
    assert rpo["with_replay"]["lost"] == 0, (rpo, report)
    assert gpu_latest_consistent(configuration=config)["consistent"] is True


def test_a_lost_data_directory_comes_back_with_its_history(stack, config):
    destroy_data("data-directory", configuration=config)
    disasters = httpx.get(stack.endpoints["backup"] + "/backups", timeout=30).json()["disasters"]
    report = restore_from_backup(replay=True, configuration=config)
    assert report["target"]["disaster"]["kind"] in ("history-lost", "drop ca3.events"), (report, disasters)
    rto = rto_seconds(timeout=300, configuration=config)
    assert 0 < rto < 300
    rpo = rpo_report(settle_timeout=60, configuration=config)
    assert rpo["with_replay"]["lost"] == 0, (rpo, report)
    assert gpu_latest_consistent(configuration=config)["consistent"] is True


def test_a_corrupt_backup_is_refused_by_name_and_skipped_when_choosing(stack, config, tmp_path):
    # Two backups of the current epoch (an earlier test may have wiped the data directory): the newest gets
    # corrupted, the other is the fallback.
    for _ in range(2):
        assert httpx.post(stack.endpoints["backup"] + "/backups", timeout=120).status_code == 201
    destroy_data("database", configuration=config)
    time.sleep(1)
    fault = corrupt_latest_backup("truncate", ttl_seconds=300, configuration=config)
    env = dict(os.environ, GAMEDAY_CONTROL_URL=stack.endpoints["control"])
    try:
        named = subprocess.run([str(GAMEDAY), "restore", "--backup", fault["backup_id"]], env=env,
                               capture_output=True, text=True, timeout=600)
        assert named.returncode == 1, named.stdout + named.stderr
        assert f"backup {fault['backup_id']}: {fault['file']}: truncated" in named.stdout
        chosen = subprocess.run([str(GAMEDAY), "restore"], env=env, capture_output=True, text=True, timeout=600)
        assert chosen.returncode == 0, chosen.stdout + chosen.stderr
        assert f"skipped corrupt backup {fault['backup_id']}: {fault['file']}: truncated" in chosen.stdout
        assert "fell back to the previous good backup" in chosen.stdout
    finally:
        assert heal_backup_corruption(configuration=config)["was_active"] is True
    listed = httpx.get(stack.endpoints["backup"] + "/backups", params={"verify": "true"}, timeout=60).json()
    assert all(b["valid"] for b in listed["backups"]), [b["problem"] for b in listed["backups"] if not b["valid"]]


def test_a_killed_database_is_no_disaster(stack, config):
    pending_before = [d for d in httpx.get(stack.endpoints["backup"] + "/backups").json()["disasters"]
                      if not d["recovered_by"]]
    kill_database(configuration=config)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        health = httpx.get(stack.endpoints["backup"] + "/health", timeout=10)
        if health.status_code == 200:
            break
        time.sleep(1)
    assert health.status_code == 200, health.text
    pending = [d for d in httpx.get(stack.endpoints["backup"] + "/backups").json()["disasters"] if not d["recovered_by"]]
    assert pending == pending_before


def _event_indexes(stack) -> set[str]:
    with MongoClient(stack.endpoints["mongo_uri"], serverSelectionTimeoutMS=10000) as client:
        return {ix["name"] for ix in client.ca3.events.list_indexes()}


def test_a_backup_of_the_dropped_database_is_never_a_fallback(stack, config):
    """A snapshot dumped between a drop and its restore holds the processor's writes into a re-created, unindexed
    collection. When the next restore fell back to it, the change log brought the data back but not the indexes,
    and the restarted processor then built them while serving, holding every read for seconds."""
    agent = stack.endpoints["backup"]
    assert {"produced_at_1", "written_at_1", "producer_id_1_seq_1"} <= _event_indexes(stack)
    destroy_data("database", configuration=config)
    time.sleep(2)  # the processor writes into a new events collection
    during = httpx.post(agent + "/backups", timeout=120)
    assert during.status_code == 201, during.text
    damaged = during.json()["id"]
    first = restore_from_backup(replay=True, configuration=config)
    recovered = [d for d in httpx.get(agent + "/backups", timeout=30).json()["disasters"] if d.get("recovered_by")]
    assert damaged in recovered[-1]["damaged_backups"], recovered[-1]

    # The agent snapshots the restored state at once; the next drop comes before any other, so the damaged backup
    # is the newest before it that the corruption leaves intact.
    deadline = time.monotonic() + 60
    while not [b for b in wait_for_backups(agent, 1) if b["created_at"] > first["finished_at"]]:
        assert time.monotonic() < deadline, "no snapshot of the restored database within 60 s"
        time.sleep(0.2)
    destroy_data("database", configuration=config)
    time.sleep(1)
    fault = corrupt_latest_backup("truncate", ttl_seconds=300, configuration=config)
    try:
        report = restore_from_backup(replay=True, configuration=config)
    finally:
        heal_backup_corruption(configuration=config)
    assert report["fallbacks"] and report["backup_id"] < damaged, (fault, report)
    assert {"produced_at_1", "written_at_1", "producer_id_1_seq_1"} <= _event_indexes(stack), report
    assert rpo_report(settle_timeout=60, configuration=config)["with_replay"]["lost"] == 0
